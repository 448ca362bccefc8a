import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  planDeclaredAccounts,
  checkDeclaredAccounts,
  type DesiredAccount,
} from '../../../src/acme/declared.js';
import type { AcmeAccountRecord } from '../../../src/acme/accounts.js';

const DIR = 'https://acme.internal/dir';

/** A stored account; `api`: registered over the API (not declared). */
function stored(id: string, o: Partial<AcmeAccountRecord> = {}, api = false): AcmeAccountRecord {
  return {
    id,
    directoryUrl: DIR,
    accountUrl: `https://acme.internal/acct/${id}`,
    contact: ['mailto:ops@example.com'],
    keyType: 'ec-p256',
    keyBlob: `sealed/acme/${id}/k`,
    keyThumbprint: 't',
    termsOfServiceAgreed: true,
    status: 'valid',
    ...(api ? {} : { declared: true as const }),
    createdAt: '2025-01-01T00:00:00.000Z',
    updatedAt: '2025-01-01T00:00:00.000Z',
    ...o,
  };
}

const want = (name: string, o: Partial<DesiredAccount> = {}): DesiredAccount => ({
  name,
  directoryUrl: DIR,
  contact: ['mailto:ops@example.com'],
  caPem: undefined,
  ...o,
});

describe('declared ACME accounts: the plan', () => {
  test('missing → register; same directory and contact → unchanged', () => {
    const plan = planDeclaredAccounts([want('new'), want('same')], [stored('same')]);
    assert.deepEqual(plan.decisions, [
      { kind: 'register', name: 'new' },
      { kind: 'unchanged', name: 'same' },
    ]);
    assert.deepEqual(plan.undeclared, []);
  });

  test('a changed email is an update of the contact only; removing it sends an empty list', () => {
    const plan = planDeclaredAccounts(
      [want('a', { contact: ['mailto:new@example.com'] }), want('b', { contact: [] })],
      [stored('a'), stored('b')],
    );
    assert.deepEqual(plan.decisions, [
      { kind: 'update', name: 'a', contact: ['mailto:new@example.com'] },
      { kind: 'update', name: 'b', contact: [] },
    ]);
  });

  test('another directory is refused, never re-registered; the message names both', () => {
    const [d] = planDeclaredAccounts(
      [want('a', { directoryUrl: 'https://other/dir' })],
      [stored('a')],
    ).decisions;
    assert.equal(d?.kind, 'refused');
    assert.match(
      d.kind === 'refused' ? d.message : '',
      /registered at https:\/\/acme\.internal\/dir.*https:\/\/other\/dir.*new name/,
    );
  });

  test('a deactivated account is refused', () => {
    const [d] = planDeclaredAccounts([want('a')], [stored('a', { status: 'deactivated' })]).decisions;
    assert.equal(d?.kind, 'refused');
  });

  test('an API-made account that configuration declares is adopted; trust changes locally', () => {
    const plan = planDeclaredAccounts(
      [want('api'), want('trust', { caPem: 'PEM2' }), want('untrust')],
      [stored('api', {}, true), stored('trust', { caPem: 'PEM1' }), stored('untrust', { caPem: 'PEM1' })],
    );
    assert.deepEqual(plan.decisions, [
      { kind: 'update', name: 'api', adopt: true },
      { kind: 'update', name: 'trust', caPem: 'PEM2' },
      { kind: 'update', name: 'untrust', caPem: null },
    ]);
  });

  test('declared before and removed → undeclared (kept); API-made accounts are never listed', () => {
    const plan = planDeclaredAccounts([], [stored('gone'), stored('api', {}, true)]);
    assert.deepEqual(plan.decisions, []);
    assert.deepEqual(plan.undeclared, ['gone']);
  });

  test('a declared account whose desired state could not be resolved (caFile unreadable) is not undeclared', () => {
    const plan = planDeclaredAccounts([], [stored('flaky')], ['flaky']);
    assert.deepEqual(plan.decisions, []);
    assert.deepEqual(plan.undeclared, []);
  });

  test('an unknown alias or a plain-HTTP directory is a configuration issue naming the field', () => {
    const issues = checkDeclaredAccounts([
      { name: 'ok', directory: 'letsencrypt', termsOfServiceAgreed: true },
      { name: 'typo', directory: 'letsencrpyt', termsOfServiceAgreed: true },
    ]);
    assert.deepEqual(
      issues.map((i) => i.path),
      ['acme.accounts[1].directory'],
    );
    assert.match(issues[0]!.message, /neither a known alias/);
  });
});
