import { ERROR_CATALOGUE, type AppError, type ErrorCategory } from '../core/errors.js';

/** The one mapping of error categories to HTTP status (docs/errors.md). */
export const STATUS_BY_CATEGORY: Readonly<Record<ErrorCategory, number>> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  unavailable: 503,
  integrity: 500,
  upstream: 502,
  internal: 500,
};

/** RFC 9457 problem details, with keywright's stable `code`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  retryable: boolean;
  requestId: string;
  details?: Readonly<Record<string, unknown>>;
}

export function toProblem(err: AppError, requestId: string): Problem {
  const status = STATUS_BY_CATEGORY[err.category];
  const internal = err.category === 'internal';
  const problem: Problem = {
    type: `urn:keywright:error:${err.code}`,
    title: ERROR_CATALOGUE[err.code].summary,
    status,
    // Internal failures say only that they happened; the cause is in the daemon's log under the request id.
    detail: internal ? `internal error; see the daemon log for request ${requestId}` : err.message,
    code: err.code,
    retryable: err.retryable,
    requestId,
  };
  if (!internal && Object.keys(err.details).length > 0) problem.details = err.details;
  return problem;
}
