import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { parseDuration } from '../../core/duration.js';
import { ROLES } from '../../access/roles.js';
import type { TokenRecord } from '../../access/token-service.js';
import { authorize } from '../../access/policy.js';
import type { ApiDeps } from '../deps.js';
import { parseInput } from '../validate.js';
import { durationText } from '../schemas.js';
import { parseSealRecipient, sealKeyId } from '../auth/sealed-delivery.js';
import { audited, actorOf } from '../audited.js';

const createBody = z.strictObject({
  role: z.enum(ROLES),
  scopes: z.array(z.string().min(1).max(256)).max(64).optional(),
  ttl: durationText.optional(),
  description: z.string().max(200).optional(),
  /** base64url SPKI DER (X25519 or RSA ≥ 2048): sealed bundles for this token go to this key only. */
  sealKey: z.string().max(2048).optional(),
});

const idParams = z.strictObject({
  id: z.string().regex(/^tok_[0-9a-f]{16}$/, 'not a token id (tok_ followed by 16 hex digits)'),
});

/** Refuses a seal key that could not receive a bundle (400 naming why); returns it as given. */
function validSealKey(sealKey: string): string {
  parseSealRecipient(sealKey);
  return sealKey;
}

/** The public view of a token: everything but its hash. */
export function tokenView(r: TokenRecord) {
  return {
    id: r.id,
    role: r.role,
    scopes: r.scopes,
    description: r.description ?? null,
    createdAt: r.createdAt,
    createdBy: r.createdBy,
    expiresAt: r.expiresAt ?? null,
    sealKeyId: r.sealKey === undefined ? null : sealKeyId(r.sealKey),
    revokedAt: r.revokedAt ?? null,
  };
}

export function tokenRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/v1/tokens', (request) => {
      authorize(request.principal!, 'token.manage');
      return { tokens: deps.tokens.list().map(tokenView) };
    });

    app.post('/v1/tokens', async (request, reply) => {
      authorize(request.principal!, 'token.manage');
      const body = parseInput(createBody, request.body, 'body');
      const prepared = deps.tokens.prepare({
        role: body.role,
        scopes: body.scopes ?? [],
        ...(body.ttl ? { ttlMs: parseDuration(body.ttl, 'ttl') } : {}),
        ...(body.description ? { description: body.description } : {}),
        ...(body.sealKey ? { sealKey: validSealKey(body.sealKey) } : {}),
        createdBy: actorOf(request),
      });
      await audited(
        deps,
        request,
        { action: 'token.create', subject: `token:${prepared.record.id}`, details: { role: body.role } },
        () => deps.tokens.commit(prepared),
      );
      // The only time the token is ever shown.
      return reply.status(201).send({ ...tokenView(prepared.record), token: prepared.token });
    });

    app.delete('/v1/tokens/:id', async (request) => {
      authorize(request.principal!, 'token.manage');
      const { id } = parseInput(idParams, request.params, 'params');
      deps.tokens.get(id); // 404 before auditing a change that cannot happen
      const record = await audited(deps, request, { action: 'token.revoke', subject: `token:${id}` }, () =>
        deps.tokens.revoke(id, actorOf(request)),
      );
      return tokenView(record);
    });
  };
}
