import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { ApiError } from '../../core/errors.js';
import { authorize, inScope } from '../../access/policy.js';
import type { CertificateRecord } from '../../lifecycle/records.js';
import type { ApiDeps } from '../deps.js';
import { parseInput } from '../validate.js';
import { actorOf } from '../audited.js';

const nameParams = z.strictObject({ name: z.string().min(1).max(64) });

function view(c: CertificateRecord) {
  return {
    certificate: c.id,
    currentVersion: c.currentVersion ?? null,
    targets: (c.deployState ?? []).map((s) => ({
      target: s.target,
      kind: s.kind,
      lastDeliveredVersion: s.lastDeliveredVersion ?? null,
      lastDeliveredAt: s.lastDeliveredAt ?? null,
      attempts: s.attempts,
      nextRetryAt: s.nextRetryAt ?? null,
      lastError: s.lastError ?? null,
    })),
  };
}

/** Deploy status per certificate and target, and a manual retry (DESIGN §4 GET /v1/deployments). */
export function deploymentRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/v1/deployments', (request) => {
      authorize(request.principal!, 'deploy.read');
      const certs = deps.certificates;
      if (!certs) throw new ApiError('DAEMON_SEALED', 'the daemon is sealed');
      return {
        deployments: certs
          .list()
          .filter(
            (c) => (c.deploy?.length ?? 0) > 0 && inScope(request.principal!, { kind: 'cert', name: c.id }),
          )
          .map(view),
      };
    });

    app.post('/v1/deployments/:name/retry', async (request) => {
      const { name } = parseInput(nameParams, request.params, 'params');
      authorize(request.principal!, 'deploy.manage', { kind: 'cert', name });
      if (!deps.certificates || !deps.deployer) throw new ApiError('DAEMON_SEALED', 'the daemon is sealed');
      const cert = deps.certificates.get(name);
      if (!cert.deploy?.length)
        throw new ApiError('API_BAD_REQUEST', `certificate "${name}" has no deploy targets`, {
          details: { issues: [{ field: 'name', message: 'no deploy targets' }] },
        });
      const run = await deps.deployer.deploy(name, actorOf(request));
      return {
        ok: run?.ok ?? false,
        reports: run?.reports ?? [],
        deployment: view(deps.certificates.get(name)),
      };
    });
  };
}
