import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, sleep } from '../../../src/agent/backoff.js';
import { EventBus } from '../../../src/lifecycle/event-bus.js';

const policy = { baseMs: 1_000, maxMs: 60_000 };

test('back-off doubles from the base, is capped, and is half fixed, half random', () => {
  const rows: Array<[number, number, number]> = [
    // attempt, random, delay
    [0, 0, 500],
    [0, 0.999_999, 1_000],
    [1, 0, 1_000],
    [2, 0.5, 3_000],
    [5, 0, 16_000],
    [6, 0.999_999, 60_000],
    [40, 0, 30_000],
    [1_000, 0.5, 45_000],
  ];
  for (const [attempt, random, delay] of rows) {
    assert.equal(
      backoffDelay(attempt, policy, () => random),
      delay,
      `attempt ${attempt}, random ${random}`,
    );
  }
});

test('sleep ends early when aborted', async () => {
  const abort = new AbortController();
  const started = Date.now();
  setTimeout(() => abort.abort(), 20);
  await sleep(10_000, abort.signal);
  assert.ok(Date.now() - started < 1_000);
});

test('event bus: ids increase from firstId, history replays after an id, a throwing listener is isolated', async () => {
  const errors: unknown[] = [];
  const bus = new EventBus({ firstId: 1_000, historySize: 3, onListenerError: (e) => errors.push(e) });
  const seen: number[] = [];
  bus.subscribe(() => {
    throw new Error('broken subscriber');
  });
  const off = bus.subscribe((e) => seen.push(e.id));
  const at = new Date(0).toISOString();
  const publish = (name: string) =>
    bus.publish({ type: 'renewed', resource: { kind: 'cert', name }, at, details: {} });
  const waiting = bus.waitFor((e) => e.resource.name === 'b', 5_000);
  publish('a');
  publish('b');
  assert.equal((await waiting)?.id, 1_001);
  publish('c');
  publish('d');
  off();
  publish('e');
  assert.deepEqual(seen, [1_000, 1_001, 1_002, 1_003]);
  assert.equal(errors.length, 5);
  assert.deepEqual(
    bus.since(1_001).map((e) => e.resource.name),
    ['c', 'd', 'e'],
  );
  assert.deepEqual(
    bus.since(0).map((e) => e.id),
    [1_002, 1_003, 1_004],
    'the history keeps the last three',
  );
  const abort = new AbortController();
  const none = bus.waitFor(() => true, 5_000, abort.signal);
  abort.abort();
  assert.equal(await none, undefined);
  assert.equal(bus.listenerCount, 1, 'waiters unsubscribe when they end');
});
