/**
 * ACME problem documents (RFC 8555 §6.7, RFC 7807) → AcmeError, wrapped once here. Whether a problem is
 * worth retrying is a property of its type, so the table below decides it, not the call site.
 */
import { AcmeError, type ErrorCode } from '../core/errors.js';

export const ACME_ERROR_NS = 'urn:ietf:params:acme:error:';

export interface Subproblem {
  readonly type: string;
  readonly detail?: string;
  readonly identifier?: unknown;
}

/** An RFC 7807 problem document as the server sent it (§6.7.1 subproblems included). */
export interface ProblemDoc {
  readonly type: string;
  readonly detail?: string;
  readonly subproblems?: readonly Subproblem[];
}

/** A problem as the server sent it, plus what the HTTP layer added. */
export interface AcmeProblem extends ProblemDoc {
  readonly status?: number;
  /** From the Retry-After header (RFC 8555 §6.6: rateLimited SHOULD carry one). */
  readonly retryAfter?: Date;
  /** Where the problem came from: the request URL, or `challenge` when a validation failed. */
  readonly url?: string;
  readonly identifier?: string;
  readonly fromChallenge?: boolean;
}

/**
 * Retryable: a later attempt, after backing off, may succeed without anyone changing anything.
 * Terminal: the CA has decided; retrying only burns rate limit (unauthorized, rejectedIdentifier, caa …).
 * Unknown types count as terminal: better a clear failure than a retry storm.
 */
const RETRYABLE: ReadonlySet<string> = new Set([
  'badNonce', // §6.5: a fresh nonce fixes it
  'rateLimited', // §6.6: after Retry-After
  'serverInternal',
  'connection', // §8: the CA could not reach us this time
  'dns',
  'tls',
  'incorrectResponse',
]);

/** `urn:ietf:params:acme:error:rateLimited` → `rateLimited`; other namespaces unchanged. */
export function shortProblemType(type: string): string {
  return type.startsWith(ACME_ERROR_NS) ? type.slice(ACME_ERROR_NS.length) : type;
}

/** The problem type an AcmeError carries in its details, shortened; '' when it carries none. */
export function problemTypeOf(err: { readonly details: Readonly<Record<string, unknown>> }): string {
  const type = err.details.problemType;
  return typeof type === 'string' ? shortProblemType(type) : '';
}

export function isRetryableProblem(type: string): boolean {
  return RETRYABLE.has(shortProblemType(type));
}

/** Does a parsed JSON body look like an RFC 7807 problem document? */
export function asProblem(body: unknown): ProblemDoc | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.type !== 'string') return undefined;
  return {
    type: b.type,
    ...(typeof b.detail === 'string' ? { detail: b.detail } : {}),
    ...(Array.isArray(b.subproblems)
      ? {
          subproblems: b.subproblems
            .filter((s): s is Record<string, unknown> => typeof s === 'object' && s !== null)
            .map((s) => ({
              type: typeof s.type === 'string' ? s.type : '',
              ...(typeof s.detail === 'string' ? { detail: s.detail } : {}),
              ...(s.identifier !== undefined ? { identifier: s.identifier } : {}),
            })),
        }
      : {}),
  };
}

/**
 * RFC 9110 §10.2.3: delay-seconds or an HTTP-date. Returns the instant to wait for, or undefined when the
 * header is absent or unparseable (never NaN).
 */
export function parseRetryAfter(header: unknown, now: Date): Date | undefined {
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return new Date(now.getTime() + Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : new Date(at);
}

/** Problems a caller of the issuer acts on differently get their own code; the rest are ACME_ERROR. */
function codeFor(problem: AcmeProblem): Extract<ErrorCode, `ACME_${string}`> {
  const short = shortProblemType(problem.type);
  if (problem.fromChallenge === true) return 'ACME_CHALLENGE_FAILED';
  if (short === 'invalidProfile') return 'ACME_PROFILE_UNKNOWN';
  if (short === 'accountDoesNotExist') return 'ACME_ACCOUNT_NOT_FOUND';
  return 'ACME_ERROR';
}

/** The one place a problem document becomes an AcmeError: type, detail, retryable, Retry-After. */
export function problemToError(problem: AcmeProblem, context: string): AcmeError {
  const short = shortProblemType(problem.type);
  const detail = problem.detail ?? '(no detail)';
  const sub =
    problem.subproblems && problem.subproblems.length > 0
      ? ` [${problem.subproblems.map((s) => `${shortProblemType(s.type)}: ${s.detail ?? ''}`.trim()).join('; ')}]`
      : '';
  const after = problem.retryAfter ? `; retry after ${problem.retryAfter.toISOString()}` : '';
  const who = problem.identifier ? ` for ${problem.identifier}` : '';
  return new AcmeError(codeFor(problem), `${context}${who}: ${short}: ${detail}${sub}${after}`, {
    retryable: isRetryableProblem(problem.type),
    details: {
      problemType: problem.type,
      detail,
      ...(problem.status !== undefined ? { status: problem.status } : {}),
      ...(problem.retryAfter ? { retryAfter: problem.retryAfter.toISOString() } : {}),
      ...(problem.identifier ? { identifier: problem.identifier } : {}),
      ...(problem.subproblems && problem.subproblems.length > 0
        ? { subproblems: problem.subproblems.map((s) => ({ type: s.type, detail: s.detail ?? '' })) }
        : {}),
    },
  });
}
