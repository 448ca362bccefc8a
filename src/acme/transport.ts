/**
 * The boundary to acme-client and its HTTP stack (axios). This file and client.ts are the only ones that
 * know acme-client's internals; everything else sees AcmeErrors and plain data.
 *
 * acme-client shares one axios instance between all its clients and turns every failure into a bare
 * `Error(detail)`. Three things are fixed here, once:
 *  - Per-call settings (trust anchors of this directory, timeout, abort signal) travel in an
 *    AsyncLocalStorage scope and a request interceptor applies them, so several accounts at several CAs
 *    with different trust can work side by side.
 *  - A response interceptor records the last problem document (or the `invalid` challenge/authz/order
 *    that ended a poll) in that scope, so the bare Error can be mapped to an AcmeError with the problem's
 *    type, detail, Retry-After and retryable flag.
 *  - acme-client's own retry loop (5 attempts, 5+10+15+20+25 s) is switched off: a retryable problem
 *    goes back to the caller with its Retry-After and the lifecycle backs off. A connection or TLS
 *    failure is turned into a TransportFailure *before* acme-client's interceptor sees it; that
 *    interceptor would otherwise crash on the missing response (`TypeError ... reading 'config'`).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { Agent } from 'node:https';
import type { axios as AcmeAxios } from 'acme-client';
import type { Clock } from '../core/clock.js';
import { AcmeError, isAppError, type AppError } from '../core/errors.js';
import { loadAcmeClient } from './acme-client.js';
import {
  asProblem,
  parseRetryAfter,
  problemToError,
  shortProblemType,
  type AcmeProblem,
} from './problems.js';

export interface CallStats {
  requests: number;
  /** badNonce answers seen (acme-client retries them with the nonce the answer carries, §6.5). */
  badNonces: number;
}

interface CallScope {
  readonly agent: Agent | undefined;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly clock: Clock;
  readonly stats: CallStats;
  lastProblem: AcmeProblem | undefined;
}

export interface CallOptions {
  /** PEM trust anchors for this directory's HTTPS; the system's roots when absent. */
  readonly caPem?: string | undefined;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  readonly clock: Clock;
}

/** A request that got no HTTP answer at all: refused, unresolvable, timed out, TLS not trusted. */
export class TransportFailure extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly url: string | undefined,
    readonly tls: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'TransportFailure';
  }
}

// axios is acme-client's dependency, not ours: its types are taken from acme-client's instance.
type RequestConfig = Parameters<Parameters<typeof AcmeAxios.interceptors.request.use>[0] & object>[0];
type Response = Parameters<Parameters<typeof AcmeAxios.interceptors.response.use>[0] & object>[0];

const scopes = new AsyncLocalStorage<CallScope>();
const agents = new Map<string, Agent>();

function agentFor(caPem: string | undefined): Agent | undefined {
  if (caPem === undefined) return undefined;
  const key = createHash('sha256').update(caPem).digest('hex');
  let agent = agents.get(key);
  if (agent === undefined) {
    // Only the given anchors: a private ACME server's trust should not widen to every public CA.
    agent = new Agent({ ca: caPem });
    agents.set(key, agent);
  }
  return agent;
}

// Node's TLS verification codes (openssl X509_V_ERR_* names) plus the hostname check.
const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

interface AxiosLikeError {
  readonly isAxiosError?: boolean;
  readonly code?: string;
  readonly message?: string;
  readonly response?: unknown;
  readonly config?: { url?: string };
}

function onNoResponse(error: unknown): never {
  const e = error as AxiosLikeError;
  if (e?.isAxiosError === true && e.response === undefined) {
    const url = e.config?.url;
    const scope = scopes.getStore();
    const code = e.code;
    const tls =
      code !== undefined && (TLS_CODES.has(code) || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS'));
    let why: string;
    if (tls) why = `TLS: the server's certificate is not trusted (${code})`;
    else if (code === 'ECONNABORTED' || code === 'ETIMEDOUT')
      why = `no answer within ${scope?.timeoutMs ?? '?'} ms`;
    else if (code === 'ERR_CANCELED') why = 'cancelled';
    else why = code ?? e.message ?? 'request failed';
    throw new TransportFailure(why, code, url, tls, { cause: error });
  }
  throw error;
}

function applyScope(config: RequestConfig): RequestConfig {
  const scope = scopes.getStore();
  if (scope === undefined) return config;
  if (scope.agent !== undefined) config.httpsAgent = scope.agent;
  config.timeout = scope.timeoutMs;
  if (scope.signal !== undefined) config.signal = scope.signal;
  return config;
}

/** The problem an `invalid` challenge, authorization or order carries (RFC 8555 §7.1.3–7.1.6). */
function invalidObjectProblem(data: unknown): AcmeProblem | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const d = data as Record<string, unknown>;
  if (d.status !== 'invalid') return undefined;
  const idValue = (d.identifier as { value?: unknown } | null | undefined)?.value;
  const identifier = typeof idValue === 'string' ? idValue : undefined;
  const direct = asProblem(d.error);
  const isChallenge = typeof d.token === 'string' && typeof d.type === 'string';
  if (direct) return { ...direct, fromChallenge: isChallenge, ...(identifier ? { identifier } : {}) };
  if (Array.isArray(d.challenges)) {
    for (const ch of d.challenges as Record<string, unknown>[]) {
      const p = asProblem(ch?.error);
      if (p) return { ...p, fromChallenge: true, ...(identifier ? { identifier } : {}) };
    }
    return {
      type: 'about:blank',
      detail: 'the authorization became invalid without a challenge error',
      fromChallenge: true,
      ...(identifier ? { identifier } : {}),
    };
  }
  return { type: 'about:blank', detail: 'the object became invalid without an error document' };
}

