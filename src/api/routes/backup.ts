import type { FastifyPluginAsync } from 'fastify';
import { ApiError } from '../../core/errors.js';
import { authorize } from '../../access/policy.js';
import type { ApiDeps } from '../deps.js';
import { actorOf } from '../audited.js';

/**
 * GET /v1/backup: a consistent backup of the data directory (docs/storage.md "Backups"), admin only.
 * The daemon writes the `backup.create` audit entry before the first byte (fail closed) and the backup's
 * audit log ends with it. The body holds sealed keys only: it opens nothing without the KEK.
 */
export function backupRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/v1/backup', async (request, reply) => {
      authorize(request.principal!, 'backup.create');
      if (deps.backup === undefined) {
        throw new ApiError('DAEMON_NOT_READY', 'this daemon is not set up to take backups');
      }
      const backup = await deps.backup({ actor: actorOf(request), requestId: request.id });
      backup.body.on('error', (err) =>
        request.log.error({ err }, 'writing the backup failed; the client gets a truncated file'),
      );
      return reply
        .type('application/gzip')
        .header('cache-control', 'no-store')
        .header('content-disposition', `attachment; filename="${backup.filename}"`)
        .send(backup.body);
    });
  };
}
