import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { startApi, type Harness, type HttpResult } from '../../helpers/api-harness.js';

/** Bundle pulls answered ahead of fastify (src/api/hot-path.ts) must be indistinguishable from the route's. */
async function withCertificate(t: Parameters<typeof startApi>[0], rateLimit?: number) {
  const api = await startApi(t, { unsealed: true, ...(rateLimit === undefined ? {} : { rateLimit }) });
  const made = await api.call('POST', '/v1/certificates', {
    token: api.adminToken,
    body: { name: 'web', sans: ['web.internal'] },
  });
  assert.equal(made.status, 201, made.text);
  const { token } = await api.tokens.create({ role: 'service', scopes: ['cert:web'], createdBy: 'test' });
  return { api, token };
}

/** The same request through fastify: `wait` (a long poll without If-None-Match answers at once) is not taken by the hot path. */
const viaFastify = (path: string) => `${path}${path.includes('?') ? '&' : '?'}wait=1`;

async function pull(api: Harness, path: string, token: string, headers: Record<string, string> = {}) {
  const before = api.fastifyRequests.value;
  const res = await api.call('GET', path, { token, headers });
  // fastify's onResponse runs once the answer is flushed, which may be after the client has read it:
  // give it up to 200 ms to land (a hot-path answer never moves the counter, and costs the full wait).
  for (let i = 0; i < 40 && api.fastifyRequests.value === before; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  return { res, viaFastify: api.fastifyRequests.value > before };
}

const SAME_HEADERS = ['content-type', 'etag', 'cache-control', 'x-ratelimit-limit'] as const;

function sameAnswer(hot: HttpResult, slow: HttpResult) {
  assert.equal(hot.status, slow.status);
  assert.equal(hot.text, slow.text, 'same body, byte for byte');
  for (const h of SAME_HEADERS) assert.equal(hot.headers[h], slow.headers[h], h);
}

describe('bundle hot path', () => {
  for (const query of ['?format=pem', '?format=json', '']) {
    test(`GET bundle${query} with the key: answered without fastify, same bytes and headers as the route`, async (t) => {
      const { api, token } = await withCertificate(t, 1000);
      const path = `/v1/certificates/web/bundle${query}`;
      const hot = await pull(api, path, token, { 'x-request-id': 'hot-1' });
      assert.equal(hot.viaFastify, false, 'the hot path answered it');
      const slow = await pull(api, viaFastify(path), token);
      assert.equal(slow.viaFastify, true);
      assert.equal(hot.res.status, 200, hot.res.text);
      sameAnswer(hot.res, slow.res);
      assert.equal(hot.res.headers['x-request-id'], 'hot-1', 'a sane X-Request-Id is echoed');
      assert.equal(hot.res.headers['x-ratelimit-remaining'], '999');
      // The key in it is the certificate's.
      const text =
        query === '?format=pem' ? hot.res.text : (hot.res.json as { privateKey: string }).privateKey;
      const keyPem = /-----BEGIN PRIVATE KEY-----[^-]+-----END PRIVATE KEY-----\n/.exec(text)![0];
      const certPem =
        query === '?format=pem' ? hot.res.text : (hot.res.json as { certificate: string }).certificate;
      const spki = (k: Parameters<typeof createPublicKey>[0]) =>
        createPublicKey(k).export({ type: 'spki', format: 'der' });
      assert.deepEqual(
        spki(createPrivateKey(keyPem)),
        new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' }),
      );
      // Both pulls audited alike, the hot one under the request id it answered with.
      const entries = (await api.audit.query({ action: 'key.export', limit: 10 })).map((e) => ({
        actor: e.actor,
        subject: e.subject,
        details: e.details,
        requestId: e.requestId,
      }));
      assert.equal(entries.length, 2);
      assert.deepEqual(entries[0], { ...entries[1], requestId: 'hot-1' });
      assert.equal(entries[0].subject, 'cert:web');
      assert.equal(entries[0].details!.format, query === '?format=pem' ? 'pem' : 'json');
    });
  }

  test('If-None-Match with the current ETag: 304 from the hot path, nothing unsealed or audited', async (t) => {
    const { api, token } = await withCertificate(t);
    const first = await pull(api, '/v1/certificates/web/bundle?format=pem', token);
    const again = await pull(api, '/v1/certificates/web/bundle?format=pem', token, {
      'if-none-match': String(first.res.headers.etag),
    });
    assert.equal(again.viaFastify, false);
    assert.equal(again.res.status, 304);
    assert.equal(again.res.text, '');
    assert.equal(again.res.headers.etag, first.res.headers.etag);
    assert.equal((await api.audit.query({ action: 'key.export', limit: 10 })).length, 1);
  });

  test('one rate-limit budget for both paths: the hot path counts, and an over-budget caller gets 429 problem+json', async (t) => {
    const { api, token } = await withCertificate(t, 4);
    const statuses: number[] = [];
    statuses.push((await pull(api, '/v1/certificates/web/bundle', token)).res.status);
    statuses.push((await pull(api, viaFastify('/v1/certificates/web/bundle'), token)).res.status);
    statuses.push((await pull(api, '/v1/certificates/web/bundle', token)).res.status);
    // fastify counts a request it refuses (a service may not read the certificate record) too.
    statuses.push((await pull(api, '/v1/certificates/web', token)).res.status);
    const limited = await pull(api, '/v1/certificates/web/bundle', token);
    statuses.push(limited.res.status);
    assert.deepEqual(statuses, [200, 200, 200, 403, 429]);
    assert.equal(limited.res.json.code, 'API_RATE_LIMITED');
    assert.equal(limited.res.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.ok(Number(limited.res.headers['retry-after']) >= 1);
    assert.equal(
      (await api.audit.query({ action: 'key.export', limit: 10 })).length,
      3,
      'the refused pull exported nothing',
    );
  });

  test('what the hot path does not take is answered by the route as before', async (t) => {
    const { api, token } = await withCertificate(t);
    const reader = (await api.tokens.create({ role: 'reader', createdBy: 'test' })).token;
    const cases: [string, string | undefined, Record<string, string>, number, string | undefined][] = [
      ['/v1/certificates/web/bundle', undefined, {}, 401, 'AUTH_REQUIRED'],
      ['/v1/certificates/web/bundle', 'kw_' + 'x'.repeat(43), {}, 401, 'AUTH_INVALID'],
      ['/v1/certificates/nope/bundle', token, {}, 403, 'ACCESS_DENIED'],
      ['/v1/certificates/web/bundle?format=p12', token, {}, 400, 'API_BAD_REQUEST'],
      ['/v1/certificates/web/bundle?format=yaml', token, {}, 400, 'API_BAD_REQUEST'],
      ['/v1/certificates/Web/bundle', token, {}, 403, 'ACCESS_DENIED'],
      ['/v1/certificates/web/bundle', reader, {}, 200, undefined],
    ];
    for (const [path, tok, headers, status, code] of cases) {
      const r = await pull(api, path, tok ?? '', headers);
      assert.equal(r.viaFastify, true, path);
      assert.equal(r.res.status, status, `${path}: ${r.res.text}`);
      if (code !== undefined) assert.equal(r.res.json.code, code, path);
    }
    const readerBody = (await api.call('GET', '/v1/certificates/web/bundle', { token: reader }))
      .json as object;
    assert.equal('privateKey' in readerBody, false, 'a reader gets the public part only');
    api.sealed.value = true;
    const sealed = await pull(api, '/v1/certificates/web/bundle', token);
    assert.equal(sealed.viaFastify, true);
    assert.equal(sealed.res.json.code, 'DAEMON_SEALED');
  });

  test('an audit log that cannot be written: 5xx problem+json from the hot path, no key sent', async (t) => {
    const { api, token } = await withCertificate(t);
    await api.audit.close();
    const r = await pull(api, '/v1/certificates/web/bundle?format=pem', token);
    assert.equal(r.viaFastify, false);
    assert.ok(r.res.status >= 500, r.res.text);
    assert.equal(r.res.json.code, 'AUDIT_WRITE_FAILED');
    assert.equal(r.res.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.doesNotMatch(r.res.text, /PRIVATE KEY/);
  });
});
