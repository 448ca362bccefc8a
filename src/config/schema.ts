import { z } from 'zod';
import { isIP } from 'node:net';
import { CERT_KEY_TYPES } from '../pki/key-spec.js';
import { KEY_USAGES } from '../pki/extensions.js';
import { parseDuration } from '../core/duration.js';
import { NAME_PATTERN } from '../core/ids.js';

/**
 * The configuration schema: the single source of truth for every option, its type and its default.
 * `config/keywright.example.yaml` documents each key; a unit test checks that the example parses and
 * mentions every key of this schema.
 */

/** `host:port`, `[v6]:port`; the port 0..65535 (0 = pick a free one, for tests). */
export const hostPort = z.string().transform((value, ctx) => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || port > 65535 || (m[1] !== undefined && isIP(m[1]) !== 6)) {
    ctx.addIssue({
      code: 'custom',
      message: `expected HOST:PORT (e.g. 127.0.0.1:8443 or [::1]:8443), got "${value}"`,
    });
    return z.NEVER;
  }
  return { host, port };
});
export type HostPort = { host: string; port: number };

/** A duration string (`90d`, `12h`, `P90D`) parsed to milliseconds. */
export const duration = z.string().transform((value, ctx) => {
  try {
    return parseDuration(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration; use e.g. 90d, 12h, 30m or P90D` });
    return z.NEVER;
  }
});

export const name = z
  .string()
  .regex(
    NAME_PATTERN,
    'use 1-64 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit',
  );

const masterKey = z.discriminatedUnion('source', [
  z.strictObject({ source: z.literal('file') }),
  z.strictObject({
    source: z.literal('env'),
    variable: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/)
      .default('KEYWRIGHT_MASTER_KEY'),
  }),
  z.strictObject({
    source: z.literal('passphrase'),
    /** A file holding the passphrase (e.g. a systemd credential); otherwise KEYWRIGHT_PASSPHRASE or a prompt. */
    passphraseFile: z.string().optional(),
  }),
]);

const tls = z.strictObject({
  /** HTTPS with the daemon's own certificate from the internal CA. Plain HTTP is allowed on loopback only. */
  enabled: z.boolean().default(true),
});

const api = z.strictObject({
  bodyLimit: z
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  /** Requests per minute per token (or per IP when unauthenticated). */
  rateLimit: z.number().int().min(1).default(6000),
  /** Services that authenticate with a client certificate from the internal CA (docs/distribution.md). */
  mtls: z
    .strictObject({
      /** SAN → role and scopes; the first rule that matches one of the certificate's URIs or DNS names wins. */
      identities: z
        .array(
          z.strictObject({
            /** A SAN URI (`spiffe://…`) or DNS name; a trailing `*` matches any rest. */
            match: z.string().min(1).max(120),
            /** Not admin: a certificate that leaks would otherwise mint tokens. */
            role: z.enum(['operator', 'issuer', 'reader', 'service']),
            scopes: z.array(z.string().min(1).max(200)).max(64).default([]),
          }),
        )
        .default([]),
    })
    .prefault({}),
});

const san = z.string().min(1).max(253);

/** A file mode: an octal string (`'0640'`, `'640'`) or a number (YAML `0o640`). */
const fileMode = z.union([
  z
    .string()
    .regex(/^0?[0-7]{3}$/, "use an octal mode in quotes, e.g. '0640'")
    .transform((v) => parseInt(v, 8)),
  z.number().int().min(0).max(0o777),
]);

/** A file name inside a deploy directory: no separators, no dot-only names. */
const deployFileName = z.string().regex(/^(?!\.{1,2}$)[^/\\\0]{1,255}$/, 'a plain file name, without "/"');

/** Where a secret comes from: never the secret itself, so configs and logs cannot leak it. */
const SECRET_REF = /^(env:[A-Za-z_][A-Za-z0-9_]*|file:\/.+)$/;
const secretRef = z.string().regex(SECRET_REF, 'use env:VARIABLE or file:/absolute/path');

