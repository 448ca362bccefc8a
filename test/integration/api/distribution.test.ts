/**
 * Distribution over real HTTPS on 127.0.0.1, against the daemon as `serve` runs it: bundle ETags and
 * 304, the ?wait long poll answering within a second of a renewal, server-sent events filtered by
 * scope, sealed bundles, the per-token rate limit, and bad input. Every export must be in the audit log.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { generateKeyPairSync } from '../../helpers/keys.js';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApiServer } from '../../../src/api/server.js';
import { createLogger } from '../../../src/app/logger.js';
import { TokenService } from '../../../src/access/token-service.js';
import type { AuditLog } from '../../../src/audit/index.js';
import { systemClock } from '../../../src/core/clock.js';
import { EventBus } from '../../../src/lifecycle/event-bus.js';
import { createMemoryStore } from '../../../src/store/memory/index.js';
import { compactDecrypt, decodeProtectedHeader } from 'jose';
import { createCertificate, renew, startTestDaemon, type TestDaemon } from '../agent/daemon.js';

const bundlePath = (name: string, query = '') => `/v1/certificates/${name}/bundle${query}`;

async function auditActions(d: TestDaemon, action: string) {
  const r = await d.call('GET', `/v1/audit?action=${action}&limit=1000`, { token: d.adminToken });
  assert.equal(r.status, 200, r.text);
  return r.json.entries as Array<{ actor: string; subject: string; details?: Record<string, unknown> }>;
}

/** Reads server-sent events until `count` events arrived or `ms` passed. */
function readEvents(
  d: TestDaemon,
  token: string,
  o: { count: number; ms: number; query?: string; lastEventId?: string },
): Promise<{ status: number; events: Array<{ id: string; event: string; data: any }>; raw: string }> {
  return new Promise((resolve, reject) => {
    const events: Array<{ id: string; event: string; data: any }> = [];
    let raw = '';
    const req = httpsRequest(
      new URL(`/v1/events${o.query ?? ''}`, d.url),
      {
        ca: d.ca,
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          ...(o.lastEventId ? { 'last-event-id': o.lastEventId } : {}),
        },
      },
      (res) => {
        const done = () => {
          clearTimeout(timer);
          req.destroy();
          resolve({ status: res.statusCode ?? 0, events, raw });
        };
        const timer = setTimeout(done, o.ms);
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          raw += chunk;
          const blocks = raw.split('\n\n');
          events.length = 0;
          for (const block of blocks.slice(0, -1)) {
            const fields = Object.fromEntries(
              block
                .split('\n')
                .filter((l) => !l.startsWith(':') && l.includes(': '))
                .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]),
            );
            if (fields.event)
              events.push({
                id: fields.id ?? '',
                event: fields.event,
                data: JSON.parse(fields.data ?? '{}'),
              });
          }
          if (events.length >= o.count) done();
        });
        res.on('end', done);
      },
    );
    req.on('error', (err) =>
      (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err),
    );
    req.end();
  });
}

