import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { createPrivateKey } from 'node:crypto';
import { z } from 'zod';
import { ApiError } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';
import { authorize, inScope, isAllowed } from '../../access/policy.js';
import { CERT_KEY_TYPES } from '../../pki/key-spec.js';
import { REVOCATION_REASONS } from '../../pki/revocation.js';
import { decodePem } from '../../pki/pem.js';
import { buildPkcs12 } from '../../pki/pkcs12.js';
import type { IssuerRef, OpContext } from '../../issuer/port.js';
import type { CertificateService, BundleMaterial } from '../../lifecycle/certificate-service.js';
import type { CertificateRecord, VersionRecord } from '../../lifecycle/records.js';
import type { ApiDeps } from '../deps.js';
import { parseInput } from '../validate.js';
import { durationText } from '../schemas.js';
import { actorOf, audited, type AuditedAction } from '../audited.js';
import { longPolls, waitParam } from '../long-poll.js';
import { etagMatches } from '../../vpn/index.js';
import {
  SEALED_MEDIA_TYPE,
  SEAL_KEY_HEADER,
  parseSealRecipient,
  sealKeyId,
  sealTo,
} from '../auth/sealed-delivery.js';

const createBody = z.strictObject({
  name: z.string().min(1).max(64),
  sans: z.array(z.string().min(1).max(253)).min(1).max(100).optional(),
  issuer: z
    .string()
    .regex(/^(ca|acme):[a-z0-9][a-z0-9._-]*$/, 'use ca:<name> or acme:<account>')
    .default('ca:default'),
  profile: z.string().max(64).optional(),
  key: z.enum(CERT_KEY_TYPES).default('ec-p256'),
  ttl: durationText.default('90d'),
  renewBefore: z.union([durationText, z.string().regex(/^\d{1,2}%$/)]).optional(),
  keyRotation: z.enum(['always', 'reuse']).default('always'),
  /** A PEM CSR: keywright signs it and never holds the key. */
  csr: z
    .string()
    .max(64 * 1024)
    .optional(),
});

const nameParams = z.strictObject({ name: z.string().min(1).max(64) });
const versionParams = z.strictObject({
  name: z.string().min(1).max(64),
  version: z.coerce.number().int().min(1),
});
const revokeBody = z.strictObject({
  reason: z
    .enum(
      Object.keys(REVOCATION_REASONS) as [
        keyof typeof REVOCATION_REASONS,
        ...Array<keyof typeof REVOCATION_REASONS>,
      ],
    )
    .default('unspecified'),
  serial: z
    .string()
    .regex(/^[0-9a-fA-F:]{1,64}$/)
    .optional(),
});
const bundleQuery = z.strictObject({
  format: z.enum(['pem', 'json', 'p12', 'sealed']).default('json'),
  /** Long poll: while If-None-Match matches, hold up to this many seconds for a new version. */
  wait: waitParam,
});

export function certificateView(c: CertificateRecord) {
  return {
    name: c.id,
    issuer: c.issuer,
    profile: c.profile ?? null,
    sans: c.sans,
    key: c.keyType,
    lifetimeSeconds: c.lifetimeMs / 1000,
    keyRotation: c.keyRotation,
    source: c.source,
    retired: c.retired ?? false,
    currentVersion: c.currentVersion ?? null,
    renewAt: c.renewAt ?? null,
    lastIssuedAt: c.lastIssuedAt ?? null,
    lastError: c.lastError ?? null,
    createdAt: c.createdAt,
  };
}

export function versionView(v: VersionRecord) {
  return {
    version: v.version,
    serial: v.serialHex,
    issuer: v.issuer,
    notBefore: v.notBefore,
    notAfter: v.notAfter,
    fingerprint: v.fingerprint,
    status: v.status,
    revokedAt: v.revokedAt ?? null,
    revocationReason: v.revocationReason ?? null,
    keyState: v.keyBlob ? v.keyState : 'not-held',
    destroyAfter: v.destroyAfter ?? null,
    reason: v.reason,
  };
}

/**
 * The key a sealed bundle goes to: the one registered with the caller's token (the header, if sent, must
 * name the same key, so a proxy cannot substitute its own), else the one in the header.
 */
function sealRecipientFor(deps: ApiDeps, request: FastifyRequest) {
  const header = request.headers[SEAL_KEY_HEADER];
  const principal = request.principal!;
  const registered = principal.kind === 'token' ? deps.tokens.get(principal.tokenId).sealKey : undefined;
  if (registered === undefined) return parseSealRecipient(header);
  if (header !== undefined && header !== registered) {
    throw new ApiError(
      'API_BAD_REQUEST',
      `this token has a registered seal key (${sealKeyId(registered)}); send no ${SEAL_KEY_HEADER} or that same key`,
      {
        details: {
          issues: [{ field: SEAL_KEY_HEADER, message: 'differs from the key registered with the token' }],
        },
      },
    );
  }
  return parseSealRecipient(registered);
}