const deployTarget = z.union([
  z.strictObject({
    file: z.strictObject({
      /** Must lie under one of deploy.allowedDirs. */
      dir: z.string().min(1),
      /** Custom names; certbot's by default. */
      names: z
        .strictObject({
          cert: deployFileName.default('cert.pem'),
          chain: deployFileName.default('chain.pem'),
          fullchain: deployFileName.default('fullchain.pem'),
          privkey: deployFileName.default('privkey.pem'),
        })
        .prefault({}),
      /** Write privkey.pem (when keywright holds the key). */
      includeKey: z.boolean().default(true),
      mode: fileMode.default(0o644),
      keyMode: fileMode.default(0o600),
      /** User and group (names or ids) the files get; applied only when the daemon runs as root. */
      owner: z.string().min(1).optional(),
      group: z.string().min(1).optional(),
      /** Put the previous files back when a later target (the reload, verify) fails. */
      rollback: z.boolean().default(false),
    }),
  }),
  z.strictObject({
    exec: z.strictObject({
      /** argv, run without a shell. */
      command: z.array(z.string().min(1)).min(1),
      timeout: duration.default(60_000),
      /** Extra environment; the daemon's own environment is not passed on (it may hold the KEK). */
      env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
      cwd: z.string().min(1).optional(),
    }),
  }),
  z.strictObject({
    webhook: z.strictObject({
      url: z.url({ protocol: /^https?$/ }),
      /** HMAC-SHA256 key for X-Keywright-Signature. */
      secret: secretRef.optional(),
      timeout: duration.default(10_000),
      /** PEM bundle to trust for an https URL (e.g. the internal CA); the system store otherwise. */
      caFile: z.string().min(1).optional(),
    }),
  }),
  z.strictObject({
    verify: z.strictObject({
      connect: hostPort,
      /** SNI; the first DNS name of the certificate by default. */
      servername: z.string().optional(),
      /** How long to wait for the server to serve the new certificate. */
      timeout: duration.default(30_000),
    }),
  }),
]);
export type DeployTargetConfig = z.output<typeof deployTarget>;

const certificate = z.strictObject({
  name,
  issuer: z
    .string()
    .regex(/^(ca|acme):[a-z0-9][a-z0-9._-]*$/, 'use ca:<name> or acme:<account>')
    .default('ca:default'),
  profile: z.string().optional(),
  sans: z.array(san).min(1),
  key: z.enum(CERT_KEY_TYPES).default('ec-p256'),
  lifetime: duration.default(90 * 86_400_000),
  /** A duration before expiry or a percentage of the lifetime; default: renew at 2/3 of the lifetime. */
  renewBefore: z.union([duration, z.string().regex(/^\d{1,2}%$/)]).optional(),
  keyRotation: z.enum(['always', 'reuse']).default('always'),
  deploy: z.array(deployTarget).default([]),
});

const caKey = z.enum(CERT_KEY_TYPES);

/**
 * An issuance profile from configuration, layered over a built-in one (`base`, or the built-in of the
 * same name, else `server`): fields given replace the base's, the rest are inherited. docs/ca.md.
 */
const caProfile = z.strictObject({
  name,
  /** The CAs that offer it; every CA when absent. */
  cas: z.array(name).min(1).optional(),
  base: z.enum(['server', 'client', 'server-client']).optional(),
  description: z.string().max(200).optional(),
  names: z
    .strictObject({
      dns: z.array(z.string().min(1).max(253)).optional(),
      ip: z.array(z.string().min(1).max(64)).optional(),
      email: z.array(z.string().min(1).max(254)).optional(),
      uri: z.array(z.string().min(1).max(2048)).optional(),
    })
    .optional(),
  allowWildcards: z.boolean().optional(),
  maxNames: z.number().int().min(1).max(1000).optional(),
  keyTypes: z
    .array(z.enum(['ec', 'rsa', 'ed25519']))
    .min(1)
    .optional(),
  ecCurves: z
    .array(z.enum(['P-256', 'P-384']))
    .min(1)
    .optional(),
  minRsaBits: z.number().int().min(2048).max(16384).optional(),
  defaultLifetime: duration.optional(),
  maxLifetime: duration.optional(),
  keyUsages: z.array(z.enum(KEY_USAGES)).min(1).optional(),
  extKeyUsages: z
    .array(z.enum(['serverAuth', 'clientAuth', 'codeSigning', 'emailProtection', 'timeStamping']))
    .min(1)
    .optional(),
});
export type CaProfileConfig = z.output<typeof caProfile>;

