import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAppError } from '../../../src/core/errors.js';
import type { TokenId } from '../../../src/core/ids.js';
import type { Principal } from '../../../src/access/principal.js';
import { authorize, inScope, isAllowed } from '../../../src/access/policy.js';
import type { Action, Role } from '../../../src/access/roles.js';
import { ACTIONS, ROLES } from '../../../src/access/roles.js';

function principal(role: Role, scopes: string[] = []): Principal {
  return { kind: 'token', tokenId: 'tok_00112233aabbccdd' as TokenId, role, scopes };
}

// The expected table, written out by hand from DESIGN §3 / issue 6 rather than derived from ROLE_ACTIONS,
// so a change to the source table has to be made here too, on purpose.
//                         admin operator issuer reader service
const TABLE: Record<Action, [boolean, boolean, boolean, boolean, boolean]> = {
  'token.manage': /*    */ [true, false, false, false, false],
  'audit.read': /*      */ [true, true, false, false, false],
  'status.read': /*     */ [true, true, true, true, false],
  'ca.read': /*         */ [true, true, true, true, false],
  'ca.manage': /*       */ [true, true, false, false, false],
  'cert.read': /*       */ [true, true, true, true, false],
  'cert.issue': /*      */ [true, true, true, false, false],
  'cert.manage': /*     */ [true, true, false, false, false],
  'cert.revoke': /*     */ [true, true, false, false, false],
  'key.export': /*      */ [true, false, false, false, true],
  'deploy.read': /*     */ [true, true, false, true, false],
  'deploy.manage': /*   */ [true, true, false, false, false],
  'acme.read': /*       */ [true, true, false, true, false],
  'acme.manage': /*     */ [true, true, false, false, false],
  'vpn.read': /*        */ [true, true, false, true, false],
  'vpn.manage': /*      */ [true, true, false, false, false],
  'vpn.config.export': [true, false, false, false, true],
  'backup.create': /*   */ [true, false, false, false, false],
};

describe('role × action table', () => {
  test('covers every action', () => {
    assert.deepEqual(Object.keys(TABLE).sort(), [...ACTIONS].sort());
  });
  for (const action of ACTIONS) {
    ROLES.forEach((role, column) => {
      const allowed = TABLE[action][column]!;
      test(`${role} ${allowed ? 'may' : 'may not'} ${action}`, () => {
        // Every scope granted, so only the role decides.
        const p = principal(role, role === 'admin' ? [] : ['*']);
        assert.equal(isAllowed(p, action), allowed);
        if (allowed) {
          authorize(p, action);
        } else {
          assert.throws(
            () => authorize(p, action),
            (err) =>
              isAppError(err, 'ACCESS_DENIED') &&
              err.message.includes(`"${role}"`) &&
              err.message.includes(action) &&
              err.details.role === role &&
              err.details.action === action,
          );
        }
      });
    });
  }
});

describe('scopes in the policy', () => {
  test('an issuer may issue for names its scopes cover, and is denied others naming the resource', () => {
    const p = principal('issuer', ['cert:web-*', 'ca:default']);
    authorize(p, 'cert.issue', { kind: 'cert', name: 'web-1' });
    authorize(p, 'ca.read', { kind: 'ca', name: 'default' });
    assert.throws(
      () => authorize(p, 'cert.issue', { kind: 'cert', name: 'db-1' }),
      (err) =>
        isAppError(err, 'ACCESS_DENIED') &&
        err.details.resource === 'cert:db-1' &&
        /outside/.test(err.message),
    );
    assert.throws(
      () => authorize(p, 'ca.read', { kind: 'ca', name: 'other' }),
      (err) => isAppError(err, 'ACCESS_DENIED'),
    );
  });

  test('a service pulls only the bundles and VPN configs its scopes name', () => {
    const p = principal('service', ['cert:web', 'vpn:office/laptop']);
    authorize(p, 'key.export', { kind: 'cert', name: 'web' });
    authorize(p, 'vpn.config.export', { kind: 'vpn', name: 'office/laptop' });
    assert.equal(isAllowed(p, 'key.export', { kind: 'cert', name: 'web-2' }), false);
    assert.equal(isAllowed(p, 'vpn.config.export', { kind: 'vpn', name: 'office/phone' }), false);
    assert.equal(
      isAllowed(p, 'cert.read', { kind: 'cert', name: 'web' }),
      false,
      'nothing else, even in scope',
    );
  });

  test('issuer and service with no scopes may do nothing (deny by default)', () => {
    for (const role of ['issuer', 'service'] as const) {
      const p = principal(role);
      const action: Action = role === 'issuer' ? 'cert.issue' : 'key.export';
      assert.equal(isAllowed(p, action, { kind: 'cert', name: 'web' }), false);
      assert.throws(
        () => authorize(p, action),
        (err) => isAppError(err, 'ACCESS_DENIED') && /cover nothing/.test(err.message),
      );
    }
  });

  test('operator and reader with no scopes cover everything; with scopes only those', () => {
    assert.equal(isAllowed(principal('reader'), 'cert.read', { kind: 'cert', name: 'anything' }), true);
    assert.equal(isAllowed(principal('operator'), 'vpn.manage', { kind: 'vpn', name: 'a/b' }), true);
    const scoped = principal('operator', ['cert:team-a-*']);
    assert.equal(isAllowed(scoped, 'cert.revoke', { kind: 'cert', name: 'team-a-web' }), true);
    assert.equal(isAllowed(scoped, 'cert.revoke', { kind: 'cert', name: 'team-b-web' }), false);
  });

  test('admin is never narrowed by scopes', () => {
    const p = principal('admin', ['cert:web']);
    assert.equal(isAllowed(p, 'key.export', { kind: 'cert', name: 'db' }), true);
  });

  test('inScope filters list results whatever the action', () => {
    const p = principal('issuer', ['cert:web-*']);
    const names = ['web-1', 'web-2', 'db', 'web'].filter((name) => inScope(p, { kind: 'cert', name }));
    assert.deepEqual(names, ['web-1', 'web-2']);
  });

  test('a denial never carries the token id or any secret', () => {
    const p = principal('reader');
    try {
      authorize(p, 'key.export', { kind: 'cert', name: 'web' });
      assert.fail('expected a denial');
    } catch (err) {
      assert.ok(isAppError(err, 'ACCESS_DENIED'));
      assert.ok(!`${err.message} ${JSON.stringify(err.details)}`.includes('tok_'));
    }
  });
});
