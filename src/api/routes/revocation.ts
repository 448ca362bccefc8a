/**
 * What relying parties fetch without a token: each CA's CRL (`GET /crl/{ca}.crl`, DER, RFC 5280 §5),
 * its certificate (`GET /ca/{ca}.crt`, the AIA caIssuers target, §4.2.2.1) and its OCSP responder
 * (`POST /ocsp/{ca}` with an application/ocsp-request body, `GET /ocsp/{ca}/{base64 request}`, RFC 6960
 * Appendix A.1). Served on the API listener and on the plain-HTTP listener (`httpListen`), since clients
 * fetch CRLs and OCSP over HTTP (§4.2.1.13). A sealed daemon cannot sign, so these answer only unsealed.
 */
import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyPluginAsync,
} from 'fastify';
import { ApiError, isAppError, toAppError, type AppError } from '../../core/errors.js';
import { NAME_PATTERN } from '../../core/ids.js';
import { MAX_OCSP_REQUEST_BYTES } from '../../pki/ocsp.js';
import { ocspErrorResponse } from '../../ca/ocsp.js';
import type { CaService } from '../../ca/service.js';
import type { ApiDeps } from '../deps.js';
import { toProblem } from '../problem.js';

const PUBLIC = { config: { public: true } } as const;

function service(deps: ApiDeps): CaService {
  if (!deps.cas) throw new ApiError('DAEMON_SEALED', 'the daemon is sealed: it cannot sign CRLs or OCSP');
  return deps.cas;
}

/** `default.crl` → `default`; anything that is not `<name>.<ext>` is a 404, never a lookup. */
function nameFrom(file: string, ext: string, what: string): string {
  const name = file.endsWith(ext) ? file.slice(0, -ext.length) : '';
  if (!NAME_PATTERN.test(name)) {
    throw new ApiError('API_NOT_FOUND', `no ${what} "${file}": use /${what}/<ca>${ext}`);
  }
  return name;
}

export function revocationRoutes(deps: ApiDeps): FastifyPluginAsync {
  return async (app) => {
    // Only inside this plugin: OCSP requests are DER, not JSON (RFC 6960 Appendix A.1).
    app.addContentTypeParser(
      'application/ocsp-request',
      { parseAs: 'buffer', bodyLimit: MAX_OCSP_REQUEST_BYTES },
      (_request, body, done) => done(null, body),
    );

    app.get('/crl/:file', PUBLIC, async (request, reply) => {
      const { file } = request.params as { file: string };
      const crl = await service(deps).crl(nameFrom(file, '.crl', 'crl'));
      const maxAge = Math.max(
        0,
        Math.min(3600, Math.floor((crl.nextUpdate.getTime() - deps.clock.nowMs()) / 1000)),
      );
      return reply
        .type('application/pkix-crl')
        .header('last-modified', crl.thisUpdate.toUTCString())
        .header('expires', crl.nextUpdate.toUTCString())
        .header('cache-control', `public, max-age=${maxAge}`)
        .send(crl.der);
    });

    app.get('/ca/:file', PUBLIC, async (request, reply) => {
      const { file } = request.params as { file: string };
      const der = service(deps).certificateDer(nameFrom(file, '.crt', 'ca'));
      return reply.type('application/pkix-cert').header('cache-control', 'public, max-age=3600').send(der);
    });

    const answer = async (
      ca: string,
      respond: (r: {
        respond(d: Uint8Array): Promise<Buffer>;
        respondGet(s: string): Promise<Buffer>;
      }) => Promise<Buffer>,
    ) => {
      // RFC 6960 §2.3: a responder that does not serve this CA answers `unauthorized`, not an HTTP error
      const responder = NAME_PATTERN.test(ca) ? await service(deps).ocsp(ca) : undefined;
      return responder ? respond(responder) : ocspErrorResponse('unauthorized');
    };

    app.post('/ocsp/:ca', PUBLIC, async (request, reply) => {
      const { ca } = request.params as { ca: string };
      const body = request.body;
      const der = Buffer.isBuffer(body)
        ? await answer(ca, (r) => r.respond(body))
        : ocspErrorResponse('malformedRequest');
      return reply.type('application/ocsp-response').send(der);
    });

    app.get('/ocsp/:ca/*', PUBLIC, async (request, reply) => {
      const { ca } = request.params as { ca: string };
      // the raw path: base64 may hold '/', '+' and '=' (URL-encoded or not), which routing would alter
      const path = request.url.split('?')[0]!;
      const prefix = `/ocsp/${ca}/`;
      const segment = path.startsWith(prefix) ? path.slice(prefix.length) : '';
      const der = await answer(ca, (r) => r.respondGet(segment));
      return reply.type('application/ocsp-response').header('cache-control', 'no-cache').send(der);
    });
  };
}

/**
 * The plain-HTTP listener (`httpListen`): the revocation routes and nothing else, so no token or key
 * ever crosses it. Errors are problem+json as on the API listener.
 */
export function createRevocationServer(
  deps: ApiDeps,
  options: { logger: FastifyBaseLogger },
): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: MAX_OCSP_REQUEST_BYTES,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance;
  app.removeAllContentTypeParsers();
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (deps.isSealed()) {
      throw new ApiError('DAEMON_SEALED', 'the daemon is sealed: it cannot sign CRLs or OCSP responses');
    }
  });
  app.setNotFoundHandler((request) => {
    throw new ApiError(
      'API_NOT_FOUND',
      `no route ${request.method} ${request.url.split('?')[0]}: this listener serves /crl, /ocsp and /ca only`,
    );
  });
  app.setErrorHandler((error: FastifyError | AppError, request, reply) => {
    const appError: AppError = isAppError(error)
      ? error
      : error.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? new ApiError('API_BODY_TOO_LARGE', 'an OCSP request is at most 64 KB')
        : error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? new ApiError('API_UNSUPPORTED_MEDIA', 'send OCSP requests as application/ocsp-request')
          : toAppError(error);
    const problem = toProblem(appError, request.id);
    if (problem.status >= 500) request.log.error({ err: error, code: appError.code }, 'request failed');
    return reply.status(problem.status).type('application/problem+json').send(problem);
  });
  void app.register(revocationRoutes(deps));
  return app;
}
