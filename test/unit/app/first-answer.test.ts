import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterFirstAnswer } from '../../../src/app/first-answer.js';

async function listening(t: TestContext, handler: (answer: () => void) => void) {
  const server = createServer((_req, res) => handler(() => res.end('ok')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return server;
}

const fetchOnce = (server: Server) =>
  new Promise<string>((resolve, reject) => {
    const { port } = server.address() as AddressInfo;
    get({ host: '127.0.0.1', port, path: '/readyz', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('runs once the first response is out, not while the request is being answered', async (t) => {
  let answer: (() => void) | undefined;
  // the first request is held until the test answers it; later ones are answered at once
  const server = await listening(t, (a) => {
    if (answer === undefined) answer = a;
    else a();
  });
  const ran: string[] = [];
  afterFirstAnswer(server, 60_000, () => ran.push('sweeps'));
  const response = fetchOnce(server);
  while (answer === undefined) await sleep(5);
  await sleep(50);
  assert.deepEqual(ran, [], 'not before the answer');
  answer();
  assert.equal(await response, 'ok');
  await sleep(20);
  assert.deepEqual(ran, ['sweeps']);
  await fetchOnce(server); // later requests do not run it again
  await sleep(20);
  assert.deepEqual(ran, ['sweeps']);
});

test('runs after maxWaitMs when nobody asks, and never after cancel', async (t) => {
  const server = await listening(t, (a) => a());
  const ran: string[] = [];
  afterFirstAnswer(server, 30, () => ran.push('by time'));
  const cancel = afterFirstAnswer(server, 30, () => ran.push('cancelled'));
  cancel();
  await sleep(100);
  assert.deepEqual(ran, ['by time']);
  await fetchOnce(server);
  await sleep(20);
  assert.deepEqual(ran, ['by time']);
  assert.equal(server.listenerCount('request'), 1, 'only the server handler is left');
});