/** Which identifiers and certificates an ACME solver serves; both absent: everything. */
const acmeSolverMatch = {
  /** `example.com`, `*.example.com` (any name below), `10.0.0.5`, `10.0.0.0/8`, `*`. */
  domains: z.array(z.string().min(1).max(253)).min(1).optional(),
  /** Managed certificate name patterns (`web-*`). */
  certificates: z.array(z.string().min(1).max(64)).min(1).optional(),
};

const argv = z.array(z.string().min(1)).min(1);

/** ACME challenge solvers, tried in order: the first that matches and whose type the CA offers wins. */
const acmeSolver = z.union([
  z.strictObject({
    ...acmeSolverMatch,
    /** keywright's own responder (acme.http01.listen), or files under `webroot` another server serves. */
    http01: z.strictObject({ webroot: z.string().min(1).optional() }),
  }),
  z.strictObject({
    ...acmeSolverMatch,
    dns01: z.strictObject({
      present: argv,
      cleanup: argv.optional(),
      timeout: duration.default(60_000),
      /** Resolvers that must see the TXT record before the CA is asked (host or host:port); empty = system. */
      resolvers: z.array(z.string().min(1)).default([]),
      checkPropagation: z.boolean().default(true),
      propagationTimeout: duration.default(120_000),
      propagationInterval: duration.default(2_000),
    }),
  }),
  z.strictObject({
    ...acmeSolverMatch,
    tlsAlpn01: z.strictObject({ listen: hostPort.default({ host: '0.0.0.0', port: 443 }) }),
  }),
]);
export type AcmeSolverConfig = z.output<typeof acmeSolver>;

/**
 * An ACME account declared in configuration (docs/acme.md "Declared accounts"): registered by the daemon
 * when missing, never deactivated when removed. The directory alias list lives in acme/ (the daemon
 * checks an alias exists at start and reload).
 */
const acmeAccount = z.strictObject({
  name,
  directory: z
    .string()
    .max(2048)
    .regex(
      /^(https:\/\/\S+|[a-z][a-z0-9-]*)$/,
      'use an https:// directory URL or an alias such as letsencrypt or letsencrypt-staging (docs/acme.md)',
    ),
  email: z.email('use an address like ops@example.com').max(254).optional(),
  // RFC 8555 §7.3: newAccount carries termsOfServiceAgreed; as certbot's --agree-tos, only an explicit yes.
  termsOfServiceAgreed: z.literal(true, {
    error:
      "set termsOfServiceAgreed: true once you have read and agreed to the CA's terms of service (as certbot's --agree-tos)",
  }),
  /** External Account Binding (RFC 8555 §7.3.4), used once at registration. */
  eab: z
    .strictObject({
      kid: z.string().min(1).max(256),
      hmac: z
        .string()
        .regex(
          SECRET_REF,
          'the EAB HMAC key is never written in the configuration: use env:VARIABLE or file:/absolute/path',
        ),
    })
    .optional(),
  /** PEM trust for the directory's HTTPS (private ACME servers, pebble), as `--ca-file` of register. */
  caFile: z.string().min(1).optional(),
});
export type AcmeAccountConfig = z.output<typeof acmeAccount>;

// Checked even when another field of an entry is bad (`when`), so every problem is reported at once;
// the entries may then be only partly valid, hence the defensive reading of `name`.
const acmeAccounts = z.array(acmeAccount).superRefine(
  (accounts, ctx) => {
    const first = new Map<string, number>();
    (accounts as unknown[]).forEach((a, i) => {
      const entryName = (a as { name?: unknown } | null)?.name;
      if (typeof entryName !== 'string') return;
      const seen = first.get(entryName);
      if (seen === undefined) first.set(entryName, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: [i, 'name'],
          message: `duplicate account name "${entryName}" (also acme.accounts[${seen}].name); names must be unique`,
        });
    });
  },
  { when: (payload) => Array.isArray(payload.value) },
);

