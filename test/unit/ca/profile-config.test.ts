import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAppError } from '../../../src/core/errors.js';
import { parseConfig } from '../../../src/config/load.js';
import { profileFromConfig, profilesForCa, validateProfileConfig } from '../../../src/ca/profile-config.js';
import { BUILTIN_PROFILES, applyProfile } from '../../../src/ca/profiles.js';
import { ecKey } from '../../fixtures/pki-ca.js';

const DAY = 86_400_000;

function configured(profiles: unknown[]) {
  return parseConfig({ ca: { profiles } }, 'test').ca.profiles;
}

test('a configured profile layers over its base: given fields replace, the rest is inherited', () => {
  const [svc] = configured([
    { name: 'svc', base: 'client', names: { dns: ['*.svc.internal'] }, maxLifetime: '30d' },
  ]);
  const p = profileFromConfig(svc!);
  assert.deepEqual(p.names.dns, ['*.svc.internal']);
  assert.deepEqual(p.names.email, ['*'], 'email patterns from the client base');
  assert.deepEqual(p.extKeyUsages, ['clientAuth']);
  assert.equal(p.maxLifetimeMs, 30 * DAY);
  assert.equal(p.defaultLifetimeMs, 30 * DAY, 'the default is capped by the new maximum');
  const key = ecKey().publicKey;
  assert.throws(
    () => applyProfile(p, { sans: ['evil.example'], publicKey: key }),
    (err) => isAppError(err, 'POLICY_VIOLATION') && err.details.rule === 'dns_not_allowed',
  );
  assert.equal(applyProfile(p, { sans: ['a.svc.internal'], publicKey: key }).names.length, 1);
});

test('a profile named like a built-in replaces it for its CAs only; cas limits where profiles appear', () => {
  const list = configured([
    { name: 'server', cas: ['edge'], allowWildcards: true },
    { name: 'only-root', cas: ['root'] },
    { name: 'everywhere' },
  ]);
  const edge = profilesForCa('edge', list);
  assert.equal(edge.server!.allowWildcards, true);
  assert.deepEqual(
    edge.server!.extKeyUsages,
    BUILTIN_PROFILES.server.extKeyUsages,
    'base: the same-named built-in',
  );
  assert.ok(edge.everywhere && !edge['only-root']);
  const def = profilesForCa('default', list);
  assert.equal(def.server, BUILTIN_PROFILES.server);
  assert.deepEqual(Object.keys(def).sort(), ['client', 'everywhere', 'server', 'server-client']);
  assert.ok(profilesForCa('root', list)['only-root']);
});

test('bad patterns and lifetimes fail at start-up with CONFIG_INVALID naming the field', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ name: 'a', names: { dns: ['bad name'] } }, /ca\.profiles\.0\.names\.dns\.0/],
    [{ name: 'a', names: { ip: ['10.0.0.0/99'] } }, /names\.ip\.0/],
    [{ name: 'a', names: { email: ['no-at-sign'] } }, /names\.email\.0/],
    [{ name: 'a', names: { uri: ['not a uri'] } }, /names\.uri\.0/],
    [{ name: 'a', defaultLifetime: '60d', maxLifetime: '30d' }, /defaultLifetime/],
  ];
  for (const [profile, field] of cases) {
    assert.throws(
      () => validateProfileConfig(configured([profile])),
      (err) => isAppError(err, 'CONFIG_INVALID') && field.test(err.message),
      JSON.stringify(profile),
    );
  }
  assert.throws(
    () => configured([{ name: 'a', extKeyUsages: ['anyExtendedKeyUsage'] }]),
    (err) => isAppError(err, 'CONFIG_INVALID'),
  );
  validateProfileConfig(
    configured([
      {
        name: 'ok',
        names: {
          dns: ['**', '**.x.internal', 'exact.internal'],
          email: ['*@*.example.com'],
          uri: ['spiffe://c/ns/*'],
        },
      },
    ]),
  );
});