function service(deps: ApiDeps): CertificateService {
  if (!deps.certificates) throw new ApiError('DAEMON_SEALED', 'the daemon is sealed');
  return deps.certificates;
}

function opContext(deps: ApiDeps, request: FastifyRequest): OpContext {
  return {
    clock: deps.clock,
    logger: request.log,
    actor: actorOf(request),
    requestId: request.id,
  };
}

export function certificateRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    const hold = longPolls(app);

    app.get('/v1/certificates', (request) => {
      authorize(request.principal!, 'cert.read');
      const certs = service(deps)
        .list()
        .filter((c) => inScope(request.principal!, { kind: 'cert', name: c.id }));
      return { certificates: certs.map(certificateView) };
    });

    app.post('/v1/certificates', async (request, reply) => {
      const body = parseInput(createBody, request.body, 'body');
      authorize(request.principal!, 'cert.issue', { kind: 'cert', name: body.name });
      const certs = service(deps);
      let csrDer: Buffer | undefined;
      let sans = body.sans;
      if (body.csr !== undefined) {
        csrDer = decodePem(body.csr, 'CERTIFICATE REQUEST', 'csr');
        if (sans === undefined) {
          const { parseCsr } = await import('../../pki/csr.js');
          sans = parseCsr(csrDer)
            .requestedNames.map((n) => ('value' in n ? n.value : ''))
            .filter(Boolean);
        }
      }
      if (sans === undefined || sans.length === 0)
        throw new ApiError('API_BAD_REQUEST', 'sans: give at least one name (or a CSR that asks for some)', {
          details: { issues: [{ field: 'sans', message: 'required' }] },
        });
      const ctx = opContext(deps, request);
      const version = await certs.create(
        body.name,
        {
          issuer: body.issuer as IssuerRef,
          ...(body.profile ? { profile: body.profile } : {}),
          sans,
          keyType: body.key,
          lifetimeMs: parseDuration(body.ttl, 'ttl'),
          ...(body.renewBefore
            ? {
                renewBefore: body.renewBefore.endsWith('%')
                  ? { percent: Number(body.renewBefore.slice(0, -1)) }
                  : { ms: parseDuration(body.renewBefore, 'renewBefore') },
              }
            : {}),
          keyRotation: body.keyRotation,
        },
        { source: 'api' },
        ctx,
        csrDer ? { csrDer } : {},
      );
      return reply
        .status(201)
        .send({ certificate: certificateView(certs.get(body.name)), version: versionView(version) });
    });

    app.get('/v1/certificates/:name', (request) => {
      const { name } = parseInput(nameParams, request.params, 'params');
      authorize(request.principal!, 'cert.read', { kind: 'cert', name });
      const certs = service(deps);
      const cert = certs.get(name);
      const current = cert.currentVersion === undefined ? null : versionView(certs.current(name));
      return { certificate: certificateView(cert), current };
    });

    app.get('/v1/certificates/:name/versions', (request) => {
      const { name } = parseInput(nameParams, request.params, 'params');
      authorize(request.principal!, 'cert.read', { kind: 'cert', name });
      return { versions: service(deps).versions(name).map(versionView) };
    });

    app.post('/v1/certificates/:name/renew', async (request) => {
      const { name } = parseInput(nameParams, request.params, 'params');
      authorize(request.principal!, 'cert.issue', { kind: 'cert', name });
      const version = await service(deps).issue(name, opContext(deps, request), { reason: 'manual' });
      return { version: versionView(version) };
    });

    app.post('/v1/certificates/:name/revoke', async (request) => {
      const { name } = parseInput(nameParams, request.params, 'params');
      const body = parseInput(revokeBody, request.body ?? {}, 'body');
      authorize(request.principal!, 'cert.revoke', { kind: 'cert', name });
      const certs = service(deps);
      const target = body.serial ? { serialHex: body.serial.replace(/:/g, '').toLowerCase() } : { name };
      if (body.serial) {
        const v = certs.findBySerial(target.serialHex!);
        if (v === undefined || v.certificate !== name)
          throw new ApiError('API_BAD_REQUEST', `serial ${body.serial} is not a version of ${name}`, {
            details: { issues: [{ field: 'serial', message: 'unknown for this certificate' }] },
          });
      }
      const version = await certs.revoke(target, body.reason, opContext(deps, request));
      return { version: versionView(version) };
    });

    app.post('/v1/certificates/:name/versions/:version/key/restore', async (request) => {
      const { name, version } = parseInput(versionParams, request.params, 'params');
      authorize(request.principal!, 'cert.manage', { kind: 'cert', name });
      const restored = await service(deps).restoreKey(name, version, opContext(deps, request));
      return { version: versionView(restored) };
    });

    app.get('/v1/certificates/:name/bundle', async (request, reply) => {
      const { name } = parseInput(nameParams, request.params, 'params');
      const { format, wait } = parseInput(bundleQuery, request.query, 'query');
      const resource = { kind: 'cert', name } as const;
      // Readers pull the public part; services (key.export) pull the whole bundle.
      const withKey = isAllowed(request.principal!, 'key.export', resource);
      const needsKey = format === 'p12' || format === 'sealed';
      if (!withKey) authorize(request.principal!, needsKey ? 'key.export' : 'cert.read', resource);
      // Checked before any wait, so a bad key is refused at once, not after the poll.
      const recipient = format === 'sealed' ? sealRecipientFor(deps, request) : undefined;
      const certs = service(deps);
      let current = certs.current(name);
      const etagOf = () => bundleEtag(current, withKey, format);
      const ifNoneMatch = request.headers['if-none-match'];
      await hold(reply, {
        waitSeconds: wait,
        unchanged: () => {
          current = certs.current(name);
          return etagMatches(ifNoneMatch, etagOf());
        },
        waitForChange: (ms, signal) =>
          deps.events
            ? deps.events.waitFor((e) => e.resource.kind === 'cert' && e.resource.name === name, ms, signal)
            : new Promise((resolve) => setTimeout(resolve, Math.min(ms, 1000))),
      });
      const etag = etagOf();
      void reply.header('etag', etag).header('cache-control', 'no-store');
      if (etagMatches(ifNoneMatch, etag)) return reply.status(304).send();
      const version = current.version;
      const material = withKey
        ? await audited(deps, request, keyExportAudit(name, version, format, recipient?.kid), () =>
            certs.bundle(name, true),
          )
        : await certs.bundle(name, false);
      if (material.version.id !== current.id) {
        current = material.version; // a renewal committed in between: label what is sent
        void reply.header('etag', etagOf());
      }
      if (recipient !== undefined) {
        const json = JSON.stringify(bundleJson(name, material));
        const jwe = await sealTo(recipient, Buffer.from(json), {
          certificate: name,
          version: current.version,
        });
        return reply.type(SEALED_MEDIA_TYPE).send(jwe);
      }
      return sendBundle(reply, request, name, format as 'pem' | 'json' | 'p12', material);
    });
  };
}

