import type { Command } from 'commander';
import { resolve } from 'node:path';
import { AppError } from '../../core/errors.js';
import { pathExists } from '../../core/fs-durable.js';
import { writeFileDurable } from '../../core/fs-durable.js';
import { connect, readTextFile, type CliIo, type GlobalOptions } from '../context.js';
import { writePemSet } from '../pem-files.js';
import { emit, table } from '../output.js';

interface CaView {
  name: string;
  kind: string;
  parent: string | null;
  origin: string;
  keyType: string;
  keyState: string;
  subject: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  fingerprint: string;
  pathLen: number | null;
  nameConstraints: { permitted: string[]; excluded: string[] } | null;
  profiles: string[];
  urls: { crl?: string; ocsp?: string; caIssuers?: string } | null;
  crl: { number: string; thisUpdate: string; nextUpdate: string } | null;
  keyDisabledAt: string | null;
}

interface Signed {
  serial: string;
  profile: string;
  names: string[];
  notAfter: string;
  certificate: string;
  chain: string;
  fullchain: string;
}

const path = (name: string, rest = '') => `/v1/cas/${encodeURIComponent(name)}${rest}`;

function describe(ca: CaView): string {
  const lines = [
    `${ca.name}  ${ca.kind}${ca.parent ? ` under ${ca.parent}` : ''}  key ${ca.keyType} (${ca.keyState})  origin ${ca.origin}`,
    `subject:  ${ca.subject}`,
    `serial:   ${ca.serial}`,
    `valid:    ${ca.notBefore} to ${ca.notAfter}`,
    `sha256:   ${ca.fingerprint}`,
    `pathLen:  ${ca.pathLen ?? 'unlimited'}`,
  ];
  if (ca.nameConstraints) {
    lines.push(`permitted: ${ca.nameConstraints.permitted.join(', ') || '-'}`);
    lines.push(`excluded:  ${ca.nameConstraints.excluded.join(', ') || '-'}`);
  }
  lines.push(`profiles: ${ca.profiles.join(', ')}`);
  if (ca.urls) lines.push(`crl: ${ca.urls.crl}  ocsp: ${ca.urls.ocsp}`);
  if (ca.crl) lines.push(`last CRL: number ${ca.crl.number}, next update ${ca.crl.nextUpdate}`);
  if (ca.keyDisabledAt) lines.push(`key disabled at ${ca.keyDisabledAt}: signs no more certificates or CRLs`);
  return lines.join('\n');
}

