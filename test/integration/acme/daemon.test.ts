/**
 * The whole path in a real daemon: an account registered over the API, a managed certificate with
 * issuer acme:<account> issued through lifecycle/ by pebble over http-01 (the daemon's own responder on
 * acme.http01.listen), renewed with a new serial, and revoked with `cert revoke` through the account.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startPebble } from '../../helpers/pebble.js';
import { tempDir } from '../../helpers/tmp.js';
import { startTestDaemon } from '../agent/daemon.js';
import { randomName, assertChainVerifies } from './fixture.js';
import { parseCertificate } from '../../../src/pki/certificate.js';

describe('ACME in the daemon', () => {
  test('acme:<account> as a managed certificate issuer: issue, renew, revoke', async (t) => {
    const pebble = await startPebble(t);
    if (!pebble) return;
    const dir = await tempDir(t);
    const daemon = await startTestDaemon(t, { acme: { http01: { listen: `127.0.0.1:${pebble.httpPort}` } } });
    const token = daemon.adminToken;
    const reg = await daemon.call('POST', '/v1/acme/accounts', {
      token,
      body: { name: 'pebble', directory: pebble.directoryUrl, agreeTos: true, caPem: pebble.tlsCaPem },
    });
    assert.equal(reg.status, 201, reg.text);
    const name = randomName('daemon');
    const created = await daemon.call('POST', '/v1/certificates', {
      token,
      body: { name: 'web', sans: [name], issuer: 'acme:pebble' },
    });
    assert.ok(created.status === 201 || created.status === 200, created.text);
    const bundle = await daemon.call('GET', '/v1/certificates/web/bundle?format=json', { token });
    assert.equal(bundle.status, 200, bundle.text);
    const first = bundle.json as { certificate: string; chain: string; serial: string };
    const leaf = parseCertificate(first.certificate);
    assert.equal(first.serial, leaf.serialHex);
    assert.equal(
      first.chain,
      pebble.intermediatePem.trim() + '\n',
      'the full chain from pebble is stored and served',
    );
    assertChainVerifies(
      pebble,
      { certificatePem: first.certificate, chainPem: [first.chain], serialHex: leaf.serialHex } as never,
      dir,
    );

    const renewed = await daemon.call('POST', '/v1/certificates/web/renew', { token, body: {} });
    assert.equal(renewed.status, 200, renewed.text);
    const versions = await daemon.call('GET', '/v1/certificates/web/versions', { token });
    const serials = (versions.json.versions as Array<{ serial: string }>).map((v) => v.serial);
    assert.equal(new Set(serials).size, 2, 'two versions, two serials');

    const revoked = await daemon.call('POST', '/v1/certificates/web/revoke', {
      token,
      body: { reason: 'superseded', serial: leaf.serialHex },
    });
    assert.equal(revoked.status, 200, revoked.text);
    const status = await pebble.certStatus(leaf.serialHex);
    assert.equal(status.Status, 'Revoked');
    assert.equal(status.Reason, 4);
  });
});
