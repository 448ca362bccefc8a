/**
 * CA management: list, show and chain (`ca.read`); create and import (`ca.manage`); issue a key with
 * its certificate, or sign a CSR (`cert.issue`); revoke a serial (`cert.revoke`); export the key encrypted to a passphrase (`key.export`,
 * admin tokens only) and take it offline (`ca.manage`). Each acts on a named CA, so scopes (`ca:<name>`)
 * apply. The CA service audits every key and signing operation before it commits.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AccessError, ApiError } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';
import { NAME_PATTERN } from '../../core/ids.js';
import { authorize, inScope } from '../../access/policy.js';
import { CERT_KEY_TYPES } from '../../pki/key-spec.js';
import { REVOCATION_REASONS, type RevocationReason } from '../../pki/revocation.js';
import type { OpContext } from '../../issuer/port.js';
import type { CaService } from '../../ca/service.js';
import { VERSIONS_COLLECTION, type VersionRecord } from '../../lifecycle/records.js';
import { normaliseSerial } from '../../ca/ledger.js';
import type { ApiDeps } from '../deps.js';
import { parseInput } from '../validate.js';
import { durationText } from '../schemas.js';
import { actorOf } from '../audited.js';

const caName = z.string().regex(NAME_PATTERN, 'use 1-64 lowercase letters, digits, ".", "_" or "-"');
const subtree = z.string().min(1).max(253);

const params = z.strictObject({ ca: caName });
const createBody = z.strictObject({
  name: caName,
  /** An intermediate under this CA; a root when absent. */
  parent: caName.optional(),
  key: z.enum(CERT_KEY_TYPES).optional(),
  ttl: durationText.optional(),
  pathLen: z.number().int().min(0).max(16).optional(),
  permitted: z.array(subtree).max(64).optional(),
  excluded: z.array(subtree).max(64).optional(),
  commonName: z.string().min(1).max(64).optional(),
  organization: z.string().min(1).max(64).optional(),
});
const importBody = z.strictObject({
  certificate: z
    .string()
    .min(1)
    .max(256 * 1024),
  key: z
    .string()
    .min(1)
    .max(64 * 1024),
});
const signBody = z.strictObject({
  csr: z
    .string()
    .min(1)
    .max(64 * 1024),
  profile: z.string().min(1).max(64).optional(),
  ttl: durationText.optional(),
});
const issueBody = z.strictObject({
  sans: z.array(z.string().min(1).max(253)).min(1).max(100),
  key: z.enum(CERT_KEY_TYPES).optional(),
  profile: z.string().min(1).max(64).optional(),
  ttl: durationText.optional(),
});
const reasons = Object.keys(REVOCATION_REASONS) as [RevocationReason, ...RevocationReason[]];
const revokeBody = z.strictObject({
  serial: z.string().regex(/^[0-9a-fA-F:]{1,60}$/, 'hexadecimal, e.g. 3f9a0c…'),
  reason: z.enum(reasons).default('unspecified'),
});
const exportBody = z.strictObject({ passphrase: z.string().min(1).max(1024) });

function service(deps: ApiDeps): CaService {
  if (!deps.cas) throw new ApiError('DAEMON_SEALED', 'the daemon is sealed');
  return deps.cas;
}

function opContext(deps: ApiDeps, request: FastifyRequest): OpContext {
  return { clock: deps.clock, logger: request.log, actor: actorOf(request), requestId: request.id };
}

