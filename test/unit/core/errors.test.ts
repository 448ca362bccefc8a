import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError, StoreError, isAppError, toAppError, ERROR_CATALOGUE } from '../../../src/core/errors.js';

test('AppError carries code, category, retryable default, cause and details', () => {
  const cause = new Error('disk');
  const e = new StoreError('STORE_IO', 'write failed', { cause, details: { file: 'x' } });
  assert.equal(e.code, 'STORE_IO');
  assert.equal(e.name, 'StoreError');
  assert.equal(e.category, 'unavailable');
  assert.equal(e.retryable, ERROR_CATALOGUE.STORE_IO.retryable);
  assert.equal(e.cause, cause);
  assert.deepEqual(e.details, { file: 'x' });
  assert.ok(isAppError(e, 'STORE_IO'));
  assert.ok(!isAppError(e, 'STORE_CORRUPT'));
  assert.equal(new StoreError('STORE_IO', 'x', { retryable: false }).retryable, false);
});

test('toAppError wraps foreign errors once as INTERNAL without leaking their message', () => {
  const wrapped = toAppError(new TypeError('secret-ish internals'));
  assert.equal(wrapped.code, 'INTERNAL');
  assert.equal(wrapped.message, 'internal error');
  const original = new AppError('CA_NOT_FOUND', 'no CA x');
  assert.equal(toAppError(original), original);
});
