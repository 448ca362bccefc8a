import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import { ApiError, AppError } from '../core/errors.js';
import type { Principal } from '../access/principal.js';
import type { ApiDeps } from './deps.js';
import { bearerToken, problemAnswer, requestIdOf } from './answers.js';
import { bundleHotPath } from './hot-path.js';
import { RateLimiter, rateHeaders } from './rate-limit.js';
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
  const limiter = options.rateLimit === undefined ? undefined : new RateLimiter(options.rateLimit);
  let closing = false;
  const hotPath = bundleHotPath({ deps, logger: options.logger, limiter, closing: () => closing });
  const https = options.https ? httpsOptions(options.https) : undefined;
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit,
    // Only read for the URLs fastify logs and reports: the factory below makes the server.
    ...(https ? { https } : {}),
    // The server is ours so bundle pulls can be answered before fastify sees them (hot-path.ts).
    serverFactory: (fastifyHandler: RequestListener, opts: Record<string, unknown>) => {
      const handler: RequestListener = (req, res) => {
        if (!hotPath(req, res)) fastifyHandler(req, res);
      };
      const server = https ? createHttpsServer(https, handler) : createHttpServer(handler);
      // What fastify applies to a server it makes itself (its defaults: keep-alive 72 s, no timeouts).
      const ms = (key: string, fallback: number) => (typeof opts[key] === 'number' ? opts[key] : fallback);
      server.keepAliveTimeout = ms('keepAliveTimeout', 72_000);
      server.requestTimeout = ms('requestTimeout', 0);
      server.setTimeout(ms('connectionTimeout', 0));
      return server;
    },
    genReqId: requestIdOf,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance;
  app.addHook('preClose', () => {
    closing = true;
  });

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
    if (!config.public) request.principal = authenticate(deps, request, mtls);
    if (limiter === undefined) return;
    const decision = limiter.take(request.principal ? principalActor(request.principal) : `ip:${request.ip}`);
    void reply.headers(rateHeaders(decision));
    if (!decision.allowed) {
      throw new ApiError(
        'API_RATE_LIMITED',
        `too many requests: at most ${decision.limit} a minute for this caller; retry in ${decision.resetSeconds} s`,
        { details: { limit: decision.limit, retryAfterSeconds: decision.resetSeconds } },
      );
    }
  });

  app.setNotFoundHandler((request) => {
    throw new ApiError('API_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
  });

  app.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    const { problem, headers } = problemAnswer(error, request.id, request.log);
    return reply.status(problem.status).headers(headers).send(problem);
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
  const token = bearerToken(header);
  if (token === undefined)
    throw new AppError('AUTH_INVALID', 'the Authorization header must be "Bearer <token>"');
  return deps.tokens.authenticate(token);
}
