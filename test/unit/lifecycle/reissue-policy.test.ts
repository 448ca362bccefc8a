import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import {
  ariRenewalTime,
  decideReissue,
  nextRenewalAt,
  DEFAULT_CHECKS,
  type ReissueInput,
  type ReissueReason,
} from '../../../src/lifecycle/reissue-policy.js';

const H = 3_600_000;
const D = 24 * H;
const ISSUED = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

type Cert = ReissueInput['certificate'];
type Current = NonNullable<ReissueInput['current']>;

const spec: Cert = {
  issuer: 'ca:default',
  sans: ['web.internal', '10.0.0.5'],
  keyType: 'ec-p256',
  renewAt: iso(ISSUED + 60 * D),
};
const current: Current = {
  version: 3,
  issuer: 'ca:default',
  sans: ['web.internal', '10.0.0.5'],
  keyType: 'ec-p256',
  status: 'active',
  notBefore: iso(ISSUED),
  notAfter: iso(ISSUED + 90 * D),
};

/** Overrides; a field given as undefined is removed. */
type Over<T> = { [K in keyof T]?: T[K] | undefined };

function merge<T extends object>(base: T, over: Over<T> | undefined): T {
  const out = { ...base, ...over } as Record<string, unknown>;
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out as T;
}

interface Case {
  certificate?: Over<Cert>;
  current?: Partial<Current> | null;
  at: number;
  window?: { start: number; end: number };
  ariJitter?: number;
  expect: ReissueReason | undefined;
  message?: RegExp;
}

const cases: Record<string, Case> = {
  'fresh 90 d certificate: nothing fires': { at: ISSUED + 10 * D, expect: undefined },
  'no current version': {
    current: null,
    at: ISSUED,
    expect: 'no-current-version',
    message: /no issued version yet/,
  },
  'no current version wins over a manual request': {
    current: null,
    certificate: { renewRequested: iso(ISSUED) },
    at: ISSUED,
    expect: 'no-current-version',
  },
  'a SAN added': {
    certificate: { sans: ['web.internal', '10.0.0.5', 'www.internal'] },
    at: ISSUED + D,
    expect: 'spec-changed',
    message: /names \[web\.internal, 10\.0\.0\.5\] → \[web\.internal, 10\.0\.0\.5, www\.internal\]/,
  },
  'SANs reordered, recased or with a trailing dot: not a change': {
    certificate: { sans: ['10.0.0.5', 'WEB.internal.'] },
    at: ISSUED + D,
    expect: undefined,
  },
  'a SAN removed': { certificate: { sans: ['web.internal'] }, at: ISSUED + D, expect: 'spec-changed' },
  'key type changed': {
    certificate: { keyType: 'rsa-2048' },
    at: ISSUED + D,
    expect: 'spec-changed',
    message: /key type ec-p256 → rsa-2048/,
  },
  'issuer changed (internal CA → ACME)': {
    certificate: { issuer: 'acme:letsencrypt' },
    at: ISSUED + D,
    expect: 'spec-changed',
    message: /issuer ca:default → acme:letsencrypt/,
  },
  'spec change wins over revocation and renewal time': {
    certificate: { keyType: 'ed25519' },
    current: { status: 'revoked' },
    at: ISSUED + 89 * D,
    expect: 'spec-changed',
  },
  revoked: {
    current: { status: 'revoked' },
    at: ISSUED + D,
    expect: 'revoked',
    message: /version 3 is revoked/,
  },
  'a superseded current version is not "revoked"': {
    current: { status: 'superseded' },
    at: ISSUED + D,
    expect: undefined,
  },
  'one second before renewAt: nothing': { at: ISSUED + 60 * D - 1000, expect: undefined },
  'renewAt reached': {
    at: ISSUED + 60 * D,
    expect: 'renewal-time',
    message: /renewal time 2026-03-02T00:00:00.000Z reached/,
  },
  expired: { at: ISSUED + 91 * D, expect: 'renewal-time', message: /version 3 expired at/ },
  'no stored renewAt: computed from the version (2/3 of 90 d)': {
    certificate: { renewAt: undefined },
    at: ISSUED + 60 * D,
    expect: 'renewal-time',
  },
  'no stored renewAt, renewBefore 10 d: not yet at day 79': {
    certificate: { renewAt: undefined, renewBefore: { ms: 10 * D } },
    at: ISSUED + 79 * D,
    expect: undefined,
  },
  '6 d certificate, renewAt at day 4': {
    certificate: { renewAt: iso(ISSUED + 4 * D) },
    current: { notAfter: iso(ISSUED + 6 * D) },
    at: ISSUED + 4 * D,
    expect: 'renewal-time',
  },
  '1 h certificate at 39 min: nothing yet': {
    certificate: { renewAt: iso(ISSUED + 40 * 60_000) },
    current: { notAfter: iso(ISSUED + H) },
    at: ISSUED + 39 * 60_000,
    expect: undefined,
  },
  '1 h certificate at 40 min: renew': {
    certificate: { renewAt: iso(ISSUED + 40 * 60_000) },
    current: { notAfter: iso(ISSUED + H) },
    at: ISSUED + 40 * 60_000,
    expect: 'renewal-time',
  },
  'ARI window open before renewAt': {
    window: { start: ISSUED + 20 * D, end: ISSUED + 22 * D },
    ariJitter: 0.5,
    at: ISSUED + 21 * D,
    expect: 'ari-window',
    message: /renewal window .* is open/,
  },
  'ARI window open but this client’s point in it not reached': {
    window: { start: ISSUED + 20 * D, end: ISSUED + 22 * D },
    ariJitter: 0.75,
    at: ISSUED + 21 * D,
    expect: undefined,
  },
  'ARI window in the future': {
    window: { start: ISSUED + 30 * D, end: ISSUED + 32 * D },
    at: ISSUED + 21 * D,
    expect: undefined,
  },
  'renewal time wins over ARI': {
    window: { start: ISSUED + 20 * D, end: ISSUED + 22 * D },
    at: ISSUED + 61 * D,
    expect: 'renewal-time',
  },
  'manual renew requested': {
    certificate: { renewRequested: iso(ISSUED + 5 * D) },
    at: ISSUED + 5 * D,
    expect: 'manual',
    message: /renewal requested at 2026-01-06T00:00:00.000Z/,
  },
};

