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
import { acmeRoutes } from './routes/acme.js';
import { vpnRoutes } from './routes/vpn.js';
import { certificateRoutes } from './routes/certificates.js';
import { caRoutes } from './routes/cas.js';
import { revocationRoutes } from './routes/revocation.js';
import { metricsRoutes } from './routes/metrics.js';
import { reloadRoutes } from './routes/reload.js';
import { deploymentRoutes } from './routes/deployments.js';
import { mtlsRenewRoutes } from './routes/mtls-renew.js';
import { eventRoutes } from './routes/events.js';
import { backupRoutes } from './routes/backup.js';
import rateLimit from '@fastify/rate-limit';
import type { TLSSocket } from 'node:tls';
import { principalActor } from '../access/principal.js';
import { MtlsAuthenticator, checkIdentityRules, type MtlsIdentityRule } from './auth/mtls.js';

export interface ApiServerOptions {
  readonly logger: FastifyBaseLogger;
  readonly bodyLimit: number;
  /**
   * HTTPS. With `clientCa` the listener asks for (never requires) a client certificate and checks it
   * against these CA certificates; `mtlsIdentities` then maps it to a role and scopes.
   */
  readonly https?:
    { key: string | Buffer; cert: string | Buffer; clientCa?: readonly string[] | undefined } | undefined;
  readonly mtlsIdentities?: readonly MtlsIdentityRule[];
  /** Requests per minute per token, mTLS identity, or client address (unauthenticated); none when absent. */
  readonly rateLimit?: number;
  /** Server-sent events heartbeat interval; 15 s by default. */
  readonly eventsHeartbeatMs?: number;
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
    ...(options.https ? { https: httpsOptions(options.https) } : {}),
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance;

  // JSON only: a text/plain body is refused (415-style) rather than handed to handlers as a string.
  app.removeContentTypeParser('text/plain');

  const mtls =
    options.https?.clientCa !== undefined
      ? new MtlsAuthenticator({
          store: deps.store,
          clock: deps.clock,
          identities: checkIdentityRules(options.mtlsIdentities ?? []),
        })
      : undefined;

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
    request.principal = authenticate(deps, request, mtls);
  });

  if (options.rateLimit !== undefined) {
    // Route-level onRequest hooks run after the authentication hook above, so the key is the caller.
    void app.register(rateLimit, {
      max: options.rateLimit,
      timeWindow: 60_000,
      keyGenerator: (request) => (request.principal ? principalActor(request.principal) : `ip:${request.ip}`),
      errorResponseBuilder: (_request, context) =>
        new ApiError(
          'API_RATE_LIMITED',
          `too many requests: at most ${context.max} a minute for this caller; retry in ${context.after}`,
          { details: { limit: context.max, retryAfterSeconds: Math.ceil(context.ttl / 1000) } },
        ),
    });
  }

  app.setNotFoundHandler((request) => {
    throw new ApiError('API_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
  });

  app.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    const appError = fromFastifyError(error);
    const problem = toProblem(appError, request.id);
    if (problem.status >= 500) request.log.error({ err: error, code: appError.code }, 'request failed');
    else request.log.info({ code: appError.code, status: problem.status }, 'request refused');
    if (
      appError.code === 'AUTH_REQUIRED' ||
      appError.code === 'AUTH_INVALID' ||
      appError.code === 'AUTH_CERT_INVALID'
    ) {
      void reply.header('www-authenticate', 'Bearer realm="keywright"');
    }
    return reply.status(problem.status).type('application/problem+json').send(problem);
  });

  void app.register(healthRoutes(deps));
  void app.register(statusRoutes(deps));
  void app.register(tokenRoutes(deps));
  void app.register(auditRoutes(deps));
  void app.register(acmeRoutes(deps));
  void app.register(vpnRoutes(deps));
  void app.register(certificateRoutes(deps));
  void app.register(caRoutes(deps));
  void app.register(revocationRoutes(deps));
  void app.register(metricsRoutes(deps));
  void app.register(reloadRoutes(deps));
  void app.register(deploymentRoutes(deps));
  void app.register(mtlsRenewRoutes(deps));
  void app.register(backupRoutes(deps));
  void app.register(
    eventRoutes(
      deps,
      options.eventsHeartbeatMs === undefined ? {} : { heartbeatMs: options.eventsHeartbeatMs },
    ),
  );
  return app;
}

function httpsOptions(https: NonNullable<ApiServerOptions['https']>) {
  const { clientCa, ...base } = https;
  if (clientCa === undefined) return base;
  // Ask, never require: token clients keep working; authenticate() decides what a certificate is worth.
  return { ...base, ca: [...clientCa], requestCert: true, rejectUnauthorized: false };
}

/** A bearer token when one is sent; otherwise a client certificate, when the listener asks for one. */
function authenticate(
  deps: ApiDeps,
  request: FastifyRequest,
  mtls: MtlsAuthenticator | undefined,
): Principal {
  const header = request.headers.authorization;
  if (header === undefined || header === '') {
    const socket = request.raw.socket as TLSSocket;
    const fromCertificate = mtls !== undefined && socket.encrypted ? mtls.authenticate(socket) : undefined;
    if (fromCertificate !== undefined) return fromCertificate;
    throw new AppError(
      'AUTH_REQUIRED',
      'this route needs a bearer token ("Authorization: Bearer kw_…") or a client certificate from the internal CA',
    );
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