export function caCommand(program: Command, io: CliIo, globals: () => GlobalOptions): void {
  const ca = program
    .command('ca')
    .description(
      'internal CAs: list, show, create, import, chain, issue, sign, revoke, export-key, disable-key',
    );

  ca.command('list')
    .description('the CAs in your scope')
    .action(async () => {
      const g = globals();
      const { cas } = await (await connect(g, io)).get<{ cas: CaView[] }>('/v1/cas');
      emit(io, g.json, { cas }, () =>
        table(cas as unknown as Array<Record<string, unknown>>, [
          'name',
          'kind',
          'parent',
          'keyType',
          'keyState',
          'notAfter',
        ]),
      );
    });

  ca.command('show')
    .argument('<name>')
    .description('a CA: subject, validity, key, constraints, profiles, CRL state')
    .action(async (name: string) => {
      const g = globals();
      const res = await (await connect(g, io)).get<{ ca: CaView }>(path(name));
      emit(io, g.json, res, () => describe(res.ca));
    });

  ca.command('create')
    .argument('<name>', 'CA name (lowercase letters, digits, . _ -)')
    .description('a new root, or an intermediate under --parent; its key is generated and sealed')
    .option('--parent <ca>', 'the issuing CA (an intermediate is made); a root without it')
    .option(
      '--key <type>',
      'ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096 | ed25519 (default: ec-p384 root, ec-p256 intermediate)',
    )
    .option('--ttl <duration>', 'lifetime (default 3650d root, 1825d intermediate; capped by the parent)')
    .option('--path-len <n>', 'CAs allowed below this one (intermediate default 0)')
    .option('--permit <subtree...>', 'name constraints: DNS:svc.internal, IP:10.0.0.0/8, email:…, URI:…')
    .option('--exclude <subtree...>', 'excluded subtrees, same forms')
    .option('--cn <name>', 'subject common name')
    .option('--org <name>', 'subject organization (default keywright)')
    .action(
      async (
        name: string,
        opts: {
          parent?: string;
          key?: string;
          ttl?: string;
          pathLen?: string;
          permit?: string[];
          exclude?: string[];
          cn?: string;
          org?: string;
        },
      ) => {
        const g = globals();
        let pathLen: number | undefined;
        if (opts.pathLen !== undefined) {
          pathLen = Number(opts.pathLen);
          if (!Number.isInteger(pathLen) || pathLen < 0) {
            throw new AppError('INVALID_ARGUMENT', '--path-len: a whole number ≥ 0', {
              details: { field: 'path-len' },
            });
          }
        }
        const body = {
          name,
          ...(opts.parent ? { parent: opts.parent } : {}),
          ...(opts.key ? { key: opts.key } : {}),
          ...(opts.ttl ? { ttl: opts.ttl } : {}),
          ...(pathLen !== undefined ? { pathLen } : {}),
          ...(opts.permit ? { permitted: opts.permit } : {}),
          ...(opts.exclude ? { excluded: opts.exclude } : {}),
          ...(opts.cn ? { commonName: opts.cn } : {}),
          ...(opts.org ? { organization: opts.org } : {}),
        };
        const res = await (await connect(g, io)).post<{ ca: CaView }>('/v1/cas', body);
        emit(
          io,
          g.json,
          res,
          () =>
            `created ${res.ca.kind} CA ${res.ca.name}${res.ca.parent ? ` under ${res.ca.parent}` : ''}: key ${res.ca.keyType}, valid until ${res.ca.notAfter}`,
        );
      },
    );

  ca.command('import')
    .argument('<name>')
    .description(
      'import an existing CA; the key is sealed in the store (keep no plaintext copy), nothing is stored if it does not match',
    )
    .requiredOption('--cert <file>', 'the CA certificate (PEM), optionally followed by its chain')
    .requiredOption('--key <file>', 'its private key (PEM, unencrypted)')
    .action(async (name: string, opts: { cert: string; key: string }) => {
      const g = globals();
      const certificate = await readTextFile(opts.cert, '--cert');
      const key = await readTextFile(opts.key, '--key');
      const res = await (
        await connect(g, io)
      ).post<{ ca: CaView }>(path(name, '/import'), {
        certificate,
        key,
      });
      emit(
        io,
        g.json,
        res,
        () =>
          `imported ${res.ca.kind} CA ${res.ca.name}${res.ca.parent ? ` under ${res.ca.parent}` : ''} (${res.ca.keyType}); its key is sealed in the store: delete ${opts.key} once you have it safe offline`,
      );
    });

  ca.command('chain')
    .argument('<name>')
    .description('the PEM chain from the CA up to its root')
    .option('--out <file>', 'write it to a file instead of stdout')
    .action(async (name: string, opts: { out?: string }) => {
      const g = globals();
      const res = await (await connect(g, io)).send<Buffer>('GET', path(name, '/chain'), undefined, {}, true);
      const pem = res.body.toString('utf8');
      if (opts.out) {
        await writeFileDurable(resolve(opts.out), pem, 0o644);
        emit(io, g.json, { written: resolve(opts.out) }, () => `wrote ${resolve(opts.out!)}`);
        return;
      }
      if (g.json) return emit(io, true, { chain: pem }, () => '');
      io.stdout.write(pem);
    });

  ca.command('sign')
    .argument('<name>', 'the issuing CA')
    .description('sign a CSR under a profile; the certificate is recorded and audited')
    .requiredOption('--csr <file>', 'PKCS#10 request, PEM')
    .option('--profile <name>', "the CA's profile (server, client, server-client, or from config)")
    .option('--ttl <duration>', "lifetime (the profile's default when absent)")
    .option('--out <file>', 'write the certificate and its chain (PEM) to a file')
    .action(async (name: string, opts: { csr: string; profile?: string; ttl?: string; out?: string }) => {
      const g = globals();
      const csr = await readTextFile(opts.csr, '--csr');
      const res = await (
        await connect(g, io)
      ).post<Signed>(path(name, '/sign'), {
        csr,
        ...(opts.profile ? { profile: opts.profile } : {}),
        ...(opts.ttl ? { ttl: opts.ttl } : {}),
      });
      if (opts.out) {
        await writeFileDurable(resolve(opts.out), res.fullchain, 0o644);
        emit(
          io,
          g.json,
          { ...res, written: resolve(opts.out) },
          () =>
            `signed serial ${res.serial} (${res.names.join(', ')}), valid until ${res.notAfter}: wrote ${resolve(opts.out!)}`,
        );
        return;
      }
      if (g.json) return emit(io, true, res, () => '');
      io.stdout.write(res.fullchain);
    });

  ca.command('issue')
    .argument('<name>', 'the issuing CA')
    .description(
      'make a key pair and a certificate for it, written once to --out (keywright keeps no copy of the key; use `cert issue` for one it keeps and renews)',
    )
    .requiredOption('--san <name...>', 'DNS names, IP addresses, email:… or uri:… names')
    .requiredOption('--out <dir>', 'write cert.pem, chain.pem, fullchain.pem and privkey.pem (0600) here')
    .option('--key <type>', 'ec-p256 (default), ec-p384, rsa-2048, rsa-3072, rsa-4096, ed25519')
    .option('--profile <name>', "the CA's profile (server, client, server-client, or from config)")
    .option('--ttl <duration>', "lifetime (the profile's default when absent)")
    .action(
      async (
        name: string,
        opts: { san: string[]; out: string; key?: string; profile?: string; ttl?: string },
      ) => {
        const g = globals();
        const res = await (
          await connect(g, io)
        ).post<Signed & { keyType: string; privateKey: string }>(path(name, '/issue'), {
          sans: opts.san,
          ...(opts.key ? { key: opts.key } : {}),
          ...(opts.profile ? { profile: opts.profile } : {}),
          ...(opts.ttl ? { ttl: opts.ttl } : {}),
        });
        const written = await writePemSet(opts.out, res);
        const { privateKey: _key, ...shown } = res;
        emit(
          io,
          g.json,
          { ...shown, written },
          () =>
            `issued serial ${res.serial} (${res.names.join(', ')}, ${res.keyType}), valid until ${res.notAfter}: wrote ${written.join(', ')}`,
        );
      },
    );

  ca.command('revoke')
    .argument('<name>', 'the CA that issued the certificate')
    .description('revoke a certificate the CA issued, by serial; the CRL and OCSP say so at once')
    .requiredOption('--serial <hex>', 'the serial (hex, colons allowed)')
    .option('--reason <reason>', 'RFC 5280 reason: unspecified, keyCompromise, superseded, …', 'unspecified')
    .action(async (name: string, opts: { serial: string; reason: string }) => {
      const g = globals();
      const res = await (
        await connect(g, io)
      ).post<{ serial: string; revokedAt: string; reason: string }>(path(name, '/revoke'), {
        serial: opts.serial,
        reason: opts.reason,
      });
      emit(
        io,
        g.json,
        res,
        () => `revoked serial ${res.serial} of ${name} (${res.reason}) at ${res.revokedAt}`,
      );
    });

  ca.command('export-key')
    .argument('<name>')
    .description(
      'write the CA key encrypted to a passphrase (PKCS#8, AES-256-CBC); admin only, audited. The passphrase comes from KEYWRIGHT_EXPORT_PASSPHRASE or --passphrase-file, never argv',
    )
    .requiredOption('--out <file>', 'where to write it (mode 0600; an existing file is not overwritten)')
    .option('--passphrase-file <file>', 'a file holding the passphrase (at least 12 characters)')
    .action(async (name: string, opts: { out: string; passphraseFile?: string }) => {
      const g = globals();
      const passphrase = opts.passphraseFile
        ? (await readTextFile(opts.passphraseFile, '--passphrase-file')).replace(/\r?\n$/, '')
        : io.env.KEYWRIGHT_EXPORT_PASSPHRASE;
      if (!passphrase) {
        throw new AppError(
          'INVALID_ARGUMENT',
          'a passphrase is needed: set KEYWRIGHT_EXPORT_PASSPHRASE or give --passphrase-file',
          { details: { field: 'passphrase' } },
        );
      }
      const out = resolve(opts.out);
      if (await pathExists(out)) {
        throw new AppError('INVALID_ARGUMENT', `--out ${out} exists; choose another file`, {
          details: { field: 'out' },
        });
      }
      const res = await (
        await connect(g, io)
      ).post<{ privateKey: string }>(path(name, '/export-key'), {
        passphrase,
      });
      await writeFileDurable(out, res.privateKey, 0o600);
      emit(
        io,
        g.json,
        { ca: name, written: out, format: 'pkcs8-encrypted', cipher: 'aes-256-cbc' },
        () => `wrote the key of CA ${name} to ${out} (encrypted PKCS#8; open with openssl pkey -in ${out})`,
      );
    });

  ca.command('disable-key')
    .argument('<name>')
    .description(
      'take the CA key offline: sign its last CRL, then remove the sealed key from the store (export it first); CAs below keep issuing',
    )
    .action(async (name: string) => {
      const g = globals();
      const res = await (await connect(g, io)).post<{ ca: CaView }>(path(name, '/disable-key'), {});
      emit(
        io,
        g.json,
        res,
        () =>
          `the key of CA ${name} is offline; its last CRL (number ${res.ca.crl?.number ?? '?'}) is served until ${res.ca.crl?.nextUpdate ?? '?'}`,
      );
    });
}
