import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  asProblem,
  isRetryableProblem,
  parseRetryAfter,
  problemToError,
  shortProblemType,
} from '../../../src/acme/problems.js';

const NS = 'urn:ietf:params:acme:error:';
const NOW = new Date('2026-01-01T00:00:00Z');

describe('ACME problem documents → AcmeError', () => {
  test('retryable: badNonce, rateLimited, serverInternal and validation-time network problems; terminal: the rest', () => {
    for (const t of [
      'badNonce',
      'rateLimited',
      'serverInternal',
      'connection',
      'dns',
      'tls',
      'incorrectResponse',
    ]) {
      assert.equal(isRetryableProblem(`${NS}${t}`), true, t);
    }
    for (const t of [
      'unauthorized',
      'rejectedIdentifier',
      'caa',
      'badCSR',
      'malformed',
      'accountDoesNotExist',
      'externalAccountRequired',
      'alreadyRevoked',
      'invalidProfile',
      'alreadyReplaced',
      'userActionRequired',
    ]) {
      assert.equal(isRetryableProblem(`${NS}${t}`), false, t);
    }
    assert.equal(
      isRetryableProblem('https://ca.example/problems/weird'),
      false,
      'unknown types are terminal',
    );
  });

  test('rateLimited keeps its Retry-After (seconds and HTTP-date) in the message and details', () => {
    const retryAfter = parseRetryAfter('120', NOW)!;
    assert.equal(retryAfter.toISOString(), '2026-01-01T00:02:00.000Z');
    assert.equal(
      parseRetryAfter('Thu, 01 Jan 2026 01:00:00 GMT', NOW)!.toISOString(),
      '2026-01-01T01:00:00.000Z',
    );
    assert.equal(parseRetryAfter('soon', NOW), undefined);
    assert.equal(parseRetryAfter(undefined, NOW), undefined);
    const err = problemToError(
      { type: `${NS}rateLimited`, detail: 'too many new orders recently', status: 429, retryAfter },
      'creating the ACME order',
    );
    assert.equal(err.code, 'ACME_ERROR');
    assert.equal(err.retryable, true);
    assert.equal(err.category, 'upstream');
    assert.equal(
      err.message,
      'creating the ACME order: rateLimited: too many new orders recently; retry after 2026-01-01T00:02:00.000Z',
    );
    assert.deepEqual(err.details, {
      problemType: `${NS}rateLimited`,
      detail: 'too many new orders recently',
      status: 429,
      retryAfter: '2026-01-01T00:02:00.000Z',
    });
  });

  test('codes: a failed validation is ACME_CHALLENGE_FAILED, invalidProfile ACME_PROFILE_UNKNOWN, subproblems listed', () => {
    const challenge = problemToError(
      {
        type: `${NS}unauthorized`,
        detail: 'wrong key authorization',
        fromChallenge: true,
        identifier: 'a.example',
      },
      'validating a.example by http-01',
    );
    assert.equal(challenge.code, 'ACME_CHALLENGE_FAILED');
    assert.equal(challenge.retryable, false, 'unauthorized stays terminal inside a challenge too');
    assert.match(
      challenge.message,
      /^validating a\.example by http-01 for a\.example: unauthorized: wrong key authorization$/,
    );
    assert.equal(
      problemToError({ type: `${NS}invalidProfile`, detail: 'no' }, 'x').code,
      'ACME_PROFILE_UNKNOWN',
    );
    const sub = problemToError(
      {
        type: `${NS}rejectedIdentifier`,
        detail: 'some identifiers were rejected',
        subproblems: [
          { type: `${NS}caa`, detail: 'CAA forbids', identifier: { type: 'dns', value: 'b.example' } },
        ],
      },
      'creating the ACME order',
    );
    assert.equal(sub.retryable, false);
    assert.match(sub.message, /\[caa: CAA forbids\]$/);
    assert.deepEqual(sub.details.subproblems, [{ type: `${NS}caa`, detail: 'CAA forbids' }]);
  });

  test('asProblem accepts RFC 7807 bodies only', () => {
    assert.deepEqual(asProblem({ type: `${NS}caa`, detail: 'd', status: 403 }), {
      type: `${NS}caa`,
      detail: 'd',
    });
    assert.equal(asProblem({ status: 'valid' }), undefined);
    assert.equal(asProblem('text'), undefined);
    assert.equal(shortProblemType(`${NS}badNonce`), 'badNonce');
  });
});
