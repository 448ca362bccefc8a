import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { authorize } from '../../access/policy.js';
import type { ApiDeps } from '../deps.js';
import { parseInput } from '../validate.js';

const query = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  action: z.string().max(100).optional(),
  subject: z.string().max(300).optional(),
});

export function auditRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/v1/audit', async (request) => {
      authorize(request.principal!, 'audit.read');
      const q = parseInput(query, request.query, 'query');
      const entries = await deps.audit.query({
        limit: q.limit,
        ...(q.action ? { action: q.action } : {}),
        ...(q.subject ? { subject: q.subject } : {}),
      });
      return { entries };
    });
  };
}
