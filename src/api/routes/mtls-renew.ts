import type { TLSSocket } from 'node:tls';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { AccessError, ApiError, CaError } from '../../core/errors.js';
import { parseCertificate } from '../../pki/certificate.js';
import { parseCsr } from '../../pki/csr.js';
import { findExtension } from '../../pki/extensions.js';
import { formatGeneralName } from '../../pki/general-name.js';
import { principalActor } from '../../access/principal.js';
import type { OpContext } from '../../issuer/port.js';
import type { ApiDeps } from '../deps.js';
import { parseInput } from '../validate.js';

const body = z.strictObject({
  csr: z
    .string()
    .min(1)
    .max(64 * 1024),
});

/**
 * POST /v1/mtls/renew: a service renews its own client certificate, authenticated by that certificate
 * alone (never a token). The CSR must ask for exactly the names of the presenting certificate; the new one
 * comes from the same CA, under the `client` profile, with the same lifetime; signing is audited as
 * `mtls:<identity>`. No role grants this: it is the certificate's own act, limited to its own names.
 */
export function mtlsRenewRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    app.post('/v1/mtls/renew', async (request, reply) => {
      const principal = request.principal!;
      if (principal.kind !== 'mtls') {
        throw new AccessError(
          'ACCESS_DENIED',
          'only a client certificate can renew itself: call this over mTLS, without a bearer token',
        );
      }
      const { csr } = parseInput(body, request.body, 'body');
      if (!deps.cas) throw new ApiError('DAEMON_SEALED', 'the daemon is sealed');
      const peer = (request.raw.socket as TLSSocket).getPeerCertificate();
      const current = parseCertificate(peer.raw, 'client certificate');
      const names = (findExtension(current.extensions, 'subjectAltName')?.names ?? [])
        .map(formatGeneralName)
        .sort();
      const asked = parseCsr(csr).requestedNames.map(formatGeneralName).sort();
      if (asked.join('\n') !== names.join('\n')) {
        throw new CaError(
          'POLICY_VIOLATION',
          `the CSR must ask for exactly the names of the presenting certificate (${names.join(', ')})`,
          {
            details: { rule: 'same_names', asked: asked.join(','), current: names.join(',') },
          },
        );
      }
      const ctx: OpContext = {
        clock: deps.clock,
        logger: request.log,
        actor: principalActor(principal),
        requestId: request.id,
      };
      const signed = await deps.cas.sign(
        principal.ca,
        { csr, profile: 'client', lifetimeMs: current.notAfter.getTime() - current.notBefore.getTime() },
        ctx,
      );
      return reply.status(201).send({
        ca: principal.ca,
        serial: signed.serialHex,
        names: signed.names,
        notBefore: signed.notBefore.toISOString(),
        notAfter: signed.notAfter.toISOString(),
        certificate: signed.certificatePem,
        chain: signed.chainPem.join(''),
        fullchain: [signed.certificatePem, ...signed.chainPem].join(''),
      });
    });
  };
}
