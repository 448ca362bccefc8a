/**
 * Requests per minute per caller (token id, mTLS identity, or client address when unauthenticated), in
 * fixed one-minute windows. One limiter serves the fastify routes and the bundle hot path, so a caller
 * has one budget whichever way its request is answered.
 */
export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the caller's window resets (at least 1): Retry-After when refused. */
  readonly resetSeconds: number;
}

/** Above this many callers, windows that ended are swept before a new caller is added. */
const SWEEP_AT = 10_000;

export class RateLimiter {
  readonly limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, { count: number; endsAt: number }>();

  constructor(limit: number, windowMs = 60_000, now: () => number = Date.now) {
    this.limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Counts one request of `caller` and says whether it may go on. */
  take(caller: string): RateDecision {
    const now = this.#now();
    let w = this.#windows.get(caller);
    if (w === undefined || w.endsAt <= now) {
      if (w === undefined && this.#windows.size >= SWEEP_AT) this.#sweep(now);
      w = { count: 0, endsAt: now + this.#windowMs };
      this.#windows.set(caller, w);
    }
    w.count += 1;
    return {
      allowed: w.count <= this.limit,
      limit: this.limit,
      remaining: Math.max(0, this.limit - w.count),
      resetSeconds: Math.max(1, Math.ceil((w.endsAt - now) / 1000)),
    };
  }

  #sweep(now: number): void {
    for (const [caller, w] of this.#windows) if (w.endsAt <= now) this.#windows.delete(caller);
  }
}

/** The headers every limited answer carries (the names @fastify/rate-limit and most APIs use). */
export function rateHeaders(d: RateDecision): Record<string, string> {
  return {
    'x-ratelimit-limit': String(d.limit),
    'x-ratelimit-remaining': String(d.remaining),
    'x-ratelimit-reset': String(d.resetSeconds),
    ...(d.allowed ? {} : { 'retry-after': String(d.resetSeconds) }),
  };
}
