import type { FastifyPluginAsync } from 'fastify';
import { ApiError } from '../../core/errors.js';
import { authorize } from '../../access/policy.js';
import type { ApiDeps } from '../deps.js';
import { actorOf } from '../audited.js';

/** POST /v1/reload: what SIGHUP does — re-read the configuration and reconcile declared certificates. */
export function reloadRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    app.post('/v1/reload', async (request) => {
      authorize(request.principal!, 'cert.manage');
      if (deps.reload === undefined)
        throw new ApiError('API_NOT_FOUND', 'this daemon cannot reload its configuration');
      return { reconciled: await deps.reload(actorOf(request)) };
    });
  };
}
