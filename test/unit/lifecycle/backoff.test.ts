import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import {
  backoffDelay,
  DEFAULT_BACKOFF,
  expiryAlert,
  nextAttemptAt,
  type ExpiryAlertInput,
} from '../../../src/lifecycle/backoff.js';
import { renewalTime } from '../../../src/lifecycle/renewal-time.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;
const START = Date.UTC(2026, 0, 1);

describe('backoffDelay', () => {
  const cases: Record<
    string,
    { failures: number; remaining: number | undefined; jitter?: number; expected: number }
  > = {
    '90 d certificate, 30 d left, 1st failure: 1 min': { failures: 1, remaining: 30 * D, expected: M },
    '90 d, 30 d left, 5th failure: 16 min': { failures: 5, remaining: 30 * D, expected: 16 * M },
    '90 d, 30 d left, 12th failure: capped at 32 h like cert-manager': {
      failures: 12,
      remaining: 30 * D,
      expected: 32 * H,
    },
    '90 d, 5 d left, 12th failure: capped at 10 % of what is left (12 h)': {
      failures: 12,
      remaining: 5 * D,
      expected: 12 * H,
    },
    '6 d certificate, 2 d left, 1st failure: 1 min': { failures: 1, remaining: 2 * D, expected: M },
    '6 d, 2 d left, 9th failure: 256 min, under the cap': {
      failures: 9,
      remaining: 2 * D,
      expected: 256 * M,
    },
    '6 d, 2 d left, 10th failure: capped at 4.8 h (not 8.5 h)': {
      failures: 10,
      remaining: 2 * D,
      expected: 4.8 * H,
    },
    '6 d, 6 h left, 10th failure: capped at 36 min': { failures: 10, remaining: 6 * H, expected: 36 * M },
    '1 h certificate, 20 min left, 1st failure: 1 min': { failures: 1, remaining: 20 * M, expected: M },
    '1 h, 20 min left, 3rd failure: capped at 2 min': { failures: 3, remaining: 20 * M, expected: 2 * M },
    '1 h, 1 min left: never sooner than 30 s': { failures: 4, remaining: M, expected: 30 * S },
    'expired, 20th failure: at most 1 h (an outage)': { failures: 20, remaining: -5 * M, expected: H },
    'never issued, 1st failure: 1 min': { failures: 1, remaining: undefined, expected: M },
    'never issued, 10th failure: at most 1 h': { failures: 10, remaining: undefined, expected: H },
    'jitter 0.5 shortens by 5 %': { failures: 5, remaining: 30 * D, jitter: 0.5, expected: 16 * M * 0.95 },
    'failures 0 counts as the first': { failures: 0, remaining: 30 * D, expected: M },
  };
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => {
      assert.equal(backoffDelay(c.failures, c.remaining, DEFAULT_BACKOFF, c.jitter), Math.floor(c.expected));
    });
  }
});

/**
 * Renewal fails from the renewal time on: where do the attempts fall before expiry? Every gap must stay
 * within 10 % of the validity left (or the 30 s floor), so the attempts get denser towards the end.
 */
function failForever(lifetimeMs: number) {
  const notBefore = new Date(START);
  const notAfter = new Date(START + lifetimeMs);
  const clock = new FakeClock(renewalTime(notBefore, notAfter, undefined));
  const attempts: number[] = [];
  let failures = 0;
  while (clock.nowMs() < notAfter.getTime()) {
    attempts.push(clock.nowMs());
    failures++;
    const next = nextAttemptAt({ failures, lastFailureAt: clock.now(), notAfter });
    const left = notAfter.getTime() - clock.nowMs();
    assert.ok(next.getTime() - clock.nowMs() <= Math.max(30 * S, left * 0.1), `gap at ${left} ms left`);
    clock.set(next);
  }
  return { attempts, notAfter: notAfter.getTime() };
}

/** cert-manager's schedule: 1 h doubling to 32 h, regardless of the validity left. */
function certManagerAttempts(lifetimeMs: number): number {
  const end = START + lifetimeMs;
  let t = START + (lifetimeMs * 2) / 3;
  let n = 0;
  for (let delay = H; t < end; delay = Math.min(delay * 2, 32 * H)) {
    n++;
    t += delay;
  }
  return n;
}

