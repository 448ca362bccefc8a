import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { filesUnder } from '../../helpers/files.js';
import { startApi, type HttpResult } from '../../helpers/api-harness.js';

function assertProblem(res: HttpResult, status: number, code: string): void {
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  assert.equal(res.json.code, code, res.text);
  assert.equal(res.json.status, status);
  assert.equal(res.json.type, `urn:keywright:error:${code}`);
  assert.ok(typeof res.json.detail === 'string' && res.json.detail.length > 0);
  assert.ok(typeof res.json.requestId === 'string');
}

describe('API over real HTTP on 127.0.0.1', () => {
  test('health and readiness need no token; readyz is 503 while sealed', async (t) => {
    const api = await startApi(t);
    const h = await api.call('GET', '/healthz');
    assert.equal(h.status, 200);
    assert.deepEqual(h.json, { status: 'ok', sealed: false });
    assert.equal((await api.call('GET', '/readyz')).status, 200);
    api.sealed.value = true;
    assert.equal((await api.call('GET', '/healthz')).status, 200);
    assertProblem(await api.call('GET', '/readyz'), 503, 'DAEMON_SEALED');
    assertProblem(await api.call('GET', '/v1/status', { token: api.adminToken }), 503, 'DAEMON_SEALED');
  });

  test('unauthenticated 401, forged 401, wrong role 403, unknown route 404, all problem+json', async (t) => {
    const api = await startApi(t);
    const missing = await api.call('GET', '/v1/tokens');
    assertProblem(missing, 401, 'AUTH_REQUIRED');
    assert.match(String(missing.headers['www-authenticate']), /^Bearer/);
    assertProblem(
      await api.call('GET', '/v1/tokens', { headers: { authorization: 'Basic abc' } }),
      401,
      'AUTH_INVALID',
    );
    const forged = `kw_${'A'.repeat(43)}`;
    assertProblem(await api.call('GET', '/v1/tokens', { token: forged }), 401, 'AUTH_INVALID');
    assertProblem(await api.call('GET', '/v1/tokens', { token: 'not-a-token' }), 401, 'AUTH_INVALID');
    const { token: reader } = await api.tokens.create({ role: 'reader', createdBy: 'test' });
    const denied = await api.call('GET', '/v1/tokens', { token: reader });
    assertProblem(denied, 403, 'ACCESS_DENIED');
    assert.match(denied.json.detail, /role "reader" may not token\.manage/);
    assert.ok(!denied.text.includes(reader), 'the token never appears in an error');
    assertProblem(await api.call('GET', '/v1/nope', { token: api.adminToken }), 404, 'API_NOT_FOUND');
  });

  test('bad bodies: unknown field, wrong type, malformed JSON, oversized, wrong content type', async (t) => {
    const api = await startApi(t, { bodyLimit: 2048 });
    const unknown = await api.call('POST', '/v1/tokens', {
      token: api.adminToken,
      body: { role: 'reader', rol: 'x' },
    });
    assertProblem(unknown, 400, 'API_BAD_REQUEST');
    assert.deepEqual(unknown.json.details.issues, [{ field: 'rol', message: 'unknown field' }]);
    const badRole = await api.call('POST', '/v1/tokens', { token: api.adminToken, body: { role: 'root' } });
    assertProblem(badRole, 400, 'API_BAD_REQUEST');
    assert.match(badRole.json.detail, /role/);
    const badTtl = await api.call('POST', '/v1/tokens', {
      token: api.adminToken,
      body: { role: 'reader', ttl: 'soon' },
    });
    assertProblem(badTtl, 400, 'API_BAD_REQUEST');
    assert.match(badTtl.json.detail, /ttl: not a duration/);
    assertProblem(
      await api.call('POST', '/v1/tokens', { token: api.adminToken, rawBody: '{"role": "reader",' }),
      400,
      'API_BAD_REQUEST',
    );
    const big = JSON.stringify({ role: 'reader', description: 'x'.repeat(4096) });
    assertProblem(
      await api.call('POST', '/v1/tokens', { token: api.adminToken, rawBody: big }),
      413,
      'API_BODY_TOO_LARGE',
    );
    assertProblem(
      await api.call('POST', '/v1/tokens', {
        token: api.adminToken,
        rawBody: 'role=reader',
        headers: { 'content-type': 'text/plain' },
      }),
      400,
      'API_UNSUPPORTED_MEDIA',
    );
    // Nothing was created by any of these.
    assert.equal(api.tokens.list().length, 1);
  });

  test('token create, use, list, revoke; revoked tokens stop working; every change audited', async (t) => {
    const api = await startApi(t);
    const created = await api.call('POST', '/v1/tokens', {
      token: api.adminToken,
      body: { role: 'reader', ttl: '1h', description: 'ci' },
    });
    assert.equal(created.status, 201, created.text);
    assert.match(created.json.token, /^kw_[A-Za-z0-9_-]{43}$/);
    assert.match(created.json.id, /^tok_[0-9a-f]{16}$/);
    assert.equal(created.json.hash, undefined);
    const status = await api.call('GET', '/v1/status', { token: created.json.token });
    assert.equal(status.status, 200, status.text);
    assert.equal(status.json.principal.role, 'reader');

    const list = await api.call('GET', '/v1/tokens', { token: api.adminToken });
    assert.equal(list.status, 200);
    assert.equal(list.json.tokens.length, 2);
    assert.ok(!list.text.includes(created.json.token), 'list never shows a token');
    assert.ok(list.json.tokens.every((x: Record<string, unknown>) => !('hash' in x)));

    const revoked = await api.call('DELETE', `/v1/tokens/${created.json.id}`, {
      token: api.adminToken,
      headers: { 'x-request-id': 'req-revoke-1' },
    });
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.headers['x-request-id'], 'req-revoke-1');
    assertProblem(await api.call('GET', '/v1/status', { token: created.json.token }), 401, 'AUTH_INVALID');
    assertProblem(
      await api.call('DELETE', '/v1/tokens/tok_0000000000000000', { token: api.adminToken }),
      404,
      'TOKEN_NOT_FOUND',
    );
    assertProblem(
      await api.call('DELETE', '/v1/tokens/bogus', { token: api.adminToken }),
      400,
      'API_BAD_REQUEST',
    );

    const audit = await api.call('GET', '/v1/audit?limit=10', { token: api.adminToken });
    assert.equal(audit.status, 200);
    const actions = audit.json.entries.map(
      (e: { action: string; subject: string; outcome: string }) => `${e.action} ${e.subject} ${e.outcome}`,
    );
    assert.ok(actions.includes(`token.create token:${created.json.id} success`), actions.join('\n'));
    assert.ok(actions.includes(`token.revoke token:${created.json.id} success`), actions.join('\n'));
    const revokeEntry = audit.json.entries.find((e: { action: string }) => e.action === 'token.revoke');
    assert.equal(revokeEntry.requestId, 'req-revoke-1');

    // No token appears in plaintext anywhere under the data dir.
    for (const file of await filesUnder(api.dataDir)) {
      const bytes = await readFile(file, 'utf8');
      assert.ok(
        !bytes.includes(created.json.token) && !bytes.includes(api.adminToken),
        `${file} holds a token in plaintext`,
      );
    }
  });

  test('a failing audit log refuses the change (fail closed)', async (t) => {
    const api = await startApi(t);
    await api.audit.close();
    const res = await api.call('POST', '/v1/tokens', { token: api.adminToken, body: { role: 'reader' } });
    assert.ok(res.status >= 500, res.text);
    assert.equal(api.tokens.list().length, 1, 'no token was created');
  });
});
