import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { isAppError } from '../../../src/core/errors.js';
import type { AuditInput } from '../../../src/audit/entry.js';
import {
  GENESIS_HASH,
  canonicalJson,
  entryHash,
  isSecretDetailKey,
  sealEntry,
  serializeEntry,
  validateAuditInput,
} from '../../../src/audit/entry.js';

const base: AuditInput = {
  actor: 'tok_0123456789abcdef',
  action: 'cert.issue',
  subject: 'cert:web',
  outcome: 'success',
};

describe('canonical JSON (RFC 8785)', () => {
  test('sorts members by code unit at every depth and writes no whitespace', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: true, c: null }, A: 'x' }),
      '{"A":"x","a":{"c":null,"d":true},"b":1}',
    );
  });
  test('numbers and strings as ECMAScript writes them', () => {
    assert.equal(canonicalJson({ n: 1e21, f: 0.1, s: 'é"\n' }), '{"f":0.1,"n":1e+21,"s":"é\\"\\n"}');
  });
  test('leaves out undefined members, as JSON.parse never produces them', () => {
    assert.equal(canonicalJson({ a: undefined, b: 2 }), '{"b":2}');
  });
});

describe('entry hash', () => {
  test('is SHA-256 hex over the canonical JSON of the entry without hash, prev included', () => {
    const e = sealEntry(
      { ...base, requestId: 'req-1', details: { serial: '0a', days: 90 } },
      1,
      '2026-01-01T00:00:00.000Z',
      GENESIS_HASH,
    );
    const { hash, ...content } = e;
    const expected = createHash('sha256').update(canonicalJson(content)).digest('hex');
    assert.equal(hash, expected);
    assert.equal(entryHash({ ...e }), expected);
    assert.notEqual(entryHash({ ...e, prev: '1'.repeat(64) }), expected, 'prev is covered');
  });
  test('sealEntry hashes the very canonical JSON the verifier rebuilds, with and without optional members', () => {
    const variants = [
      {},
      { requestId: 'r"\\1' },
      { details: { z: 'ü\u2028', a: null, m: 1.5e-7, b: false } },
      { requestId: 'req', details: {} },
    ];
    for (const extra of variants) {
      const e = sealEntry(
        { ...base, subject: 'cert:wéb"x', ...extra },
        12,
        '2026-01-01T00:00:00.000Z',
        'ab'.repeat(32),
      );
      const { hash, ...content } = e;
      assert.equal(
        hash,
        createHash('sha256').update(canonicalJson(content)).digest('hex'),
        JSON.stringify(extra),
      );
    }
  });
  test('the written line has a fixed member order with seq first and hash last', () => {
    const e = sealEntry(base, 7, '2026-01-01T00:00:00.000Z', GENESIS_HASH);
    const line = serializeEntry(e);
    assert.ok(line.endsWith('\n'));
    assert.deepEqual(Object.keys(JSON.parse(line) as object), [
      'seq',
      'time',
      'actor',
      'action',
      'subject',
      'outcome',
      'prev',
      'hash',
    ]);
  });
});

describe('frozen format (v1)', () => {
  // Checked outside keywright: printf '%s' "$CANONICAL" | sha256sum. Changing this breaks every existing log.
  const CANONICAL =
    '{"action":"cert.issue","actor":"tok_0011223344556677","details":{"days":90,"serial":"0a"},"outcome":"success",' +
    '"prev":"0000000000000000000000000000000000000000000000000000000000000000","requestId":"req-1","seq":1,' +
    '"subject":"cert:web","time":"2026-01-01T00:00:00.000Z"}';
  const LINE =
    '{"seq":1,"time":"2026-01-01T00:00:00.000Z","actor":"tok_0011223344556677","action":"cert.issue","subject":"cert:web",' +
    '"outcome":"success","requestId":"req-1","details":{"serial":"0a","days":90},' +
    '"prev":"0000000000000000000000000000000000000000000000000000000000000000",' +
    '"hash":"6df340b669d5030d8529e92678010ae0bf3b95bb9762248242bf5ee4dbfe4547"}\n';
  test('a known entry serializes and hashes exactly as recorded', () => {
    const e = sealEntry(
      { ...base, actor: 'tok_0011223344556677', requestId: 'req-1', details: { serial: '0a', days: 90 } },
      1,
      '2026-01-01T00:00:00.000Z',
      GENESIS_HASH,
    );
    const { hash: _hash, ...content } = e;
    assert.equal(canonicalJson(content), CANONICAL);
    assert.equal(e.hash, '6df340b669d5030d8529e92678010ae0bf3b95bb9762248242bf5ee4dbfe4547');
    assert.equal(serializeEntry(e), LINE);
  });
});

describe('secrets never enter an entry', () => {
  const refusedKeys = [
    'token',
    'apiToken',
    'bearer_token',
    'secret',
    'clientSecret',
    'client_secret',
    'password',
    'passphrase',
    'privateKey',
    'private_key',
    'key',
    'keyMaterial',
    'signingKey',
    'psk',
    'presharedKeyValue',
    'kek',
    'pin',
    'seed',
    'hmacKey',
  ];
  for (const key of refusedKeys) {
    test(`refuses details key "${key}" with INTERNAL, naming the key`, () => {
      assert.equal(isSecretDetailKey(key), true);
      assert.throws(
        () => validateAuditInput({ ...base, details: { [key]: 'x' } }),
        (err) => isAppError(err, 'INTERNAL') && err.message.includes(key),
      );
    });
  }
  for (const key of [
    'tokenId',
    'keyType',
    'kekId',
    'keyFingerprint',
    'secretName',
    'serial',
    'profile',
    'id',
    'count',
  ]) {
    test(`accepts reference key "${key}"`, () => {
      assert.equal(isSecretDetailKey(key), false);
      validateAuditInput({ ...base, details: { [key]: 'x' } });
    });
  }
  const badValues: [string, unknown][] = [
    ['an object', { nested: 1 }],
    ['an array', [1]],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a bigint', 1n],
    ['a function', () => 1],
    ['undefined', undefined],
  ];
  for (const [what, value] of badValues) {
    test(`refuses ${what} as a details value`, () => {
      assert.throws(
        () => validateAuditInput({ ...base, details: { note: value } } as unknown as AuditInput),
        (err) => isAppError(err, 'INTERNAL'),
      );
    });
  }
  test('refuses values that look like a keywright token or a PEM block, without echoing them', () => {
    const token = `kw_${'A'.repeat(43)}`;
    for (const value of [token, `Bearer ${token}`, '-----BEGIN PRIVATE KEY-----\nMII']) {
      assert.throws(
        () => validateAuditInput({ ...base, details: { note: value } }),
        (err) =>
          isAppError(err, 'INTERNAL') &&
          !err.message.includes(value) &&
          !JSON.stringify(err.details).includes(value),
      );
    }
  });
  test('refuses malformed fields', () => {
    const bad: Partial<Record<keyof AuditInput, unknown>>[] = [
      { actor: '' },
      { actor: 'a\nb' },
      { action: 'Cert.Issue' },
      { action: 'issue' },
      { subject: '' },
      { outcome: 'ok' },
      { requestId: '' },
      { details: [] },
      { details: null },
    ];
    for (const change of bad) {
      assert.throws(
        () => validateAuditInput({ ...base, ...change } as AuditInput),
        (err) => isAppError(err, 'INTERNAL'),
        JSON.stringify(change),
      );
    }
  });
  test('accepts a well-formed input with flat details', () => {
    validateAuditInput({
      ...base,
      requestId: 'r1',
      details: { serial: '01', days: 90, ok: true, note: null },
    });
  });
});