describe('back-off never outlasts the validity', () => {
  const cases: Record<string, { lifetime: number; minAttempts: number; lastHourAttempts: number }> = {
    '90 d certificate': { lifetime: 90 * D, minAttempts: 25, lastHourAttempts: 6 },
    '6 d certificate': { lifetime: 6 * D, minAttempts: 25, lastHourAttempts: 6 },
    '1 h certificate': { lifetime: H, minAttempts: 15, lastHourAttempts: 15 },
  };
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => {
      const { attempts, notAfter } = failForever(c.lifetime);
      assert.ok(attempts.length >= c.minAttempts, `${attempts.length} attempts`);
      const lastHour = attempts.filter((a) => a >= notAfter - H).length;
      assert.ok(lastHour >= c.lastHourAttempts, `${lastHour} attempts in the last hour`);
      assert.ok(notAfter - attempts.at(-1)! <= 30 * S, 'the last attempt comes within 30 s of expiry');
    });
  }

  test('cert-manager’s fixed schedule covers a 6 d certificate far worse', () => {
    const ours = failForever(6 * D).attempts.length;
    const theirs = certManagerAttempts(6 * D);
    assert.equal(theirs, 6, 'six attempts in two days, the last gap 32 h');
    assert.ok(ours > 4 * theirs, `ours: ${ours}`);
  });
});

describe('expiryAlert', () => {
  const at = (ms: number) => new Date(START + ms);
  const base = (
    lifetime: number,
    left: number,
  ): Pick<ExpiryAlertInput, 'notBefore' | 'notAfter' | 'now'> => ({
    notBefore: at(0),
    notAfter: at(lifetime),
    now: at(lifetime - left),
  });
  const cases: Record<
    string,
    { input: ExpiryAlertInput; expected: 'warning' | 'critical' | undefined; message?: RegExp }
  > = {
    '90 d, 20 d left, renewal failing: not yet (threshold 9 d)': {
      input: { ...base(90 * D, 20 * D), renewalFailing: true },
      expected: undefined,
    },
    '90 d, 8 d left, renewal failing: warning': {
      input: { ...base(90 * D, 8 * D), renewalFailing: true },
      expected: 'warning',
      message: /\(in 8 d\) and renewal is failing/,
    },
    '90 d, 8 d left, renewal not due yet (renewBefore 5 d): nothing is wrong': {
      input: { ...base(90 * D, 8 * D), renewalFailing: false, renewAt: at(85 * D) },
      expected: undefined,
    },
    '90 d, 8 d left, no error but renewal overdue (scheduler stuck): warning': {
      input: { ...base(90 * D, 8 * D), renewalFailing: false, renewAt: at(60 * D) },
      expected: 'warning',
      message: /renewal was due at 2026-03-02/,
    },
    '6 d, 12 h left, failing: warning (threshold 14.4 h)': {
      input: { ...base(6 * D, 12 * H), renewalFailing: true },
      expected: 'warning',
    },
    '6 d, 20 h left, failing: not yet': {
      input: { ...base(6 * D, 20 * H), renewalFailing: true },
      expected: undefined,
    },
    '1 h, 5 min left, failing: warning (threshold 6 min)': {
      input: { ...base(H, 5 * M), renewalFailing: true },
      expected: 'warning',
      message: /in 5 min/,
    },
    'expired and failing: critical': {
      input: { ...base(6 * D, -M), renewalFailing: true },
      expected: 'critical',
      message: /^expired at/,
    },
    'threshold as a duration: 30 d before expiry': {
      input: { ...base(90 * D, 25 * D), renewalFailing: true, threshold: { ms: 30 * D } },
      expected: 'warning',
    },
    'threshold as a percentage: 50 %': {
      input: { ...base(6 * D, 2.5 * D), renewalFailing: true, threshold: { percent: 50 } },
      expected: 'warning',
    },
  };
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => {
      const alert = expiryAlert(c.input);
      assert.equal(alert?.level, c.expected, alert?.message);
      if (c.message) assert.match(alert!.message, c.message);
      if (alert) assert.equal(alert.remainingMs, c.input.notAfter.getTime() - c.input.now.getTime());
    });
  }
});
