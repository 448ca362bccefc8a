import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAppError } from '../../../src/core/errors.js';
import type { Resource } from '../../../src/access/scopes.js';
import { effectiveScopes, scopeMatches, validateScopes } from '../../../src/access/scopes.js';

const cert = (name: string): Resource => ({ kind: 'cert', name });
const vpn = (name: string): Resource => ({ kind: 'vpn', name });

describe('scope matching', () => {
  const cases: [scope: string, resource: Resource, matches: boolean][] = [
    ['cert:web-*', cert('web-1'), true],
    ['cert:web-*', cert('web-frontend'), true],
    ['cert:web-*', cert('web'), false],
    ['cert:web-*', cert('xweb-1'), false],
    ['cert:web*', cert('web'), true],
    ['cert:web', cert('web'), true],
    ['cert:web', cert('web-1'), false],
    ['cert:web', { kind: 'ca', name: 'web' }, false],
    ['cert:*', cert('anything'), true],
    ['cert:*', vpn('anything'), false],
    ['cert:*.internal', cert('api.internal'), true],
    ['cert:*.internal', cert('apixinternal'), false],
    ['cert:a*b*c', cert('aXXbYYc'), true],
    ['cert:a*b*c', cert('abc'), true],
    ['cert:a*b*c', cert('acb'), false],
    ['ca:default', { kind: 'ca', name: 'default' }, true],
    ['vpn:office/*', vpn('office/laptop'), true],
    ['vpn:office/*', vpn('office'), false],
    ['vpn:office/*', vpn('office/a/b'), false],
    ['vpn:office/*', vpn('officex/laptop'), false],
    ['vpn:*', vpn('office'), true],
    ['vpn:*', vpn('office/laptop'), false],
    ['vpn:office/**', vpn('office/laptop'), true],
    ['vpn:office/**', vpn('office/a/b'), true],
    ['vpn:office/**', vpn('office'), false],
    ['vpn:**', vpn('office'), true],
    ['vpn:**', vpn('office/laptop'), true],
    ['vpn:*/laptop', vpn('home/laptop'), true],
    ['vpn:*/laptop', vpn('home/phone'), false],
    ['*', vpn('office/a/b'), true],
    ['*', { kind: 'token', name: 'tok_1' }, true],
    ['profile:server', { kind: 'profile', name: 'server' }, true],
    ['cert:Web', cert('Web'), false],
  ];
  for (const [scope, resource, matches] of cases) {
    test(`${scope} ${matches ? 'matches' : 'does not match'} ${resource.kind}:${resource.name}`, () => {
      assert.equal(scopeMatches(scope, resource), matches);
    });
  }
  test('a dot in a pattern is literal, not a regex wildcard', () => {
    assert.equal(scopeMatches('cert:a.b', cert('axb')), false);
  });
});

describe('scope syntax at token creation', () => {
  const bad = [
    'web-*',
    'cert:',
    'key:web',
    'cert:Web',
    'cert:web/',
    'cert:/web',
    'cert:a//b',
    'cert:web**',
    'cert:we b',
    'cert:web?',
    'cert:(a|b)',
    '**',
    '',
    `cert:${'a'.repeat(250)}`,
  ];
  for (const scope of bad) {
    test(`refuses ${JSON.stringify(scope)} with INVALID_ARGUMENT naming it`, () => {
      assert.throws(
        () => validateScopes(['cert:ok', scope]),
        (err) =>
          isAppError(err, 'INVALID_ARGUMENT') &&
          err.message.includes(JSON.stringify(scope)) &&
          err.details.field === 'scopes[1]',
      );
    });
  }
  test('accepts the documented forms and drops duplicates', () => {
    assert.deepEqual(
      validateScopes(['*', 'cert:web-*', 'ca:default', 'vpn:office/*', 'vpn:office/**', 'cert:web-*']),
      ['*', 'cert:web-*', 'ca:default', 'vpn:office/*', 'vpn:office/**'],
    );
  });
  test('refuses more than 64 scopes', () => {
    const many = Array.from({ length: 65 }, (_, i) => `cert:c${i}`);
    assert.throws(
      () => validateScopes(many),
      (err) => isAppError(err, 'INVALID_ARGUMENT'),
    );
  });
});

describe('default scopes by role', () => {
  test('no scopes: everything for admin, operator, reader; nothing for issuer, service', () => {
    assert.deepEqual(effectiveScopes('admin', []), ['*']);
    assert.deepEqual(effectiveScopes('operator', []), ['*']);
    assert.deepEqual(effectiveScopes('reader', []), ['*']);
    assert.deepEqual(effectiveScopes('issuer', []), []);
    assert.deepEqual(effectiveScopes('service', []), []);
  });
  test('given scopes are used as they are, except for admin', () => {
    assert.deepEqual(effectiveScopes('reader', ['cert:a']), ['cert:a']);
    assert.deepEqual(effectiveScopes('admin', ['cert:a']), ['*']);
  });
});