export function caRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/v1/cas', (request) => {
      authorize(request.principal!, 'ca.read');
      const cas = service(deps)
        .list()
        .filter((c) => inScope(request.principal!, { kind: 'ca', name: c.name }));
      return { cas };
    });

    app.get('/v1/cas/:ca', (request) => {
      const { ca } = parseInput(params, request.params, 'params');
      authorize(request.principal!, 'ca.read', { kind: 'ca', name: ca });
      return { ca: service(deps).describe(ca) };
    });

    app.get('/v1/cas/:ca/chain', (request, reply) => {
      const { ca } = parseInput(params, request.params, 'params');
      authorize(request.principal!, 'ca.read', { kind: 'ca', name: ca });
      return reply.type('application/pem-certificate-chain').send(service(deps).chainPem(ca));
    });

    app.post('/v1/cas', async (request, reply) => {
      const body = parseInput(createBody, request.body, 'body');
      authorize(request.principal!, 'ca.manage', { kind: 'ca', name: body.name });
      if (body.parent !== undefined)
        authorize(request.principal!, 'ca.manage', { kind: 'ca', name: body.parent });
      const view = await service(deps).create(
        {
          name: body.name,
          ...(body.parent !== undefined ? { parent: body.parent } : {}),
          keyType: body.key ?? (body.parent === undefined ? 'ec-p384' : 'ec-p256'),
          ...(body.ttl !== undefined ? { lifetimeMs: parseDuration(body.ttl, 'ttl') } : {}),
          ...(body.pathLen !== undefined ? { pathLen: body.pathLen } : {}),
          ...(body.permitted ? { permitted: body.permitted } : {}),
          ...(body.excluded ? { excluded: body.excluded } : {}),
          ...(body.commonName !== undefined ? { commonName: body.commonName } : {}),
          ...(body.organization !== undefined ? { organization: body.organization } : {}),
        },
        opContext(deps, request),
      );
      return reply.status(201).send({ ca: view });
    });

    app.post('/v1/cas/:ca/import', async (request, reply) => {
      const { ca } = parseInput(params, request.params, 'params');
      const body = parseInput(importBody, request.body, 'body');
      authorize(request.principal!, 'ca.manage', { kind: 'ca', name: ca });
      const view = await service(deps).importCa(
        { name: ca, certificatePem: body.certificate, keyPem: body.key },
        opContext(deps, request),
      );
      return reply.status(201).send({ ca: view });
    });

    app.post('/v1/cas/:ca/sign', async (request, reply) => {
      const { ca } = parseInput(params, request.params, 'params');
      const body = parseInput(signBody, request.body, 'body');
      authorize(request.principal!, 'cert.issue', { kind: 'ca', name: ca });
      const signed = await service(deps).sign(
        ca,
        {
          csr: body.csr,
          ...(body.profile !== undefined ? { profile: body.profile } : {}),
          ...(body.ttl !== undefined ? { lifetimeMs: parseDuration(body.ttl, 'ttl') } : {}),
        },
        opContext(deps, request),
      );
      return reply.status(201).send({
        ca,
        serial: signed.serialHex,
        profile: signed.profile,
        names: signed.names,
        notBefore: signed.notBefore.toISOString(),
        notAfter: signed.notAfter.toISOString(),
        certificate: signed.certificatePem,
        chain: signed.chainPem.join(''),
        fullchain: [signed.certificatePem, ...signed.chainPem].join(''),
      });
    });

    // A key pair made here and returned once with its certificate; keywright keeps no copy of the key.
    app.post('/v1/cas/:ca/issue', async (request, reply) => {
      const { ca } = parseInput(params, request.params, 'params');
      const body = parseInput(issueBody, request.body, 'body');
      authorize(request.principal!, 'cert.issue', { kind: 'ca', name: ca });
      const issued = await service(deps).issueWithKey(
        ca,
        {
          sans: body.sans,
          ...(body.key !== undefined ? { keyType: body.key } : {}),
          ...(body.profile !== undefined ? { profile: body.profile } : {}),
          ...(body.ttl !== undefined ? { lifetimeMs: parseDuration(body.ttl, 'ttl') } : {}),
        },
        opContext(deps, request),
      );
      return reply
        .status(201)
        .header('cache-control', 'no-store')
        .send({
          ca,
          serial: issued.serialHex,
          profile: issued.profile,
          names: issued.names,
          keyType: issued.keyType,
          notBefore: issued.notBefore.toISOString(),
          notAfter: issued.notAfter.toISOString(),
          certificate: issued.certificatePem,
          chain: issued.chainPem.join(''),
          fullchain: [issued.certificatePem, ...issued.chainPem].join(''),
          privateKey: issued.privateKeyPem,
        });
    });

    app.post('/v1/cas/:ca/revoke', async (request) => {
      const { ca } = parseInput(params, request.params, 'params');
      const body = parseInput(revokeBody, request.body, 'body');
      authorize(request.principal!, 'cert.revoke', { kind: 'ca', name: ca });
      const cas = service(deps);
      const serial = normaliseSerial(body.serial);
      const entry = cas.ledgerEntry(ca, serial);
      const ctx = opContext(deps, request);
      // a managed certificate's version is revoked through its service, so the version says so too
      const version = deps.store
        .collection<VersionRecord>(VERSIONS_COLLECTION)
        .list((v) => v.serialHex === serial && v.issuer === `ca:${ca}`)[0];
      if (version !== undefined && deps.certificates !== undefined) {
        authorize(request.principal!, 'cert.revoke', { kind: 'cert', name: version.certificate });
        const current = deps.certificates.get(version.certificate).currentVersion === version.version;
        // by name when current: CertificateService.findBySerial drops a serial's leading zero nibble
        await deps.certificates.revoke(
          current ? { name: version.certificate } : { serialHex: serial },
          body.reason,
          ctx,
        );
      } else {
        await cas.revoke(ca, serial, body.reason, ctx);
      }
      const after = cas.ledgerEntry(ca, entry.serialHex);
      return {
        ca,
        serial: after.serialHex,
        revokedAt: after.revokedAt ?? null,
        reason: after.reason ?? null,
        certificate: version?.certificate ?? null,
      };
    });

    app.post('/v1/cas/:ca/export-key', async (request) => {
      const { ca } = parseInput(params, request.params, 'params');
      const body = parseInput(exportBody, request.body, 'body');
      const principal = request.principal!;
      authorize(principal, 'key.export', { kind: 'ca', name: ca });
      // a service token may pull its bundles (key.export); a CA key is for administrators only
      if (principal.role !== 'admin') {
        throw new AccessError(
          'ACCESS_DENIED',
          `access denied: exporting a CA key needs an admin token, not ${principal.role}`,
          {
            details: { role: principal.role, action: 'key.export', resource: `ca:${ca}` },
          },
        );
      }
      const privateKey = await service(deps).exportKey(ca, body.passphrase, opContext(deps, request));
      return { ca, format: 'pkcs8-encrypted', cipher: 'aes-256-cbc', privateKey };
    });

    app.post('/v1/cas/:ca/disable-key', async (request) => {
      const { ca } = parseInput(params, request.params, 'params');
      authorize(request.principal!, 'ca.manage', { kind: 'ca', name: ca });
      return { ca: await service(deps).disableKey(ca, opContext(deps, request)) };
    });
  };
}
