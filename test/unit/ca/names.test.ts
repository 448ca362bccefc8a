import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  constraintViolation,
  dnsMatchesPattern,
  dnsNameProblem,
  emailProblem,
  uriProblem,
} from '../../../src/ca/names.js';

test('DNS syntax: LDH labels ≤ 63, name ≤ 253, wildcard only leftmost', () => {
  for (const ok of [
    'web.internal',
    'a-b.c1.example',
    'localhost',
    'xn--bcher-kva.example',
    'a'.repeat(63) + '.x',
  ])
    assert.equal(dnsNameProblem(ok, false), undefined, ok);
  assert.equal(dnsNameProblem('*.svc.internal', true), undefined);
  for (const bad of [
    '',
    'a..b',
    '-a.b',
    'a-.b',
    'a_b.c',
    'a.b.',
    'a'.repeat(64) + '.x',
    `${'a'.repeat(62)}.`.repeat(5) + 'x',
    '*.svc',
    'a.*.b',
    '*',
    'w*.b',
    'é.b',
  ]) {
    assert.notEqual(dnsNameProblem(bad, bad === '*.svc' ? false : true), undefined, bad);
  }
});

test('profile DNS patterns: exact, one label (*.), any depth (**.), anything (**)', () => {
  assert.ok(dnsMatchesPattern('a.svc.internal', '*.svc.internal'));
  assert.ok(dnsMatchesPattern('*.svc.internal', '*.svc.internal'));
  assert.ok(!dnsMatchesPattern('a.b.svc.internal', '*.svc.internal'));
  assert.ok(!dnsMatchesPattern('svc.internal', '*.svc.internal'));
  assert.ok(dnsMatchesPattern('a.b.svc.internal', '**.svc.internal'));
  assert.ok(!dnsMatchesPattern('xsvc.internal', '**.svc.internal'));
  assert.ok(dnsMatchesPattern('API.example.com', 'api.example.com'));
  assert.ok(dnsMatchesPattern('anything.at.all', '**'));
});

test('email and URI syntax', () => {
  assert.equal(emailProblem('ops@example.com'), undefined);
  assert.notEqual(emailProblem('ops@'), undefined);
  assert.notEqual(emailProblem('a b@example.com'), undefined);
  assert.equal(uriProblem('spiffe://cluster.local/ns/a'), undefined);
  assert.notEqual(uriProblem('/relative'), undefined);
  assert.notEqual(uriProblem('http://a b'), undefined);
});

test('RFC 5280 §4.2.1.10 name constraints: permitted, excluded, per type', () => {
  const nc = {
    permitted: [
      { type: 'dns', value: 'internal' },
      { type: 'ip', value: '10.0.0.0/8' },
      { type: 'email', value: '.example.com' },
      { type: 'uri', value: 'host.example.com' },
    ],
    excluded: [
      { type: 'dns', value: 'secret.internal' },
      { type: 'ip', value: '10.9.0.0/16' },
    ],
  } as const;
  const ok = (type: 'dns' | 'ip' | 'email' | 'uri', value: string): void =>
    assert.equal(constraintViolation({ type, value }, nc), undefined, value);
  const bad = (type: 'dns' | 'ip' | 'email' | 'uri', value: string): void =>
    assert.notEqual(constraintViolation({ type, value }, nc), undefined, value);
  ok('dns', 'internal');
  ok('dns', 'web.internal');
  bad('dns', 'web.example.com');
  bad('dns', 'xinternal');
  bad('dns', 'a.secret.internal');
  // a wildcard could stand for the excluded name
  bad('dns', '*.internal');
  ok('dns', '*.web.internal');
  ok('ip', '10.1.2.3');
  bad('ip', '10.9.1.1');
  bad('ip', '192.168.0.1');
  bad('ip', 'fd00::1'); // iPAddress subtrees of either family constrain both
  ok('email', 'a@mail.example.com');
  bad('email', 'a@example.com');
  ok('uri', 'https://host.example.com/x');
  bad('uri', 'https://other.example.com/x');
  // no constraint of a type means that type is unconstrained
  assert.equal(
    constraintViolation(
      { type: 'email', value: 'x@y.z' },
      { permitted: [{ type: 'dns', value: 'internal' }], excluded: [] },
    ),
    undefined,
  );
  // directoryName constraints cannot be checked: refused rather than ignored
  assert.notEqual(
    constraintViolation(
      { type: 'dirName', value: 'CN=x', der: Buffer.alloc(0) },
      { permitted: [{ type: 'dirName', value: 'O=x', der: Buffer.alloc(0) }], excluded: [] },
    ),
    undefined,
  );
});
