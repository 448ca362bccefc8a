import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import {
  DEFAULT_KEY_DESTRUCTION,
  planKeyRestore,
  planKeyTransitions,
  type KeyVersion,
} from '../../../src/lifecycle/key-destruction.js';

const D = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

/** A version; a field given as undefined is left out (a CSR-issued version has no keyBlob). */
function v(
  version: number,
  over: { [K in keyof KeyVersion]?: KeyVersion[K] | undefined } = {},
  name = 'web',
): KeyVersion {
  const merged: Record<string, unknown> = {
    id: `${name}@${version}`,
    certificate: name,
    version,
    status: 'superseded',
    keyState: 'enabled',
    keyBlob: `sealed/cert/${name}/${version}`,
    createdAt: iso(T0 + (version - 1) * 60 * D),
    ...over,
  };
  for (const k of Object.keys(merged)) if (merged[k] === undefined) delete merged[k];
  return merged as unknown as KeyVersion;
}

describe('planKeyTransitions', () => {
  const cases: Record<
    string,
    { versions: KeyVersion[]; at: number; grace?: number; expected: [string, string, string][] }
  > = {
    'the active version is never touched': {
      versions: [v(1, { status: 'active' })],
      at: T0 + 400 * D,
      expected: [],
    },
    'a superseded enabled key is disabled': {
      versions: [v(1), v(2, { status: 'active' })],
      at: T0 + 61 * D,
      expected: [['web@1', 'enabled', 'disabled']],
    },
    'a revoked enabled key is disabled': {
      versions: [v(1, { status: 'revoked' })],
      at: T0 + D,
      expected: [['web@1', 'enabled', 'disabled']],
    },
    'a disabled key is scheduled for destruction': {
      versions: [v(1, { keyState: 'disabled' }), v(2, { status: 'active' })],
      at: T0 + 61 * D,
      expected: [['web@1', 'disabled', 'pending-destruction']],
    },
    'a disabled key within the grace period stays disabled': {
      versions: [v(1, { keyState: 'disabled' }), v(2, { status: 'active' })],
      at: T0 + 61 * D,
      grace: 7 * D,
      expected: [],
    },
    'after the grace period (counted from the successor) it is scheduled': {
      versions: [v(1, { keyState: 'disabled' }), v(2, { status: 'active' })],
      at: T0 + 67 * D,
      grace: 7 * D,
      expected: [['web@1', 'disabled', 'pending-destruction']],
    },
    'pending, one second before its date: kept': {
      versions: [v(1, { keyState: 'pending-destruction', destroyAfter: iso(T0 + 91 * D) })],
      at: T0 + 91 * D - 1000,
      expected: [],
    },
    'pending, date reached: destroyed': {
      versions: [v(1, { keyState: 'pending-destruction', destroyAfter: iso(T0 + 91 * D) })],
      at: T0 + 91 * D,
      expected: [['web@1', 'pending-destruction', 'destroyed']],
    },
    'pending without a date: the waiting period restarts, nothing destroyed early': {
      versions: [v(1, { keyState: 'pending-destruction' })],
      at: T0 + 400 * D,
      expected: [['web@1', 'pending-destruction', 'pending-destruction']],
    },
    'destroyed and CSR-issued versions (no key) are left alone': {
      versions: [v(1, { keyState: 'destroyed' }), v(2, { keyBlob: undefined })],
      at: T0 + 400 * D,
      expected: [],
    },
    'several certificates, one step each, in a stable order': {
      versions: [
        v(3, { status: 'active' }, 'api'),
        v(2, { keyState: 'disabled' }, 'api'),
        v(1, { keyState: 'pending-destruction', destroyAfter: iso(T0) }, 'api'),
        v(2, { status: 'active' }),
        v(1),
      ],
      at: T0 + 200 * D,
      expected: [
        ['api@1', 'pending-destruction', 'destroyed'],
        ['api@2', 'disabled', 'pending-destruction'],
        ['web@1', 'enabled', 'disabled'],
      ],
    },
  };
  for (const [name, c] of Object.entries(cases)) {
    test(name, () => {
      const clock = new FakeClock(c.at);
      const policy = {
        ...DEFAULT_KEY_DESTRUCTION,
        ...(c.grace !== undefined ? { disabledGraceMs: c.grace } : {}),
      };
      const plan = planKeyTransitions(c.versions, clock.now(), policy);
      assert.deepEqual(
        plan.map((p) => [p.versionId, p.from, p.to]),
        c.expected,
      );
    });
  }

  test('the full path with the default 30-day waiting period, one sweep a day', () => {
    const clock = new FakeClock(T0 + 60 * D); // version 2 was just issued
    let versions = [v(1), v(2, { status: 'active' })];
    const seen: string[] = [];
    for (let day = 0; day < 40; day++) {
      for (const t of planKeyTransitions(versions, clock.now())) {
        seen.push(`day ${day}: ${t.to}`);
        versions = versions.map((x) =>
          x.id === t.versionId
            ? { ...x, keyState: t.to, ...(t.destroyAfter ? { destroyAfter: t.destroyAfter } : {}) }
            : x,
        );
        if (t.to === 'pending-destruction') assert.equal(t.destroyAfter, iso(clock.nowMs() + 30 * D));
        if (t.to === 'destroyed') assert.equal(t.eraseBlob, 'sealed/cert/web/1');
      }
      clock.advance(D);
    }
    assert.deepEqual(seen, ['day 0: disabled', 'day 1: pending-destruction', 'day 31: destroyed']);
  });
});

describe('planKeyRestore', () => {
  const now = new Date(T0 + 10 * D);
  test('a pending key goes back to disabled before its date', () => {
    const plan = planKeyRestore(
      v(1, { keyState: 'pending-destruction', destroyAfter: iso(T0 + 30 * D) }),
      now,
    );
    assert.ok(plan.ok);
    assert.deepEqual([plan.transition.from, plan.transition.to], ['pending-destruction', 'disabled']);
  });
  const refusals: Record<string, [KeyVersion, RegExp]> = {
    'after the date': [
      v(1, { keyState: 'pending-destruction', destroyAfter: iso(T0 + 5 * D) }),
      /waiting period of web@1 ended/,
    ],
    'a destroyed key': [v(1, { keyState: 'destroyed' }), /is destroyed; only a key pending destruction/],
    'an enabled key': [v(1), /is enabled/],
    'a CSR-issued version': [v(1, { keyBlob: undefined }), /never held its key/],
  };
  for (const [name, [version, reason]] of Object.entries(refusals)) {
    test(`refused: ${name}`, () => {
      const plan = planKeyRestore(version, now);
      assert.equal(plan.ok, false);
      if (!plan.ok) assert.match(plan.reason, reason);
    });
  }
});
