import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { startApi } from '../../helpers/api-harness.js';
import { freePort } from '../../helpers/net.js';
import { FakeClock, systemClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/logger.js';
import { parseConfig } from '../../../src/config/load.js';
import { createAlertSink } from '../../../src/lifecycle/alerts.js';
import { renewalSweep } from '../../../src/lifecycle/sweeps.js';
import type { ExpiryAlert } from '../../../src/lifecycle/backoff.js';

const MIN = 60_000;

test('a certificate near expiry whose renewal fails raises one alert: event, signed webhook, de-duplicated, escalated', async (t) => {
  const received: Array<{ body: string; signature: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ body, signature: String(req.headers['x-keywright-signature']) });
      res.end();
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));

  const api = await startApi(t, { unsealed: true });
  const { certificates, deployer, issuers } = api.unsealed!;
  const ctx = { clock: systemClock, logger: silentLogger, actor: 'test' };
  await certificates.create(
    'web',
    {
      issuer: 'ca:default',
      sans: ['web.internal'],
      keyType: 'ec-p256',
      lifetimeMs: 60 * MIN,
      keyRotation: 'always',
    },
    { source: 'api' },
    ctx,
  );
  const notAfter = Date.parse(certificates.current('web').notAfter);

  const clock = new FakeClock(notAfter - 5 * MIN); // past renewAt, within 10% of a 61-minute lifetime
  const notified: Array<[string, ExpiryAlert]> = [];
  const config = parseConfig(
    {
      alerts: {
        repeat: '1h',
        webhook: { url: `http://127.0.0.1:${port}/alerts`, secret: 'env:ALERT_SECRET' },
      },
    },
    'test',
  ).alerts;
  const alerts = createAlertSink({
    config,
    clock,
    logger: silentLogger,
    notify: (c, a) => notified.push([c, a]),
    env: { ALERT_SECRET: 's3cret-for-tests' },
  });
  issuers.unregister('ca:default'); // renewal now fails: ISSUER_NOT_FOUND
  const deps = {
    store: api.store,
    audit: api.audit,
    certificates,
    deployer,
    clock,
    logger: silentLogger,
    alerts,
  };
  const mapLimit = async <T, R>(items: Iterable<T>, fn: (item: T, i: number) => Promise<R>) =>
    Promise.allSettled([...items].map(fn));

  const first = await renewalSweep(deps, mapLimit);
  assert.deepEqual(first, { processed: 1, failed: 1 });
  assert.equal(certificates.get('web').lastError?.code, 'ISSUER_NOT_FOUND');
  assert.equal(notified.length, 1);
  assert.equal(notified[0]![1].level, 'warning');

  await renewalSweep(deps, mapLimit); // in back-off: no new attempt, and the same alert is not repeated
  assert.equal(notified.length, 1);

  clock.set(notAfter + 1000); // expired: escalates to critical at once
  await renewalSweep(deps, mapLimit);
  assert.deepEqual(
    notified.map(([, a]) => a.level),
    ['warning', 'critical'],
  );

  for (let i = 0; i < 50 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(received.length, 2);
  for (const r of received) {
    assert.equal(
      r.signature,
      `sha256=${createHmac('sha256', 's3cret-for-tests').update(r.body).digest('hex')}`,
    );
    const body = JSON.parse(r.body) as { type: string; certificate: string };
    assert.equal(body.type, 'expiry-alert');
    assert.equal(body.certificate, 'web');
  }
});
