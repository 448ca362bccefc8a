import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApi } from '../../helpers/api-harness.js';

test('/metrics: Prometheus text with certificate expiry, renewal, readiness and issuance counters; token needed', async (t) => {
  const api = await startApi(t, { unsealed: true });
  assert.equal(
    (
      await api.call('POST', '/v1/certificates', {
        token: api.adminToken,
        body: { name: 'web', sans: ['web.internal'], ttl: '10d' },
      })
    ).status,
    201,
  );
  const refused = await api.call('POST', '/v1/certificates', {
    token: api.adminToken,
    body: { name: 'bad', sans: ['*.x.internal'] },
  });
  assert.equal(refused.status, 403);
  assert.equal((await api.call('GET', '/metrics')).status, 401);
  const res = await api.call('GET', '/metrics', { token: api.adminToken });
  assert.equal(res.status, 200, res.text);
  assert.match(String(res.headers['content-type']), /^text\/plain/);
  const expiry =
    /keywright_certificate_expiration_timestamp_seconds\{name="web",issuer="ca:default"\} (\d+)/.exec(
      res.text,
    );
  assert.ok(expiry, res.text.slice(0, 2000));
  const inTenDays = Date.now() / 1000 + 10 * 86400;
  assert.ok(Math.abs(Number(expiry[1]) - inTenDays) < 120, 'expiry is the notAfter of the current version');
  assert.match(
    res.text,
    /keywright_certificate_renewal_timestamp_seconds\{name="web",issuer="ca:default"\} \d+/,
  );
  assert.match(
    res.text,
    /keywright_certificate_ready_status\{name="web",issuer="ca:default",condition="True"\} 1/,
  );
  assert.match(res.text, /keywright_issuances_total\{issuer="ca:default",outcome="success"\} 1/);
  assert.match(res.text, /keywright_issuances_total\{issuer="ca:default",outcome="POLICY_VIOLATION"\} 1/);
  assert.match(res.text, /keywright_store_flushes_total \d+/);
  assert.match(res.text, /keywright_process_resident_memory_bytes \d+/);
  const reader = (await api.tokens.create({ role: 'reader', createdBy: 't' })).token;
  assert.equal((await api.call('GET', '/metrics', { token: reader })).status, 200);
});
