import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, formatDuration } from '../../../src/core/duration.js';
import { isAppError } from '../../../src/core/errors.js';

const H = 3_600_000;
const D = 24 * H;

test('parses short and ISO-8601 durations', () => {
  const cases: Array<[string, number]> = [
    ['90d', 90 * D],
    ['12h', 12 * H],
    ['30m', 30 * 60_000],
    ['45s', 45_000],
    ['500ms', 500],
    ['2w', 14 * D],
    ['1d12h', 36 * H],
    ['P90D', 90 * D],
    ['PT12H', 12 * H],
    ['P1DT2H3M4S', D + 2 * H + 3 * 60_000 + 4000],
    ['PT0.5S', 500],
    ['P2W', 14 * D],
  ];
  for (const [input, ms] of cases) assert.equal(parseDuration(input), ms, input);
});

test('rejects what is not a duration, naming the field', () => {
  for (const bad of [
    '',
    '90',
    'd',
    '-5m',
    '1.5h',
    '12x',
    'P',
    'PT',
    'P1Y',
    '0s',
    'PT0S',
    '9'.repeat(80) + 'd',
  ]) {
    assert.throws(
      () => parseDuration(bad, 'lifetime'),
      (err) => isAppError(err, 'DURATION_INVALID') && err.message.startsWith('lifetime:'),
      bad,
    );
  }
});

test('formats to the largest exact unit', () => {
  assert.equal(formatDuration(90 * D), '90d');
  assert.equal(formatDuration(14 * D), '2w');
  assert.equal(formatDuration(90 * 60_000), '90m');
  assert.equal(formatDuration(1500), '1500ms');
});
