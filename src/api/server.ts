import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import { ApiError, AppError, isAppError, toAppError } from '../core/errors.js';
import type { Principal } from '../access/principal.js';
import type { ApiDeps } from './deps.js';
import { toProblem } from './problem.js';
import { healthRoutes } from './routes/health.js';
import { tokenRoutes } from './routes/tokens.js';
import { auditRoutes } from './routes/audit.js';
import { statusRoutes } from './routes/status.js';
import { vpnRoutes } from './routes/vpn.js';
import { certificateRoutes } from './routes/certificates.js';
import { caRoutes } from './routes/cas.js';
import { revocationRoutes } from './routes/revocation.js';
import { metricsRoutes } from './routes/metrics.js';

export interface ApiServerOptions {
  readonly logger: FastifyBaseLogger;
  readonly bodyLimit: number;
  readonly https?: { key: string | Buffer; cert: string | Buffer } | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** Public routes (health, CRL, OCSP) need no token and answer while sealed when `sealed` is true. */
    public?: boolean;
    availableWhenSealed?: boolean;
  }
}

/** Builds the fastify app: auth, problem+json errors, request ids and one plugin per resource. */
export function createApiServer(deps: ApiDeps, options: ApiServerOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit,
    ...(options.https ? { https: options.https } : {}),
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance;

  // JSON only: a text/plain body is refused (415-style) rather than handed to handlers as a string.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    const config = request.routeOptions.config;
    if (deps.isSealed() && !config.availableWhenSealed) {
      throw new ApiError(
        'DAEMON_SEALED',
        'the daemon is sealed: start it with its master key (see keywright serve --help)',
      );
    }
    if (config.public) return;
    request.principal = authenticate(deps, request);
  });

  app.setNotFoundHandler((request) => {
    throw new ApiError('API_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
  });

  app.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    const appError = fromFastifyError(error);
    const problem = toProblem(appError, request.id);
    if (problem.status >= 500) request.log.error({ err: error, code: appError.code }, 'request failed');
    else request.log.info({ code: appError.code, status: problem.status }, 'request refused');
    if (appError.code === 'AUTH_REQUIRED' || appError.code === 'AUTH_INVALID') {
      void reply.header('www-authenticate', 'Bearer realm="keywright"');
    }
    return reply.status(problem.status).type('application/problem+json').send(problem);
  });

  void app.register(healthRoutes(deps));
  void app.register(statusRoutes(deps));
  void app.register(tokenRoutes(deps));
  void app.register(auditRoutes(deps));
  void app.register(vpnRoutes(deps));
  void app.register(certificateRoutes(deps));
  void app.register(caRoutes(deps));
  void app.register(revocationRoutes(deps));
  void app.register(metricsRoutes(deps));
  return app;
}

function authenticate(deps: ApiDeps, request: FastifyRequest): Principal {
  const header = request.headers.authorization;
  if (header === undefined || header === '') {
    throw new AppError('AUTH_REQUIRED', 'this route needs a bearer token: send "Authorization: Bearer kw_…"');
  }
  const m = /^Bearer ([^\s]+)$/i.exec(header);
  if (!m) throw new AppError('AUTH_INVALID', 'the Authorization header must be "Bearer <token>"');
  return deps.tokens.authenticate(m[1]!);
}

/** fastify's own errors (body limits, JSON syntax, content type) become our codes, once, here. */
function fromFastifyError(error: FastifyError | AppError): AppError {
  if (isAppError(error)) return error;
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('API_BODY_TOO_LARGE', 'the request body is larger than the limit (api.bodyLimit)');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('API_BAD_REQUEST', 'the request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('API_UNSUPPORTED_MEDIA', 'send the body as application/json');
    default:
      if (error.statusCode === 400) return new ApiError('API_BAD_REQUEST', 'the request is malformed');
      return toAppError(error);
  }
}
