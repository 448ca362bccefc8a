import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { ApiError } from '../../core/errors.js';
import { NAME_PATTERN } from '../../core/ids.js';
import { authorize, inScope } from '../../access/policy.js';
import type { AcmeAccountRecord, AcmeService } from '../../acme/index.js';
import type { ApiDeps } from '../deps.js';
import { parseInput } from '../validate.js';
import { audited } from '../audited.js';

const accountName = z
  .string()
  .regex(
    NAME_PATTERN,
    'use 1-64 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit',
  );

const registerBody = z.strictObject({
  name: accountName,
  /** A directory URL or an alias: letsencrypt, letsencrypt-staging, zerossl, google, google-staging. */
  directory: z.string().min(1).max(2048),
  email: z.string().min(3).max(254).optional(),
  /** External Account Binding (RFC 8555 §7.3.4): used once, never stored, never echoed. */
  eab: z.strictObject({ kid: z.string().min(1).max(256), hmacKey: z.string().min(16).max(1024) }).optional(),
  agreeTos: z.boolean().default(false),
  /** PEM trust anchors for the directory's HTTPS (private ACME servers). */
  caPem: z
    .string()
    .min(1)
    .max(256 * 1024)
    .optional(),
  /** Issuer CN of the preferred alternate chain. */
  preferredChain: z.string().min(1).max(200).optional(),
});

const nameParams = z.strictObject({ name: accountName });

/** The public view of an account: no key, no EAB HMAC (it was never kept). */
export function accountView(r: AcmeAccountRecord) {
  return {
    name: r.id,
    issuer: `acme:${r.id}`,
    status: r.status,
    directoryUrl: r.directoryUrl,
    directoryAlias: r.directoryAlias ?? null,
    accountUrl: r.accountUrl,
    contact: r.contact,
    keyType: r.keyType,
    keyThumbprint: r.keyThumbprint,
    eabKid: r.eabKid ?? null,
    customTrust: r.caPem !== undefined,
    termsOfServiceAgreed: r.termsOfServiceAgreed,
    termsOfService: r.termsOfService ?? null,
    preferredChain: r.preferredChain ?? null,
    declared: r.declared === true,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    keyRolledAt: r.keyRolledAt ?? null,
    deactivatedAt: r.deactivatedAt ?? null,
  };
}

function acmeOf(deps: ApiDeps): AcmeService {
  if (deps.acme === undefined) {
    throw new ApiError('DAEMON_SEALED', 'the ACME client is not available: the daemon is sealed');
  }
  return deps.acme;
}

export function acmeRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/v1/acme/accounts', (request) => {
      authorize(request.principal!, 'acme.read');
      const acme = acmeOf(deps);
      const visible = (name: string) => inScope(request.principal!, { kind: 'acme', name });
      const accounts = acme.accounts.list().filter((a) => visible(a.id));
      // acme.accounts entries: pending while registered in the background, failed with the last error.
      const declared = acme.declaredStatus().filter((d) => visible(d.name));
      return { accounts: accounts.map(accountView), declared };
    });

    app.get('/v1/acme/accounts/:name', (request) => {
      const { name } = parseInput(nameParams, request.params, 'params');
      authorize(request.principal!, 'acme.read', { kind: 'acme', name });
      return accountView(acmeOf(deps).accounts.get(name));
    });

    app.post('/v1/acme/accounts', async (request, reply) => {
      const body = parseInput(registerBody, request.body, 'body');
      authorize(request.principal!, 'acme.manage', { kind: 'acme', name: body.name });
      const acme = acmeOf(deps);
      const record = await audited(
        deps,
        request,
        {
          action: 'acme.account.register',
          subject: `acme:${body.name}`,
          details: {
            directory: body.directory,
            eab: body.eab !== undefined,
            customTrust: body.caPem !== undefined,
          },
        },
        () =>
          acme.accounts.register({
            name: body.name,
            directory: body.directory,
            email: body.email,
            eab: body.eab,
            agreeTos: body.agreeTos,
            caPem: body.caPem,
            preferredChain: body.preferredChain,
          }),
      );
      return reply.status(201).send(accountView(record));
    });

    app.post('/v1/acme/accounts/:name/rollover', async (request) => {
      const { name } = parseInput(nameParams, request.params, 'params');
      authorize(request.principal!, 'acme.manage', { kind: 'acme', name });
      const acme = acmeOf(deps);
      acme.accounts.get(name); // 404 before auditing a change that cannot happen
      const record = await audited(
        deps,
        request,
        { action: 'acme.account.rollover', subject: `acme:${name}` },
        () => acme.accounts.rollover(name),
      );
      return accountView(record);
    });

    app.post('/v1/acme/accounts/:name/deactivate', async (request) => {
      const { name } = parseInput(nameParams, request.params, 'params');
      authorize(request.principal!, 'acme.manage', { kind: 'acme', name });
      const acme = acmeOf(deps);
      acme.accounts.get(name);
      const record = await audited(
        deps,
        request,
        { action: 'acme.account.deactivate', subject: `acme:${name}` },
        () => acme.accounts.deactivate(name),
      );
      return accountView(record);
    });
  };
}
