/**
 * --renew-client-cert over real HTTPS: a client certificate past two thirds of its life is replaced
 * (key 0600 first, then the certificate) through POST /v1/cas/{ca}/sign, authenticated by the old
 * certificate, and the new one authenticates from then on. The `service` role cannot call that route
 * today (it lacks cert.issue), which the second test pins down: renewal fails, pulls go on.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeClock } from '../../../src/core/clock.js';
import type { Logger } from '../../../src/core/logger.js';
import { silentLogger } from '../../../src/core/logger.js';
import { renewalDue, runAgent } from '../../../src/agent/index.js';
import { BundleClient } from '../../../src/agent/client.js';
import { isAppError } from '../../../src/core/errors.js';
import { tempDir } from '../../helpers/tmp.js';
import { createCertificate, startTestDaemon, type TestDaemon } from './daemon.js';

const HOUR = 3_600_000;
const SAN = 'spiffe://example.org/ns/web/agent';

function mtls(role: string, scopes: string[]) {
  return { api: { mtls: { identities: [{ match: 'spiffe://example.org/ns/web/*', role, scopes }] } } };
}

/** A 1-day client certificate issued 20 hours ago (past 2/3), written to files; the daemon then on real time. */
async function agedClientCert(
  t: Parameters<typeof startTestDaemon>[0],
  role: string,
  scopes: string[],
): Promise<{ d: TestDaemon; certFile: string; keyFile: string; cert: string }> {
  const d = await startTestDaemon(t, mtls(role, scopes), { clock: new FakeClock(Date.now() - 20 * HOUR) });
  await createCertificate(d, 'web');
  await createCertificate(d, 'web-agent', { sans: [SAN], profile: 'client', ttl: '1d' });
  const b = await d.call('GET', '/v1/certificates/web-agent/bundle?format=json', { token: d.adminToken });
  assert.equal(b.status, 200, b.text);
  await d.stop();
  await d.start();
  const dir = await tempDir(t, 'kw-renew-');
  const certFile = join(dir, 'agent.crt');
  const keyFile = join(dir, 'agent.key');
  await writeFile(certFile, b.json.fullchain, { mode: 0o644 });
  await writeFile(keyFile, b.json.privateKey, { mode: 0o600 });
  return { d, certFile, keyFile, cert: b.json.fullchain as string };
}

function recordingLogger(lines: string[]): Logger {
  const rec = (_o: unknown, msg?: string) => void lines.push(msg ?? '');
  return { ...silentLogger, info: rec, warn: rec, error: rec };
}

describe('agent --renew-client-cert', () => {
  test('past 2/3 of its life the certificate is renewed, written key-first, and used from then on', async (t) => {
    // The identity may sign within ca:default (role issuer); the bundle is pulled with a service token.
    const { d, certFile, keyFile, cert } = await agedClientCert(t, 'issuer', ['ca:default']);
    assert.ok(renewalDue(cert, Date.now()));
    const token = await d.token('service', ['cert:web']);
    const out = join(await tempDir(t, 'kw-renew-out-'), 'web');
    const lines: string[] = [];
    const options = {
      server: d.url,
      ca: d.ca,
      token,
      clientCert: cert,
      clientKey: await readFile(keyFile, 'utf8'),
      renewClientCert: { certFile, keyFile, ca: 'default', profile: 'client' },
      certificate: 'web',
      outDir: out,
      once: true,
    };
    const outcome = await runAgent(options, { logger: recordingLogger(lines) });
    assert.equal(outcome?.changed, true, 'the pull itself went on');
    assert.ok(lines.includes('renewed the client certificate'), lines.join('\n'));

    const renewed = await readFile(certFile, 'utf8');
    const oldLeaf = new X509Certificate(cert);
    const newLeaf = new X509Certificate(renewed);
    assert.notEqual(newLeaf.serialNumber, oldLeaf.serialNumber);
    assert.equal(newLeaf.subjectAltName, `URI:${SAN}`);
    assert.ok(Date.parse(newLeaf.validTo) > Date.parse(oldLeaf.validTo) + 19 * HOUR);
    assert.ok(!renewalDue(renewed, Date.now()));
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const newKey = await readFile(keyFile, 'utf8');
    assert.notEqual(newKey, options.clientKey);
    assert.ok(newLeaf.checkPrivateKey((await import('node:crypto')).createPrivateKey(newKey)));

    // The new pair authenticates as the same identity.
    const status = await d.call('GET', '/v1/status', { cert: renewed, key: newKey });
    assert.equal(status.status, 200, status.text);
    assert.equal(status.json.principal.identity, SAN);

    // The connection switches credentials: with the old certificate revoked, a client that held it is
    // refused (401) until it is handed the new pair, then it is the identity again (403: issuers may not
    // export keys, which shows it authenticated).
    const revoke = await d.call('POST', '/v1/cas/default/revoke', {
      token: d.adminToken,
      body: { serial: oldLeaf.serialNumber, reason: 'superseded' },
    });
    assert.equal(revoke.status, 200, revoke.text);
    const client = new BundleClient({
      server: d.url,
      ca: d.ca,
      clientCert: cert,
      clientKey: options.clientKey,
    });
    t.after(() => client.close());
    await assert.rejects(client.fetchBundle({ certificate: 'web', format: 'json' }), (err) => {
      return isAppError(err) && err.code === 'AUTH_CERT_INVALID';
    });
    client.setClientCredentials(renewed, newKey);
    await assert.rejects(client.fetchBundle({ certificate: 'web', format: 'json' }), (err) => {
      return isAppError(err) && err.code === 'ACCESS_DENIED';
    });

    // Not due any more: a second run leaves the files alone.
    const again = await runAgent(
      { ...options, clientCert: renewed, clientKey: newKey },
      { logger: silentLogger },
    );
    assert.equal(again?.changed, false);
    assert.equal(await readFile(certFile, 'utf8'), renewed);
  });

  test('a service identity may not call the sign route: renewal fails and is logged, the pull goes on', async (t) => {
    const { d, certFile, keyFile, cert } = await agedClientCert(t, 'service', ['cert:web']);
    const out = join(await tempDir(t, 'kw-renew-out-'), 'web');
    const lines: string[] = [];
    const outcome = await runAgent(
      {
        server: d.url,
        ca: d.ca,
        clientCert: cert,
        clientKey: await readFile(keyFile, 'utf8'),
        renewClientCert: { certFile, keyFile, ca: 'default', profile: 'client' },
        certificate: 'web',
        outDir: out,
        once: true,
      },
      { logger: recordingLogger(lines) },
    );
    assert.equal(outcome?.changed, true);
    assert.ok(
      lines.some((l) => /client certificate renewal failed/.test(l)),
      lines.join('\n'),
    );
    assert.equal(await readFile(certFile, 'utf8'), cert, 'the old certificate stays');
    assert.doesNotMatch(lines.join('\n'), /PRIVATE KEY/);
  });
});