const acme = z.strictObject({
  http01: z.strictObject({ listen: hostPort.optional() }).prefault({}),
  /** Accounts the daemon registers at start, SIGHUP and POST /v1/reload when they do not exist yet. */
  accounts: acmeAccounts.default([]),
  solvers: z.array(acmeSolver).default([{ http01: {} }]),
  /** Timeout of one HTTP request to an ACME server. */
  requestTimeout: duration.default(30_000),
});

export const configSchema = z.strictObject({
  dataDir: z.string().min(1).default('./data'),
  listen: hostPort.default({ host: '127.0.0.1', port: 8443 }),
  /** A separate plain-HTTP listener for CRL and OCSP (relying parties fetch them over HTTP, RFC 5280 §4.2.1.13). */
  httpListen: hostPort.optional(),
  /** Base URL put in certificates' CRL distribution point and AIA; none when unset. */
  publicUrl: z.url().optional(),
  tls: tls.prefault({}),
  masterKey: masterKey.default({ source: 'file' }),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  audit: z
    .strictObject({
      /** When a key export's audit entry must be on disk before the key is sent (AuditLog ExportDurability). */
      exportDurability: z.enum(['written', 'synced']).default('written'),
    })
    .prefault({}),
  api: api.prefault({}),
  ca: z
    .strictObject({
      root: z
        .strictObject({
          name: name.default('root'),
          key: caKey.default('ec-p384'),
          lifetime: duration.default(3650 * 86_400_000),
        })
        .prefault({}),
      intermediate: z
        .strictObject({
          name: name.default('default'),
          key: caKey.default('ec-p256'),
          lifetime: duration.default(1825 * 86_400_000),
        })
        .prefault({}),
      crl: z
        .strictObject({
          /** nextUpdate = thisUpdate + validity; rebuilt on every revocation and once half of it has passed. */
          validity: duration.default(7 * 86_400_000),
          /** Validity of the last CRL a CA signs when disable-key takes its key offline. */
          offlineValidity: duration.default(365 * 86_400_000),
        })
        .prefault({}),
      ocsp: z
        .strictObject({
          /** nextUpdate of OCSP responses (signed per request). */
          validity: duration.default(3_600_000),
        })
        .prefault({}),
      profiles: z.array(caProfile).default([]),
    })
    .prefault({}),
  acme: acme.prefault({}),
  certificates: z.array(certificate).default([]),
  deploy: z
    .strictObject({
      /** File targets may write only below these directories. */
      allowedDirs: z.array(z.string().regex(/^\//, 'an absolute path')).default(['/etc/keywright']),
    })
    .prefault({}),
  /** Expiry alerts: a certificate within `threshold` of expiry while its renewal fails or is overdue. */
  alerts: z
    .strictObject({
      /** A duration before expiry or a percentage of the lifetime. */
      threshold: z.union([duration, z.string().regex(/^\d{1,2}%$/)]).default('10%'),
      /** The same alert for the same certificate is not repeated more often than this. */
      repeat: duration.default(3_600_000),
      /** Optional: POST each alert as signed JSON (X-Keywright-Signature: sha256=HMAC). */
      webhook: z
        .strictObject({
          url: z.url({ protocol: /^https?$/ }),
          secret: secretRef.optional(),
          timeout: duration.default(10_000),
        })
        .optional(),
    })
    .prefault({}),
  /** How often the daemon's sweeps look for due work (each also runs once at start, to catch up). */
  scheduler: z
    .strictObject({
      renewalInterval: duration.default(30_000),
      deployRetryInterval: duration.default(30_000),
      keyDestructionInterval: duration.default(3_600_000),
      vpnRotationInterval: duration.default(60_000),
      crlRefreshInterval: duration.default(60_000),
      /** Certificates renewed at once. */
      concurrency: z.number().int().min(1).max(64).default(4),
      /** A superseded certificate key waits this long in pending-destruction before it is erased. */
      keyDestructionWaitingPeriod: duration.default(30 * 86_400_000),
    })
    .prefault({}),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type ManagedCertificateConfig = Config['certificates'][number];