describe('reissue policy (the first check that fires is the reason)', () => {
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => {
      const clock = new FakeClock(c.at);
      const certificate = merge(spec, c.certificate);
      const cur = c.current === null ? undefined : ({ ...current, ...c.current } as Current);
      const decision = decideReissue({
        certificate,
        ...(cur ? { current: cur } : {}),
        ...(c.window
          ? { renewalWindow: { start: new Date(c.window.start), end: new Date(c.window.end) } }
          : {}),
        ...(c.ariJitter !== undefined ? { ariJitter: c.ariJitter } : {}),
        now: clock.now(),
      });
      assert.equal(decision?.reason, c.expect, decision?.message);
      if (c.message) assert.match(decision!.message, c.message);
    });
  }

  test('the chain is ordered as documented', () => {
    assert.deepEqual(
      DEFAULT_CHECKS.map((c) => c.name),
      ['no-current-version', 'spec-changed', 'revoked', 'renewal-time', 'ari-window', 'manual'],
    );
  });

  test('a custom chain (e.g. without ARI) is honoured', () => {
    const input: ReissueInput = {
      certificate: spec,
      current,
      renewalWindow: { start: new Date(ISSUED), end: new Date(ISSUED + D) },
      now: new Date(ISSUED + 2 * D),
    };
    assert.equal(decideReissue(input)?.reason, 'ari-window');
    assert.equal(
      decideReissue(
        input,
        DEFAULT_CHECKS.filter((c) => c.name !== 'ari-window'),
      ),
      undefined,
    );
  });

  test('ariRenewalTime picks a stable point in the window; nextRenewalAt is the earlier of both', () => {
    const w = { start: new Date(ISSUED + 20 * D), end: new Date(ISSUED + 22 * D) };
    assert.equal(ariRenewalTime(w, 0).getTime(), ISSUED + 20 * D);
    assert.equal(ariRenewalTime(w, 0.5).getTime(), ISSUED + 21 * D);
    assert.ok(ariRenewalTime(w, 1).getTime() < w.end.getTime());
    assert.equal(
      nextRenewalAt({ certificate: spec, current, renewalWindow: w, ariJitter: 0.5 })?.getTime(),
      ISSUED + 21 * D,
    );
    assert.equal(nextRenewalAt({ certificate: spec, current })?.getTime(), ISSUED + 60 * D);
    assert.equal(nextRenewalAt({ certificate: merge(spec, { renewAt: undefined }) }), undefined);
  });
});
