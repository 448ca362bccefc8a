import type { FastifyPluginAsync } from 'fastify';
import { authorize } from '../../access/policy.js';
import type { ApiDeps } from '../deps.js';

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
        principal: { tokenId: request.principal!.tokenId, role: request.principal!.role },
      };
    });
  };
}
