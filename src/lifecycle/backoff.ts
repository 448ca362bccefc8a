/**
 * Retrying a failed renewal (or deploy): exponential back-off per certificate from its last failure,
 * bounded by the time the current certificate has left. cert-manager's fixed 1 h → 32 h suits 90-day
 * certificates and fails 6-day ones: two failures in, its next attempt would come after expiry. Here
 * every delay is also capped at a fraction of the validity remaining (10 % by default), so attempts
 * get denser as expiry nears and there are always several before it. Pure; the caller stores
 * `failures` and the last failure time.
 */
import type { RenewBefore } from './records.js';

export interface BackoffPolicy {
  /** Delay after the first failure. */
  readonly initialMs: number;
  readonly factor: number;
  /** Longest delay, however much validity is left. */
  readonly maxMs: number;
  /** Cap each delay at this fraction of the validity left at the failure. */
  readonly fractionOfRemaining: number;
  /** Never retry sooner than this (issuers rate-limit). */
  readonly minMs: number;
  /** Longest delay when there is no valid certificate (never issued, or expired): it is an outage. */
  readonly outageMaxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  initialMs: 60_000,
  factor: 2,
  maxMs: 32 * 3_600_000,
  fractionOfRemaining: 0.1,
  minMs: 30_000,
  outageMaxMs: 3_600_000,
};

/**
 * Delay after `failures` consecutive failures (1 = the first). `remainingMs`: validity left at the
 * failure; undefined or ≤ 0 when there is no valid certificate. `jitter` in [0, 1) shortens the delay by
 * up to 10 %, so certificates that failed together do not retry together.
 */
export function backoffDelay(
  failures: number,
  remainingMs: number | undefined,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  jitter = 0,
): number {
  const n = Math.max(1, Math.floor(failures));
  const exponential = policy.initialMs * policy.factor ** Math.min(n - 1, 60);
  const cap =
    remainingMs === undefined || remainingMs <= 0
      ? policy.outageMaxMs
      : Math.min(policy.maxMs, remainingMs * policy.fractionOfRemaining);
  const delay = Math.min(exponential, cap) * (1 - 0.1 * Math.min(Math.max(jitter, 0), 0.999_999));
  return Math.floor(Math.max(policy.minMs, delay));
}

export interface NextAttemptInput {
  readonly failures: number;
  readonly lastFailureAt: Date;
  /** The current version's expiry, when there is one. */
  readonly notAfter?: Date;
  readonly policy?: BackoffPolicy;
  readonly jitter?: number;
}

/** When to try again after the last failure. */
export function nextAttemptAt(input: NextAttemptInput): Date {
  const at = input.lastFailureAt.getTime();
  const remaining = input.notAfter === undefined ? undefined : input.notAfter.getTime() - at;
  return new Date(at + backoffDelay(input.failures, remaining, input.policy, input.jitter));
}

export interface ExpiryAlertInput {
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly now: Date;
  /** The last renewal attempt failed (lastError newer than the last issuance). */
  readonly renewalFailing: boolean;
  /** The stored renewal time, if any: past it with no new version, renewal is overdue even without errors. */
  readonly renewAt?: Date;
  /** How close to expiry an alert starts: a duration or a share of the lifetime (default 10 %). */
  readonly threshold?: RenewBefore;
}

export interface ExpiryAlert {
  /** `critical` once expired. */
  readonly level: 'warning' | 'critical';
  readonly remainingMs: number;
  readonly message: string;
}

export const DEFAULT_ALERT_THRESHOLD: RenewBefore = { percent: 10 };

/**
 * The expiry-alert decision: within the threshold of expiry while renewal fails or is overdue. A
 * certificate that is merely close to expiry with its renewal not yet due (renewBefore shorter than the
 * threshold) raises nothing: nothing is wrong yet.
 */
export function expiryAlert(input: ExpiryAlertInput): ExpiryAlert | undefined {
  const now = input.now.getTime();
  const end = input.notAfter.getTime();
  const lifetime = Math.max(0, end - input.notBefore.getTime());
  const threshold = input.threshold ?? DEFAULT_ALERT_THRESHOLD;
  const thresholdMs = 'ms' in threshold ? threshold.ms : (lifetime * threshold.percent) / 100;
  const remainingMs = end - now;
  const overdue = input.renewAt !== undefined && now >= input.renewAt.getTime();
  if (remainingMs > thresholdMs || !(input.renewalFailing || overdue)) return undefined;
  const why = input.renewalFailing
    ? 'renewal is failing'
    : `renewal was due at ${input.renewAt!.toISOString()}`;
  if (remainingMs <= 0) {
    return {
      level: 'critical',
      remainingMs,
      message: `expired at ${input.notAfter.toISOString()} and ${why}`,
    };
  }
  return {
    level: 'warning',
    remainingMs,
    message: `expires at ${input.notAfter.toISOString()} (in ${humanMs(remainingMs)}) and ${why}`,
  };
}

function humanMs(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1000, 's'],
  ];
  for (const [size, name] of units) if (ms >= size) return `${Math.floor(ms / size)} ${name}`;
  return `${ms} ms`;
}
