import type { FastifyPluginAsync } from 'fastify';
import { ApiError } from '../../core/errors.js';
import type { ApiDeps } from '../deps.js';

export function healthRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    const open = { config: { public: true, availableWhenSealed: true } };
    // Liveness: the process answers. Sealed is still alive.
    app.get('/healthz', open, () => ({ status: 'ok', sealed: deps.isSealed() }));
    // Readiness: the store is open, the KEK is loaded and nothing refuses every change (the audit log).
    app.get('/readyz', open, () => {
      if (deps.isSealed())
        throw new ApiError('DAEMON_SEALED', 'not ready: sealed: the master key is not loaded');
      const reason = deps.notReadyReason();
      if (reason !== undefined) throw new ApiError('DAEMON_NOT_READY', `not ready: ${reason}`);
      return { status: 'ready' };
    });
  };
}
