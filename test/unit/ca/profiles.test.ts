import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from '../../helpers/keys.js';
import { isAppError } from '../../../src/core/errors.js';
import type { Profile } from '../../../src/ca/profiles.js';
import { applyProfile, BUILTIN_PROFILES } from '../../../src/ca/profiles.js';
import { DAY, ecKey } from '../../fixtures/pki-ca.js';

const key = ecKey().publicKey;
const internal: Profile = {
  ...BUILTIN_PROFILES.server,
  name: 'internal',
  names: {
    dns: ['*.svc.internal', '**.lab.internal', 'api.example.com'],
    ip: ['10.0.0.0/8', 'fd00::/8'],
    email: ['*@example.com'],
    uri: ['spiffe://cluster.local/*'],
  },
  maxLifetimeMs: 30 * DAY,
  defaultLifetimeMs: 7 * DAY,
};

function refused(rule: string, san?: string) {
  return (e: unknown): boolean => {
    assert.ok(isAppError(e, 'POLICY_VIOLATION'), String(e));
    assert.equal(e.details.rule, rule);
    if (san !== undefined) {
      assert.equal(e.details.san, san);
      assert.ok(e.message.includes(san) && e.message.includes(rule), e.message);
    }
    return true;
  };
}

test('allowed names pass, normalised and de-duplicated', () => {
  const r = applyProfile(internal, {
    sans: [
      'Web.SVC.internal',
      'web.svc.internal',
      'a.b.lab.internal',
      'api.example.com',
      '10.1.2.3',
      'FD00::0:1',
      'URI:spiffe://cluster.local/ns/a',
    ],
    publicKey: key,
  });
  assert.deepEqual(r.names, [
    { type: 'dns', value: 'web.svc.internal' },
    { type: 'dns', value: 'a.b.lab.internal' },
    { type: 'dns', value: 'api.example.com' },
    { type: 'ip', value: '10.1.2.3' },
    { type: 'ip', value: 'fd00::1' },
    { type: 'uri', value: 'spiffe://cluster.local/ns/a' },
  ]);
  assert.equal(r.lifetimeMs, 7 * DAY);
  assert.equal(r.key.label, 'ec-p256');
});

test('a name outside the profile is refused, naming the SAN and the rule', () => {
  assert.throws(
    () => applyProfile(internal, { sans: ['web.svc.internal', 'evil.example.org'], publicKey: key }),
    refused('dns_not_allowed', 'DNS:evil.example.org'),
  );
  // `*.zone` is exactly one label deep
  assert.throws(
    () => applyProfile(internal, { sans: ['a.b.svc.internal'], publicKey: key }),
    refused('dns_not_allowed', 'DNS:a.b.svc.internal'),
  );
  assert.throws(
    () => applyProfile(internal, { sans: ['email:eve@evil.org'], publicKey: key }),
    refused('email_not_allowed', 'email:eve@evil.org'),
  );
  assert.throws(
    () => applyProfile(internal, { sans: ['URI:spiffe://other/x'], publicKey: key }),
    refused('uri_not_allowed', 'URI:spiffe://other/x'),
  );
});

test('a forbidden wildcard is refused; an allowing profile takes it', () => {
  assert.throws(
    () => applyProfile(internal, { sans: ['*.svc.internal'], publicKey: key }),
    refused('wildcard_not_allowed', 'DNS:*.svc.internal'),
  );
  const r = applyProfile({ ...internal, allowWildcards: true }, { sans: ['*.svc.internal'], publicKey: key });
  assert.deepEqual(r.names, [{ type: 'dns', value: '*.svc.internal' }]);
});

test('an IP outside the ranges is refused (IPv4 and IPv6)', () => {
  assert.throws(
    () => applyProfile(internal, { sans: ['192.168.1.1'], publicKey: key }),
    refused('ip_not_allowed', 'IP:192.168.1.1'),
  );
  assert.throws(
    () => applyProfile(internal, { sans: ['2001:db8::1'], publicKey: key }),
    refused('ip_not_allowed', 'IP:2001:db8::1'),
  );
});

test('key rules: too-small RSA, disallowed family and curve', () => {
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
  assert.throws(
    () => applyProfile(internal, { sans: ['a.svc.internal'], publicKey: rsa1024 }),
    refused('rsa_key_too_small'),
  );
  assert.throws(
    () =>
      applyProfile(
        { ...internal, keyTypes: ['ec'] },
        { sans: ['a.svc.internal'], publicKey: generateKeyPairSync('ed25519').publicKey },
      ),
    refused('key_type_not_allowed'),
  );
  assert.throws(
    () => applyProfile({ ...internal, ecCurves: ['P-384'] }, { sans: ['a.svc.internal'], publicKey: key }),
    refused('ec_curve_not_allowed'),
  );
  assert.throws(
    () =>
      applyProfile(internal, {
        sans: ['a.svc.internal'],
        publicKey: generateKeyPairSync('x25519').publicKey,
      }),
    refused('key_type_not_allowed'),
  );
});

test('a lifetime over the profile maximum is refused', () => {
  assert.throws(
    () => applyProfile(internal, { sans: ['a.svc.internal'], publicKey: key, lifetimeMs: 31 * DAY }),
    refused('lifetime_too_long'),
  );
  assert.throws(
    () => applyProfile(internal, { sans: ['a.svc.internal'], publicKey: key, lifetimeMs: 0 }),
    refused('lifetime_invalid'),
  );
  assert.equal(
    applyProfile(internal, { sans: ['a.svc.internal'], publicKey: key, lifetimeMs: 30 * DAY }).lifetimeMs,
    30 * DAY,
  );
});

test('syntax, empty requests, too many names, other name types', () => {
  assert.throws(
    () => applyProfile(BUILTIN_PROFILES.server, { sans: ['bad_name.internal'], publicKey: key }),
    refused('san_syntax', 'DNS:bad_name.internal'),
  );
  assert.throws(
    () => applyProfile(BUILTIN_PROFILES.server, { sans: [], publicKey: key }),
    refused('san_required'),
  );
  const many = Array.from({ length: 101 }, (_, i) => `h${i}.internal`);
  assert.throws(
    () => applyProfile(BUILTIN_PROFILES.server, { sans: many, publicKey: key }),
    refused('too_many_names'),
  );
  assert.throws(
    () =>
      applyProfile(BUILTIN_PROFILES.server, {
        sans: [{ type: 'other', tag: 0xa0, der: Buffer.from('a000', 'hex') }],
        publicKey: key,
      }),
    refused('name_type_not_allowed'),
  );
  // the server profile certifies no email names
  assert.throws(
    () => applyProfile(BUILTIN_PROFILES.server, { sans: ['ops@example.com'], publicKey: key }),
    refused('email_not_allowed'),
  );
});

test('drop mode leaves disallowed names out and reports them; nothing left is still refused', () => {
  const r = applyProfile(
    internal,
    { sans: ['a.svc.internal', 'evil.org', '192.168.0.1'], publicKey: key },
    { onDisallowed: 'drop' },
  );
  assert.deepEqual(r.names, [{ type: 'dns', value: 'a.svc.internal' }]);
  assert.deepEqual(r.dropped, [
    { san: 'DNS:evil.org', rule: 'dns_not_allowed' },
    { san: 'IP:192.168.0.1', rule: 'ip_not_allowed' },
  ]);
  assert.throws(
    () => applyProfile(internal, { sans: ['evil.org'], publicKey: key }, { onDisallowed: 'drop' }),
    refused('san_required'),
  );
});
