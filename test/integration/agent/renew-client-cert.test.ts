/**
 * --renew-client-cert over real HTTPS: a client certificate past two thirds of its life is replaced
 * (key 0600 first, then the certificate) through POST /v1/mtls/renew, authenticated by the old
 * certificate alone, and the new one authenticates from then on. The route signs only the presenting
 * certificate's own names, and only for a client certificate (never a token).
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
import { generateKeyPair } from '../../../src/keys/generate.js';
import { buildCsr, csrToPem } from '../../../src/pki/csr.js';
import { parseSanText } from '../../../src/pki/general-name.js';
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
    // A plain service identity: it pulls its bundle and renews its own certificate, both over mTLS alone.
    const { d, certFile, keyFile, cert } = await agedClientCert(t, 'service', ['cert:web']);
    assert.ok(renewalDue(cert, Date.now()));
    const out = join(await tempDir(t, 'kw-renew-out-'), 'web');
    const lines: string[] = [];
    const options = {
      server: d.url,
      ca: d.ca,
      clientCert: cert,
      clientKey: await readFile(keyFile, 'utf8'),
      renewClientCert: { certFile, keyFile },
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
    const pulled = await d.call('GET', '/v1/certificates/web/bundle?format=json', {
      cert: renewed,
      key: newKey,
    });
    assert.equal(pulled.status, 200, pulled.text);
    assert.match(pulled.json.privateKey, /PRIVATE KEY/);

    // The connection switches credentials: with the old certificate revoked, a client that held it is
    // refused (401) until it is handed the new pair, then it pulls its bundle again.
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
    await client.fetchBundle({ certificate: 'web', format: 'json' });
    const audit = await d.call('GET', '/v1/audit?action=ca.sign&limit=5', { token: d.adminToken });
    assert.ok(
      audit.json.entries.some((e: { actor: string }) => e.actor === `mtls:${SAN}`),
      audit.text,
    );

    // Not due any more: a second run leaves the files alone.
    const again = await runAgent(
      { ...options, clientCert: renewed, clientKey: newKey },
      { logger: silentLogger },
    );
    assert.equal(again?.changed, false);
    assert.equal(await readFile(certFile, 'utf8'), renewed);
  });

  test("the renew route signs only the presenting certificate's own names, and never for a token", async (t) => {
    const { d, keyFile, cert } = await agedClientCert(t, 'service', ['cert:web']);
    const clientKey = await readFile(keyFile, 'utf8');
    const { privateKey } = await generateKeyPair('ec-p256');
    const other = csrToPem(
      buildCsr({ privateKey, sans: [parseSanText('spiffe://example.org/ns/db/agent')] }),
    );
    const refused = await d.call('POST', '/v1/mtls/renew', { cert, key: clientKey, body: { csr: other } });
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.json.code, 'POLICY_VIOLATION');
    const own = csrToPem(buildCsr({ privateKey, sans: [parseSanText(SAN)] }));
    const token = await d.token('admin');
    const byToken = await d.call('POST', '/v1/mtls/renew', { token, body: { csr: own } });
    assert.equal(byToken.status, 403, byToken.text);
    const ok = await d.call('POST', '/v1/mtls/renew', { cert, key: clientKey, body: { csr: own } });
    assert.equal(ok.status, 201, ok.text);
    assert.match(ok.json.certificate, /BEGIN CERTIFICATE/);
    assert.deepEqual(ok.json.names, [`URI:${SAN}`]);
  });
});
