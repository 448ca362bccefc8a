import type { FastifyPluginAsync } from 'fastify';
import { authorize } from '../../access/policy.js';
import type { ApiDeps } from '../deps.js';
import type { Principal } from '../../access/principal.js';

function principalView(p: Principal) {
  return p.kind === 'token'
    ? { tokenId: p.tokenId, role: p.role }
    : { identity: p.identity, serial: p.serialHex, role: p.role };
}

export function statusRoutes(deps: ApiDeps): FastifyPluginAsync {
  const startedAt = deps.clock.now();
  return async (app) => {
    app.get('/v1/status', (request) => {
      authorize(request.principal!, 'status.read');
      return {
        version: deps.version,
        startedAt: startedAt.toISOString(),
        uptimeSeconds: Math.round((deps.clock.nowMs() - startedAt.getTime()) / 1000),
        sealed: deps.isSealed(),
        schemaVersion: deps.store.schemaVersion,
        principal: principalView(request.principal!),
      };
    });
  };
}
