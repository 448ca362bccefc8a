import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter, rateHeaders } from '../../../src/api/rate-limit.js';

test('a caller gets `limit` requests a window, then Retry-After until its window ends; others are unaffected', () => {
  let now = 1_000_000;
  const limiter = new RateLimiter(3, 60_000, () => now);
  assert.deepEqual(
    [1, 2, 3, 4].map(() => limiter.take('token:a').allowed),
    [true, true, true, false],
  );
  assert.equal(limiter.take('token:b').allowed, true, 'its own budget');
  now += 59_000;
  const refused = limiter.take('token:a');
  assert.equal(refused.allowed, false);
  assert.equal(refused.resetSeconds, 1);
  assert.deepEqual(rateHeaders(refused), {
    'x-ratelimit-limit': '3',
    'x-ratelimit-remaining': '0',
    'x-ratelimit-reset': '1',
    'retry-after': '1',
  });
  now += 1_000;
  const fresh = limiter.take('token:a');
  assert.equal(fresh.allowed, true, 'a new window');
  assert.equal(fresh.remaining, 2);
  assert.equal('retry-after' in rateHeaders(fresh), false);
});

test('windows that ended are swept once many callers have been seen, and counting stays right', () => {
  let now = 0;
  const limiter = new RateLimiter(1, 1000, () => now);
  for (let i = 0; i < 10_000; i++) limiter.take(`ip:${i}`);
  now = 5000;
  for (let i = 0; i < 10_000; i++) assert.equal(limiter.take(`ip:n${i}`).allowed, true);
  assert.equal(limiter.take('ip:n1').allowed, false);
});
