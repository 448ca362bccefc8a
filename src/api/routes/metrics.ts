import type { FastifyPluginAsync } from 'fastify';
import { authorize } from '../../access/policy.js';
import type { ApiDeps } from '../deps.js';

/** Prometheus text format; scrapers authenticate with a bearer token like any client (status.read). */
export function metricsRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/metrics', async (request, reply) => {
      authorize(request.principal!, 'status.read');
      const registry = deps.metrics?.registry;
      if (registry === undefined) return reply.status(404).send();
      return reply.type(registry.contentType).send(await registry.metrics());
    });
  };
}
