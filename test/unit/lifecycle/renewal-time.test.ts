import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renewalTime } from '../../../src/lifecycle/renewal-time.js';
import type { RenewBefore } from '../../../src/lifecycle/records.js';

const H = 3_600_000;
const D = 24 * H;
const START = Date.UTC(2026, 0, 1);

interface Scenario {
  lifetime: number;
  renewBefore?: RenewBefore;
  jitter?: number;
  /** Expected renewal time, as an offset from notBefore. */
  expected: number;
}

const scenarios: Record<string, Scenario> = {
  '90 d, default: 2/3 of the lifetime': { lifetime: 90 * D, expected: 60 * D },
  '6 d, default': { lifetime: 6 * D, expected: 4 * D },
  '1 h, default': { lifetime: H, expected: 40 * 60_000 },
  '2 min, default (test certificates)': { lifetime: 120_000, expected: 80_000 },
  '90 d, renewBefore 30 d': { lifetime: 90 * D, renewBefore: { ms: 30 * D }, expected: 60 * D },
  '90 d, renewBefore 10 d': { lifetime: 90 * D, renewBefore: { ms: 10 * D }, expected: 80 * D },
  '6 d, renewBefore 30 d > lifetime falls back to the default': {
    lifetime: 6 * D,
    renewBefore: { ms: 30 * D },
    expected: 4 * D,
  },
  'renewBefore == lifetime falls back to the default': {
    lifetime: 9 * D,
    renewBefore: { ms: 9 * D },
    expected: 6 * D,
  },
  '90 d, 33% left': { lifetime: 90 * D, renewBefore: { percent: 33 }, expected: 90 * D - 29.7 * D },
  '90 d, 50% left': { lifetime: 90 * D, renewBefore: { percent: 50 }, expected: 45 * D },
  '90 d, jitter at its maximum is 1/20 of the lifetime earlier': {
    lifetime: 90 * D,
    jitter: 0.999_999,
    expected: 60 * D - 4.5 * D,
  },
  '90 d, half jitter': { lifetime: 90 * D, jitter: 0.5, expected: 60 * D - 2.25 * D },
  'jitter never goes before notBefore': {
    lifetime: 60_000,
    renewBefore: { ms: 59_999 },
    jitter: 0.999,
    expected: 0,
  },
};

for (const [name, s] of Object.entries(scenarios)) {
  test(name, () => {
    const at = renewalTime(new Date(START), new Date(START + s.lifetime), s.renewBefore, s.jitter ?? 0);
    const expected = Math.floor((START + s.expected) / 1000) * 1000;
    assert.ok(
      Math.abs(at.getTime() - expected) <= 1000,
      `got ${at.toISOString()}, want ${new Date(expected).toISOString()}`,
    );
    assert.equal(at.getTime() % 1000, 0, 'truncated to the second');
  });
}

test('a zero or negative lifetime renews at once', () => {
  assert.equal(renewalTime(new Date(START), new Date(START), undefined).getTime(), START);
});