/** A bundle's ETag: the version's fingerprint, whether the key is in it, and the format. */
export function bundleEtag(version: VersionRecord, withKey: boolean, format: string): string {
  return `"${version.fingerprint.slice(0, 32)}${withKey ? '-k' : ''}-${format}"`;
}

/** The audit entry of a bundle pull with its key, made before the key is unsealed. */
export function keyExportAudit(
  name: string,
  version: number,
  format: string,
  sealedTo: string | undefined,
): AuditedAction {
  return {
    action: 'key.export',
    disclosure: true,
    subject: `cert:${name}`,
    details: { version, format, ...(sealedTo !== undefined ? { sealedTo } : {}) },
  };
}

/** format=pem: the full chain, then the key when the caller may have it. */
export function bundlePem(m: BundleMaterial): string {
  const fullchain = [m.certificatePem, ...m.chainPem].join('');
  return m.privateKeyPem ? `${fullchain}${m.privateKeyPem}` : fullchain;
}

export const PEM_CHAIN_MEDIA_TYPE = 'application/pem-certificate-chain';

/** The JSON bundle (format=json, and the plaintext of format=sealed). */
export function bundleJson(name: string, m: BundleMaterial) {
  const keyPem = m.privateKeyPem;
  return {
    name,
    version: m.version.version,
    serial: m.version.serialHex,
    notAfter: m.version.notAfter,
    fingerprint: m.version.fingerprint,
    certificate: m.certificatePem,
    chain: m.chainPem.join(''),
    fullchain: [m.certificatePem, ...m.chainPem].join(''),
    ...(keyPem ? { privateKey: keyPem } : {}),
  };
}

function sendBundle(
  reply: FastifyReply,
  request: FastifyRequest,
  name: string,
  format: 'pem' | 'json' | 'p12',
  m: BundleMaterial,
) {
  switch (format) {
    case 'json':
      return reply.send(bundleJson(name, m));
    case 'pem':
      return reply.type(PEM_CHAIN_MEDIA_TYPE).send(bundlePem(m));
    case 'p12': {
      const password = request.headers['x-keywright-p12-password'];
      if (typeof password !== 'string' || password.length < 8) {
        throw new ApiError(
          'API_BAD_REQUEST',
          'format=p12 needs a password of at least 8 characters in the X-Keywright-P12-Password header',
          {
            details: { issues: [{ field: 'x-keywright-p12-password', message: 'required, ≥ 8 characters' }] },
          },
        );
      }
      const der = buildPkcs12({
        privateKey: createPrivateKey(m.privateKeyPem!),
        certificate: decodePem(m.certificatePem, 'CERTIFICATE'),
        chain: m.chainPem.map((p) => decodePem(p, 'CERTIFICATE')),
        password,
        friendlyName: name,
      });
      return reply
        .type('application/x-pkcs12')
        .header('content-disposition', `attachment; filename="${name}.p12"`)
        .send(der);
    }
  }
}
