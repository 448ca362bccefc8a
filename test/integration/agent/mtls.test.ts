/**
 * mTLS over real HTTPS: a client certificate from the daemon's own CA authenticates a service whose SAN
 * is mapped in api.mtls.identities; expired, revoked, foreign and server-only certificates are refused
 * (401), an unmapped one is denied (403), and tokens keep working beside it.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import { createCertificate, startTestDaemon, type TestDaemon } from './daemon.js';
import { runAgent } from '../../../src/agent/index.js';
import { silentLogger } from '../../../src/core/logger.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../../helpers/tmp.js';

const MTLS = {
  api: {
    mtls: {
      identities: [
        { match: 'spiffe://example.org/ns/web/*', role: 'service', scopes: ['cert:web'] },
        { match: 'reader.internal', role: 'reader' },
      ],
    },
  },
};

async function clientCertificate(
  d: TestDaemon,
  name: string,
  sans: string[],
  extra: Record<string, unknown> = {},
): Promise<{ cert: string; key: string }> {
  await createCertificate(d, name, { sans, profile: 'client', ttl: '1d', ...extra });
  const b = await d.call('GET', `/v1/certificates/${name}/bundle?format=json`, { token: d.adminToken });
  assert.equal(b.status, 200, b.text);
  return { cert: b.json.fullchain, key: b.json.privateKey };
}

describe('mTLS', () => {
  test('accepted, revoked, unmapped, server-only, and the audit actor', async (t) => {
    const d = await startTestDaemon(t, MTLS);
    await createCertificate(d, 'web');
    await createCertificate(d, 'db');
    const svc = await clientCertificate(d, 'web-agent', ['spiffe://example.org/ns/web/agent']);

    const ok = await d.call('GET', '/v1/certificates/web/bundle', svc);
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.json.privateKey, /PRIVATE KEY/);
    const other = await d.call('GET', '/v1/certificates/db/bundle', svc);
    assert.equal(other.status, 403, 'scopes from the identity rule bind it');
    const status = await d.call('GET', '/v1/status', svc);
    assert.equal(status.status, 403, 'role service may not read status');

    const audit = await d.call('GET', '/v1/audit?action=key.export', { token: d.adminToken });
    const entry = (audit.json.entries as Array<{ actor: string; subject: string }>).find(
      (e) => e.subject === 'cert:web',
    );
    assert.equal(entry?.actor, 'mtls:spiffe://example.org/ns/web/agent');

    const reader = await clientCertificate(d, 'reader-id', ['reader.internal']);
    const asReader = await d.call('GET', '/v1/status', reader);
    assert.equal(asReader.status, 200, asReader.text);
    assert.equal(asReader.json.principal.identity, 'reader.internal');
    assert.equal(asReader.json.principal.role, 'reader');

    const stranger = await clientCertificate(d, 'stranger', ['spiffe://example.org/ns/db/x']);
    const unmapped = await d.call('GET', '/v1/certificates/web/bundle', stranger);
    assert.equal(unmapped.status, 403);
    assert.equal(unmapped.json.code, 'ACCESS_DENIED');

    // A serverAuth-only certificate from the same CA is no client credential.
    await createCertificate(d, 'server-only', { sans: ['reader.internal'] });
    const so = await d.call('GET', '/v1/certificates/server-only/bundle', { token: d.adminToken });
    const serverOnly = await d.call('GET', '/v1/status', {
      cert: so.json.fullchain,
      key: so.json.privateKey,
    });
    assert.equal(serverOnly.status, 401);
    assert.equal(serverOnly.json.code, 'AUTH_CERT_INVALID');
    assert.equal(serverOnly.json.details.reason, 'INVALID_PURPOSE');

    const revoke = await d.call('POST', '/v1/certificates/web-agent/revoke', {
      token: d.adminToken,
      body: { reason: 'keyCompromise' },
    });
    assert.equal(revoke.status, 200, revoke.text);
    const revoked = await d.call('GET', '/v1/certificates/web/bundle', svc);
    assert.equal(revoked.status, 401);
    assert.equal(revoked.json.code, 'AUTH_CERT_INVALID');
    assert.equal(revoked.json.details.reason, 'revoked');
    assert.match(String(revoked.headers['www-authenticate']), /Bearer/);

    // A token still wins over a refused certificate, and no credential at all is 401.
    const withToken = await d.call('GET', '/v1/status', { ...svc, token: d.adminToken });
    assert.equal(withToken.status, 200);
    const none = await d.call('GET', '/v1/status');
    assert.equal(none.status, 401);
    assert.equal(none.json.code, 'AUTH_REQUIRED');
  });

  test('a certificate from another keywright (foreign CA) is refused', async (t) => {
    const d = await startTestDaemon(t, MTLS);
    const elsewhere = await startTestDaemon(t, MTLS);
    await createCertificate(d, 'web');
    const foreign = await clientCertificate(elsewhere, 'web-agent', ['spiffe://example.org/ns/web/agent']);
    const r = await d.call('GET', '/v1/certificates/web/bundle', foreign);
    assert.equal(r.status, 401);
    assert.equal(r.json.code, 'AUTH_CERT_INVALID');
    assert.equal(r.json.details.reason, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    assert.doesNotMatch(r.text, /PRIVATE KEY/);
  });

  test('an expired client certificate is refused', async (t) => {
    // Issue while the daemon's clock says three days ago, with a one-day life; then restart on real time.
    const past = new FakeClock(Date.now() - 3 * 86_400_000);
    const d = await startTestDaemon(t, MTLS, { clock: past });
    await createCertificate(d, 'web');
    const old = await clientCertificate(d, 'web-agent', ['spiffe://example.org/ns/web/agent']);
    const atOnce = await d.call('GET', '/v1/certificates/web/bundle', old);
    assert.equal(atOnce.status, 401, 'OpenSSL checks validity against real time');
    assert.equal(atOnce.json.details.reason, 'CERT_HAS_EXPIRED');
    await d.stop();
    await d.start();
    const r = await d.call('GET', '/v1/certificates/web/bundle', old);
    assert.equal(r.status, 401);
    assert.equal(r.json.code, 'AUTH_CERT_INVALID');
  });

  test('the agent authenticates with --client-cert/--client-key', async (t) => {
    const d = await startTestDaemon(t, MTLS);
    await createCertificate(d, 'web');
    const svc = await clientCertificate(d, 'web-agent', ['spiffe://example.org/ns/web/agent']);
    const out = join(await tempDir(t, 'kw-mtls-agent-'), 'web');
    const outcome = await runAgent(
      {
        server: d.url,
        ca: d.ca,
        clientCert: svc.cert,
        clientKey: svc.key,
        certificate: 'web',
        outDir: out,
        once: true,
      },
      { logger: silentLogger },
    );
    assert.equal(outcome?.changed, true);
    assert.match(await readFile(join(out, 'privkey.pem'), 'utf8'), /PRIVATE KEY/);
  });
});