describe('distribution API over HTTPS', () => {
  test('ETag and 304; a reader gets no key; every key export is audited with the caller', async (t) => {
    const d = await startTestDaemon(t);
    const v1 = await createCertificate(d, 'web');
    const service = await d.token('service', ['cert:web']);
    const reader = await d.token('reader');

    const first = await d.call('GET', bundlePath('web', '?format=json'), { token: service });
    assert.equal(first.status, 200, first.text);
    const etag = first.headers.etag as string;
    assert.match(etag, /^"[0-9a-f]{32}-k-json"$/);
    assert.equal(first.json.version, v1.version);
    assert.match(first.json.privateKey, /BEGIN PRIVATE KEY/);
    assert.equal(first.headers['cache-control'], 'no-store');

    const again = await d.call('GET', bundlePath('web', '?format=json'), {
      token: service,
      headers: { 'if-none-match': etag },
    });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);

    const forReader = await d.call('GET', bundlePath('web', '?format=pem'), { token: reader });
    assert.equal(forReader.status, 200);
    assert.doesNotMatch(forReader.text, /PRIVATE KEY/);
    assert.notEqual(forReader.headers.etag, etag, 'the public bundle has its own ETag');

    const exports = (await auditActions(d, 'key.export')).filter((e) => e.subject === 'cert:web');
    assert.equal(exports.length, 1, 'one export (the 304 and the reader pull export nothing)');
    assert.match(exports[0]!.actor, /^tok_[0-9a-f]{16}$/);
    assert.equal(exports[0]!.details?.format, 'json');
  });

  test('?wait long poll answers within a second of a renewal, and 304 when the wait ends', async (t) => {
    const d = await startTestDaemon(t);
    await createCertificate(d, 'api');
    const service = await d.token('service', ['cert:api']);
    const first = await d.call('GET', bundlePath('api'), { token: service });
    const etag = first.headers.etag as string;

    const timedOut = await d.call('GET', bundlePath('api', '?wait=1'), {
      token: service,
      headers: { 'if-none-match': etag },
    });
    assert.equal(timedOut.status, 304);
    assert.ok(timedOut.ms >= 950 && timedOut.ms < 3000, `held ${timedOut.ms} ms for wait=1`);

    const polling = d.call('GET', bundlePath('api', '?wait=30'), {
      token: service,
      headers: { 'if-none-match': etag },
    });
    await new Promise((r) => setTimeout(r, 300));
    const renewedAt = performance.now();
    const v2 = await renew(d, 'api');
    const answer = await polling;
    const lag = performance.now() - renewedAt;
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.version, v2.version);
    assert.notEqual(answer.headers.etag, etag);
    assert.ok(lag < 1000, `answered ${lag.toFixed(0)} ms after the renewal was requested`);

    // A poll whose If-None-Match is stale answers at once.
    const stale = await d.call('GET', bundlePath('api', '?wait=30'), {
      token: service,
      headers: { 'if-none-match': etag },
    });
    assert.equal(stale.status, 200);
    assert.ok(stale.ms < 1000);
  });

  test('a graceful stop ends held long polls with 304 at once', async (t) => {
    const d = await startTestDaemon(t);
    await createCertificate(d, 'db');
    const service = await d.token('service', ['cert:db']);
    const etag = (await d.call('GET', bundlePath('db'), { token: service })).headers.etag as string;
    const polls = Array.from({ length: 5 }, () =>
      d.call('GET', bundlePath('db', '?wait=120'), { token: service, headers: { 'if-none-match': etag } }),
    );
    await new Promise((r) => setTimeout(r, 300));
    const started = performance.now();
    await d.stop();
    const answers = await Promise.all(polls);
    assert.ok(performance.now() - started < 5000, 'stop was not held by the polls');
    assert.deepEqual(
      answers.map((a) => a.status),
      [304, 304, 304, 304, 304],
    );
  });

  test('server-sent events: renewed and revoked, filtered by scope, resume with Last-Event-ID, bad types', async (t) => {
    const d = await startTestDaemon(t);
    await createCertificate(d, 'web');
    await createCertificate(d, 'other');
    const webOnly = await d.token('service', ['cert:web']);
    const reader = await d.token('reader');

    const forService = readEvents(d, webOnly, { count: 2, ms: 8000 });
    const forReader = readEvents(d, reader, { count: 3, ms: 8000 });
    await new Promise((r) => setTimeout(r, 300));
    await renew(d, 'other');
    await renew(d, 'web');
    const revoked = await d.call('POST', '/v1/certificates/web/revoke', {
      token: d.adminToken,
      body: { reason: 'superseded' },
    });
    assert.equal(revoked.status, 200, revoked.text);

    const s = await forService;
    assert.equal(s.status, 200);
    assert.deepEqual(
      s.events.map((e) => [e.event, e.data.resource]),
      [
        ['renewed', 'cert:web'],
        ['revoked', 'cert:web'],
      ],
      'the web-only service hears nothing of "other"',
    );
    assert.equal(s.events[0]!.data.version, 2);
    assert.doesNotMatch(s.raw, /PRIVATE KEY|kw_/);
    const r = await forReader;
    assert.deepEqual(
      r.events.map((e) => [e.event, e.data.resource]),
      [
        ['renewed', 'cert:other'],
        ['renewed', 'cert:web'],
        ['revoked', 'cert:web'],
      ],
    );

    // Resume: only what came after the given id.
    const resumed = await readEvents(d, reader, { count: 2, ms: 1500, lastEventId: r.events[0]!.id });
    assert.deepEqual(
      resumed.events.map((e) => e.data.resource),
      ['cert:web', 'cert:web'],
    );
    const typed = await readEvents(d, reader, {
      count: 1,
      ms: 1500,
      lastEventId: '0',
      query: '?types=revoked',
    });
    assert.deepEqual(
      typed.events.map((e) => e.event),
      ['revoked'],
    );

    const bad = await d.call('GET', '/v1/events?types=exploded', { token: reader });
    assert.equal(bad.status, 400);
    const nothing = await d.call('GET', '/v1/events', { token: await d.token('service') });
    assert.equal(nothing.status, 403, 'a service token without scopes would hear nothing');
  });

  test('a stop closes event streams cleanly', async (t) => {
    const d = await startTestDaemon(t);
    const reader = await d.token('reader');
    const stream = readEvents(d, reader, { count: 1, ms: 10_000 });
    await new Promise((r) => setTimeout(r, 300));
    const started = performance.now();
    await d.stop();
    const s = await stream;
    assert.equal(s.status, 200);
    assert.match(s.raw, /^retry: \d+\n/);
    assert.ok(performance.now() - started < 3000, 'the stream ended with the daemon');
  });

  test('a seal key registered with the token: bundles go to it without a header; another key is refused', async (t) => {
    const d = await startTestDaemon(t);
    await createCertificate(d, 'vault');
    const pair = generateKeyPairSync('x25519');
    const spki = pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64url');
    const created = await d.call('POST', '/v1/tokens', {
      token: d.adminToken,
      body: { role: 'service', scopes: ['cert:vault'], sealKey: spki },
    });
    assert.equal(created.status, 201, created.text);
    assert.match(created.json.sealKeyId, /^[A-Za-z0-9_-]{43}$/);
    const token = created.json.token as string;
    const r = await d.call('GET', bundlePath('vault', '?format=sealed'), { token });
    assert.equal(r.status, 200, r.text);
    const { plaintext } = await compactDecrypt(r.text, pair.privateKey);
    assert.match(JSON.parse(Buffer.from(plaintext).toString('utf8')).privateKey, /PRIVATE KEY/);
    const same = await d.call('GET', bundlePath('vault', '?format=sealed'), {
      token,
      headers: { 'x-keywright-seal-key': spki },
    });
    assert.equal(same.status, 200);
    const other = generateKeyPairSync('x25519')
      .publicKey.export({ type: 'spki', format: 'der' })
      .toString('base64url');
    const swapped = await d.call('GET', bundlePath('vault', '?format=sealed'), {
      token,
      headers: { 'x-keywright-seal-key': other },
    });
    assert.equal(swapped.status, 400, 'a proxy cannot substitute its own key');
    const bad = await d.call('POST', '/v1/tokens', {
      token: d.adminToken,
      body: { role: 'service', scopes: ['cert:vault'], sealKey: 'AAAA' },
    });
    assert.equal(bad.status, 400);
  });

  test('sealed bundles: X25519 and RSA recipients, opened only with the right key, audited', async (t) => {
    const d = await startTestDaemon(t);
    await createCertificate(d, 'vault');
    const service = await d.token('service', ['cert:vault']);
    for (const type of ['x25519', 'rsa'] as const) {
      const pair =
        type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('x25519');
      const header = pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64url');
      const r = await d.call('GET', bundlePath('vault', '?format=sealed'), {
        token: service,
        headers: { 'x-keywright-seal-key': header },
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers['content-type'], 'application/jose');
      assert.match(r.headers.etag as string, /-k-sealed"$/);
      assert.doesNotMatch(r.text, /PRIVATE KEY|BEGIN CERTIFICATE/, 'nothing readable on the wire');
      const h = decodeProtectedHeader(r.text);
      assert.equal(h.alg, type === 'rsa' ? 'RSA-OAEP-256' : 'ECDH-ES+A256KW');
      assert.equal(h.enc, 'A256GCM');
      assert.equal(h['kw-cert'], 'vault');
      const { plaintext } = await compactDecrypt(r.text, pair.privateKey);
      const bundle = JSON.parse(Buffer.from(plaintext).toString('utf8'));
      const cert = new X509Certificate(bundle.certificate);
      assert.ok(
        createPublicKey(bundle.privateKey)
          .export({ type: 'spki', format: 'der' })
          .equals(cert.publicKey.export({ type: 'spki', format: 'der' })),
      );
      const wrong =
        type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('x25519');
      await assert.rejects(compactDecrypt(r.text, wrong.privateKey));
    }
    const exports = (await auditActions(d, 'key.export')).filter((e) => e.details?.format === 'sealed');
    assert.equal(exports.length, 2);
    assert.match(String(exports[0]!.details?.sealedTo), /^[A-Za-z0-9_-]{43}$/);

    const reader = await d.token('reader');
    const denied = await d.call('GET', bundlePath('vault', '?format=sealed'), {
      token: reader,
      headers: { 'x-keywright-seal-key': 'AAAA' },
    });
    assert.equal(denied.status, 403, 'sealed carries the key: key.export is needed');
    const noKey = await d.call('GET', bundlePath('vault', '?format=sealed'), { token: service });
    assert.equal(noKey.status, 400);
    assert.equal(noKey.json.details.issues[0].field, 'x-keywright-seal-key');
    const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .publicKey.export({ type: 'spki', format: 'der' })
      .toString('base64url');
    const wrongType = await d.call('GET', bundlePath('vault', '?format=sealed'), {
      token: service,
      headers: { 'x-keywright-seal-key': ecKey },
    });
    assert.equal(wrongType.status, 400);
    assert.match(wrongType.json.detail, /X25519 or RSA/);
  });

  test('bad input: unknown certificate, wrong scope, missing or malformed token, absurd wait, unknown format', async (t) => {
    const d = await startTestDaemon(t);
    await createCertificate(d, 'web');
    await createCertificate(d, 'db');
    const webService = await d.token('service', ['cert:web']);

    const cases: Array<[string, string, Record<string, string>, number, string]> = [
      [
        'unknown certificate',
        bundlePath('nope'),
        { authorization: `Bearer ${d.adminToken}` },
        404,
        'CERT_NOT_FOUND',
      ],
      [
        'a token for another certificate',
        bundlePath('db'),
        { authorization: `Bearer ${webService}` },
        403,
        'ACCESS_DENIED',
      ],
      ['missing token', bundlePath('web'), {}, 401, 'AUTH_REQUIRED'],
      ['malformed header', bundlePath('web'), { authorization: 'Token abc' }, 401, 'AUTH_INVALID'],
      [
        'unknown token',
        bundlePath('web'),
        { authorization: `Bearer kw_${'A'.repeat(43)}` },
        401,
        'AUTH_INVALID',
      ],
      [
        'wait too long',
        bundlePath('web', '?wait=301'),
        { authorization: `Bearer ${webService}` },
        400,
        'API_BAD_REQUEST',
      ],
      [
        'negative wait',
        bundlePath('web', '?wait=-1'),
        { authorization: `Bearer ${webService}` },
        400,
        'API_BAD_REQUEST',
      ],
      [
        'wait not a number',
        bundlePath('web', '?wait=soon'),
        { authorization: `Bearer ${webService}` },
        400,
        'API_BAD_REQUEST',
      ],
      [
        'fractional wait',
        bundlePath('web', '?wait=1.5'),
        { authorization: `Bearer ${webService}` },
        400,
        'API_BAD_REQUEST',
      ],
      [
        'unknown format',
        bundlePath('web', '?format=der'),
        { authorization: `Bearer ${webService}` },
        400,
        'API_BAD_REQUEST',
      ],
    ];
    for (const [what, path, headers, status, code] of cases) {
      const r = await d.call('GET', path, { headers });
      assert.equal(r.status, status, `${what}: ${r.text}`);
      assert.equal(r.json.code, code, what);
      assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8', what);
      if (what.includes('wait')) assert.equal(r.json.details.issues[0].field, 'wait', what);
      if (what === 'unknown format') assert.equal(r.json.details.issues[0].field, 'format');
      assert.ok(r.ms < 2000, `${what} answered at once`);
    }
    const exports = await auditActions(d, 'key.export');
    assert.equal(exports.length, 0, 'no refused request exported anything');
  });
});