function recordResponse(resp: Response): Response {
  const scope = scopes.getStore();
  if (scope === undefined) return resp;
  scope.stats.requests += 1;
  const url = resp.config?.url;
  if (resp.status >= 400) {
    const problem = asProblem(resp.data);
    if (problem && shortProblemType(problem.type) === 'badNonce') scope.stats.badNonces += 1;
    const retryAfter = parseRetryAfter(resp.headers?.['retry-after'], scope.clock.now());
    scope.lastProblem = {
      ...(problem ?? { type: 'about:blank', detail: `HTTP ${resp.status}` }),
      status: resp.status,
      ...(url ? { url } : {}),
      ...(retryAfter ? { retryAfter } : {}),
    };
    return resp;
  }
  scope.lastProblem = invalidObjectProblem(resp.data);
  return resp;
}

let installed: Promise<typeof AcmeAxios> | undefined;

/**
 * Loads acme-client (on first use, see acme-client.ts) and installs the interceptors once per process:
 * acme-client's axios instance is a module singleton.
 */
function installTransport(): Promise<typeof AcmeAxios> {
  installed ??= loadAcmeClient().then(({ axios: acmeAxios }) => {
    const settings = (acmeAxios.defaults as unknown as { acmeSettings?: Record<string, number> })
      .acmeSettings;
    if (settings) settings.retryMaxAttempts = 0;
    acmeAxios.interceptors.request.use(applyScope);
    // Ours must run before acme-client's own response interceptor: re-register theirs after ours.
    const manager = acmeAxios.interceptors.response;
    const theirs = [...(manager.handlers ?? [])];
    manager.clear();
    manager.use(undefined, onNoResponse);
    for (const h of theirs) if (h) manager.use(h.fulfilled, h.rejected);
    manager.use(recordResponse);
    return acmeAxios;
  });
  installed.catch(() => (installed = undefined)); // a failed import may be retried
  return installed;
}

/** Runs `fn` with this directory's trust, timeout and signal applied to every request it makes. */
export async function withAcmeCall<T>(
  options: CallOptions,
  fn: (stats: CallStats) => Promise<T>,
): Promise<T> {
  await installTransport();
  const scope: CallScope = {
    agent: agentFor(options.caPem),
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    clock: options.clock,
    stats: { requests: 0, badNonces: 0 },
    lastProblem: undefined,
  };
  return scopes.run(scope, () => fn(scope.stats));
}

/** A parallel branch (one authorization) gets its own "last problem", sharing settings and counters. */
export function inBranch<T>(fn: () => Promise<T>): Promise<T> {
  const parent = scopes.getStore();
  if (parent === undefined) return fn();
  return scopes.run({ ...parent, lastProblem: undefined }, fn);
}

/**
 * Runs one protocol step and maps whatever it throws into an AppError naming the step: the recorded
 * problem document when there is one, a TransportFailure as ACME_DIRECTORY_UNREACHABLE, anything else
 * as ACME_ERROR with acme-client's message.
 */
export async function step<T>(context: string, fn: () => Promise<T>): Promise<T> {
  const scope = scopes.getStore();
  if (scope) scope.lastProblem = undefined;
  try {
    return await fn();
  } catch (err) {
    throw toAcmeError(err, context);
  }
}

export function toAcmeError(err: unknown, context: string): AppError {
  if (isAppError(err)) return err;
  if (err instanceof TransportFailure) {
    const where = err.url ? new URL(err.url).origin : 'the ACME server';
    const hint = err.tls
      ? '; give the directory its CA with --ca-file (caPem), or check the URL'
      : err.code === 'ENOTFOUND' || err.code === 'ECONNREFUSED'
        ? '; check the directory URL'
        : '';
    return new AcmeError(
      'ACME_DIRECTORY_UNREACHABLE',
      `${context}: cannot reach ${where}: ${err.message}${hint}`,
      {
        cause: err,
        retryable: !err.tls,
        details: { ...(err.code ? { transportCode: err.code } : {}), ...(err.url ? { url: err.url } : {}) },
      },
    );
  }
  const problem = scopes.getStore()?.lastProblem;
  if (problem) return problemToError(problem, context);
  const message = err instanceof Error ? err.message : String(err);
  return new AcmeError('ACME_ERROR', `${context}: ${message || 'failed'}`, { cause: err, retryable: false });
}

/** A plain GET (directory, renewalInfo) through the same stack, so trust and timeouts apply. */
export async function getJson(
  url: string,
): Promise<{ status: number; headers: Record<string, unknown>; data: unknown }> {
  const acmeAxios = await installTransport();
  const resp = await acmeAxios.get<unknown>(url, { validateStatus: () => true, responseType: 'json' });
  return { status: resp.status, headers: resp.headers, data: resp.data };
}
