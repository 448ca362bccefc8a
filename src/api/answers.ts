import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyBaseLogger, FastifyError } from 'fastify';
import { ApiError, isAppError, toAppError, type AppError } from '../core/errors.js';
import { toProblem, type Problem } from './problem.js';

/** The caller's X-Request-Id when it is a sane token, else a fresh one: echoed and logged. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(given) ? given : randomUUID();
}

/** The token of an `Authorization: Bearer …` header; undefined when absent or not that shape. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer ([^\s]+)$/i.exec(header);
  return m === null ? undefined : m[1];
}

/**
 * Any error as the problem+json answer and the headers it needs, logged once: the one place errors
 * become HTTP, for the fastify routes and the hot path alike.
 */
export function problemAnswer(
  error: unknown,
  requestId: string,
  log: FastifyBaseLogger,
): { problem: Problem; headers: Record<string, string> } {
  const appError = fromFastifyError(error as FastifyError | AppError);
  const problem = toProblem(appError, requestId);
  if (problem.status >= 500)
    log.error({ err: error, code: appError.code, reqId: requestId }, 'request failed');
  else log.info({ code: appError.code, status: problem.status, reqId: requestId }, 'request refused');
  const headers: Record<string, string> = { 'content-type': 'application/problem+json; charset=utf-8' };
  if (
    appError.code === 'AUTH_REQUIRED' ||
    appError.code === 'AUTH_INVALID' ||
    appError.code === 'AUTH_CERT_INVALID'
  ) {
    headers['www-authenticate'] = 'Bearer realm="keywright"';
  }
  return { problem, headers };
}

/** fastify's own errors (body limits, JSON syntax, content type) become our codes, once, here. */
function fromFastifyError(error: FastifyError | AppError): AppError {
  if (isAppError(error)) return error;
  const code: string = (error as Partial<FastifyError> | undefined)?.code ?? '';
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('API_BODY_TOO_LARGE', 'the request body is larger than the limit (api.bodyLimit)');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError('API_BAD_REQUEST', 'the request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('API_UNSUPPORTED_MEDIA', 'send the body as application/json');
    default:
      if ((error as FastifyError | undefined)?.statusCode === 400)
        return new ApiError('API_BAD_REQUEST', 'the request is malformed');
      return toAppError(error);
  }
}