describe('event stream heartbeats', () => {
  test('an idle stream gets a comment line every heartbeat interval', async (t) => {
    const store = createMemoryStore();
    const tokens = new TokenService({ store });
    const { token } = await tokens.create({ role: 'reader', createdBy: 'test' });
    const app = createApiServer(
      {
        clock: systemClock,
        store,
        audit: {} as AuditLog,
        tokens,
        version: 'test',
        events: new EventBus(),
        isSealed: () => false,
        notReadyReason: () => undefined,
      },
      { logger: createLogger('silent'), bodyLimit: 1024, eventsHeartbeatMs: 100 },
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    t.after(() => app.close());
    const { port } = app.server.address() as AddressInfo;
    const raw = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, path: '/v1/events', headers: { authorization: `Bearer ${token}` } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          setTimeout(() => {
            req.destroy();
            resolve(text);
          }, 550);
        },
      );
      req.on('error', (err) =>
        (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err),
      );
      req.end();
    });
    const beats = raw.split(': heartbeat\n\n').length - 1;
    assert.ok(beats >= 2 && beats <= 7, `${beats} heartbeats in 550 ms at 100 ms`);
  });
});

describe('rate limit', () => {
  test('429 with Retry-After and API_RATE_LIMITED per token; other tokens unaffected', async (t) => {
    const d = await startTestDaemon(t, { api: { rateLimit: 5 } });
    const a = await d.token('reader');
    const b = await d.token('reader');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await d.call('GET', '/v1/status', { token: a })).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
    const limited = await d.call('GET', '/v1/status', { token: a });
    assert.equal(limited.status, 429);
    assert.equal(limited.json.code, 'API_RATE_LIMITED');
    assert.equal(limited.json.retryable, true);
    assert.equal(limited.headers['content-type'], 'application/problem+json; charset=utf-8');
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${String(limited.headers['retry-after'])}`);
    assert.equal(
      (await d.call('GET', '/v1/status', { token: b })).status,
      200,
      'another token has its own budget',
    );
  });
});
