/**
 * CRL and OCSP as the daemon serves them, over real HTTP, read by openssl: a certificate revoked through
 * the certificates API is rejected by `openssl verify -crl_check` with the CRL fetched from the plain
 * listener, `openssl ocsp -url` reports good → revoked (with reason) and unknown for a foreign serial,
 * and the CRL number only increases. openssl ocsp exits 0 whatever the status, so its text is read.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startApi, type Harness } from '../../helpers/api-harness.js';
import { requirePeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';
import { buildOcspRequest, parseOcspResponse } from '../../../src/pki/ocsp.js';
import { parseCrl } from '../../../src/pki/crl.js';
import { parseCertificate } from '../../../src/pki/certificate.js';
import { caPem, openssl, raw, startRevocationListener, writeCaFiles } from './helpers.js';

async function issue(api: Harness, dir: string, name: string): Promise<{ file: string; serial: string }> {
  const res = await api.call('POST', '/v1/certificates', {
    token: api.adminToken,
    body: { name, sans: [`${name}.internal`] },
  });
  assert.equal(res.status, 201, res.text);
  const bundle = await api.call('GET', `/v1/certificates/${name}/bundle?format=json`, {
    token: api.adminToken,
  });
  const file = join(dir, `${name}.pem`);
  await writeFile(file, bundle.json.certificate);
  return { file, serial: res.json.version.serial };
}

async function crlNumber(dir: string, der: Buffer, label: string): Promise<bigint> {
  await writeFile(join(dir, `${label}.der`), der);
  const pem = await openssl([
    'crl',
    '-inform',
    'DER',
    '-in',
    join(dir, `${label}.der`),
    '-out',
    join(dir, `${label}.pem`),
  ]);
  assert.equal(pem.status, 0, pem.stderr);
  const text = await openssl(['crl', '-in', join(dir, `${label}.pem`), '-noout', '-text']);
  const m = /X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text.stdout);
  assert.ok(m, text.stdout);
  return BigInt(m[1]!);
}

describe('CRL and OCSP served by the daemon, checked by openssl', () => {
  test('revoke through the API: the served CRL and OCSP say so; unknown serials are unknown', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const api = await startApi(t, { unsealed: true });
    const http = await startRevocationListener(t, api);
    const dir = await tempDir(t);
    await writeCaFiles(api, dir);
    const good = await issue(api, dir, 'good');
    const bad = await issue(api, dir, 'bad');

    // served on the API listener too, without a token
    const first = await raw(api.url, 'GET', '/crl/default.crl');
    assert.equal(first.status, 200, first.body.toString());
    assert.equal(first.headers['content-type'], 'application/pkix-crl');
    const n1 = await crlNumber(dir, first.body, 'crl1');
    assert.equal(parseCrl(first.body).entries.length, 0);

    const ocsp = (args: string[]) =>
      openssl([
        'ocsp',
        '-issuer',
        join(dir, 'inter.pem'),
        ...args,
        '-url',
        `${http}/ocsp/default`,
        '-CAfile',
        join(dir, 'root.pem'),
      ]);
    const beforeGood = await ocsp(['-cert', bad.file]);
    assert.equal(beforeGood.status, 0, beforeGood.stderr);
    assert.match(beforeGood.stderr, /Response verify OK/);
    assert.match(beforeGood.stdout, /bad\.pem: good/);

    const revoked = await api.call('POST', '/v1/certificates/bad/revoke', {
      token: api.adminToken,
      body: { reason: 'keyCompromise' },
    });
    assert.equal(revoked.status, 200, revoked.text);

    // the plain-HTTP listener serves the rebuilt CRL
    const second = await raw(http, 'GET', '/crl/default.crl');
    assert.equal(second.status, 200);
    const n2 = await crlNumber(dir, second.body, 'crl2');
    assert.ok(n2 > n1, `CRL number increases: ${n1} → ${n2}`);
    const crlText = await openssl(['crl', '-in', join(dir, 'crl2.pem'), '-noout', '-text']);
    assert.match(crlText.stdout, new RegExp(`Serial Number: ${bad.serial.toUpperCase()}`));
    assert.match(crlText.stdout, /Key Compromise/);

    const verify = (file: string) =>
      openssl([
        'verify',
        '-crl_check',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'inter.pem'),
        '-CRLfile',
        join(dir, 'crl2.pem'),
        file,
      ]);
    const rejected = await verify(bad.file);
    assert.notEqual(rejected.status, 0, 'a revoked certificate is rejected');
    assert.match(rejected.stdout + rejected.stderr, /certificate revoked/);
    const accepted = await verify(good.file);
    assert.equal(accepted.status, 0, accepted.stdout + accepted.stderr);
    assert.match(accepted.stdout, /good\.pem: OK/);

    const afterRevoked = await ocsp(['-cert', bad.file]);
    assert.equal(afterRevoked.status, 0, 'openssl ocsp exits 0 even for revoked');
    assert.match(afterRevoked.stderr, /Response verify OK/);
    assert.match(afterRevoked.stdout, /bad\.pem: revoked/);
    assert.match(afterRevoked.stdout, /Reason: keyCompromise/);
    assert.match(afterRevoked.stdout, /Revocation Time: /);
    const stillGood = await ocsp(['-cert', good.file]);
    assert.match(stillGood.stdout, /good\.pem: good/);
    const foreign = await ocsp(['-serial', '0x1234567890abcdef1234']);
    assert.match(foreign.stderr, /Response verify OK/);
    assert.match(foreign.stdout, /0x1234567890abcdef1234: unknown/);

    // the GET form (RFC 6960 Appendix A.1), URL-encoded base64 with a nonce
    const inter = parseCertificate(caPem(api, 'default'));
    const request = buildOcspRequest({
      issuer: inter,
      serials: [bad.serial],
      nonce: Buffer.from('0123456789abcdef'),
    });
    const viaGet = await raw(http, 'GET', `/ocsp/default/${encodeURIComponent(request.toString('base64'))}`);
    assert.equal(viaGet.status, 200);
    assert.equal(viaGet.headers['content-type'], 'application/ocsp-response');
    const parsed = parseOcspResponse(viaGet.body);
    assert.equal(parsed.status, 'successful');
    assert.equal(parsed.basic?.responses[0]?.certStatus.status, 'revoked');
    assert.ok(parsed.basic?.nonce?.includes(Buffer.from('0123456789abcdef')), 'the nonce is echoed');

    // a CA the responder does not serve: RFC 6960 unauthorized, read by openssl
    const other = await openssl([
      'ocsp',
      '-issuer',
      join(dir, 'inter.pem'),
      '-cert',
      good.file,
      '-url',
      `${http}/ocsp/nope`,
    ]);
    assert.match(other.stdout + other.stderr, /unauthorized/);
    // garbage: malformedRequest
    const garbage = await raw(http, 'POST', '/ocsp/default', {
      body: Buffer.from('not an OCSP request'),
      headers: { 'content-type': 'application/ocsp-request' },
    });
    assert.equal(parseOcspResponse(garbage.body).status, 'malformedRequest');

    // the caIssuers target is the CA certificate in DER
    const crt = await raw(http, 'GET', '/ca/default.crt');
    assert.equal(crt.headers['content-type'], 'application/pkix-cert');
    assert.deepEqual(crt.body, inter.der);
    assert.equal((await raw(http, 'GET', '/crl/nope.crl')).status, 404);
    assert.equal((await raw(http, 'GET', '/crl/default.pem')).status, 404);
    assert.equal(
      (await raw(http, 'GET', '/v1/certificates')).status,
      404,
      'the plain listener serves nothing else',
    );

    // a sealed daemon cannot sign: 503 DAEMON_SEALED on both listeners
    api.sealed.value = true;
    for (const base of [api.url, http]) {
      const sealed = await raw(base, 'GET', '/crl/default.crl');
      assert.equal(sealed.status, 503);
      assert.equal(JSON.parse(sealed.body.toString()).code, 'DAEMON_SEALED');
    }
  });

  test('revoking by serial at the CA: unknown serials are refused, managed versions are marked', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const api = await startApi(t, { unsealed: true });
    const dir = await tempDir(t);
    const managed = await issue(api, dir, 'web');
    const unknown = await api.call('POST', '/v1/cas/default/revoke', {
      token: api.adminToken,
      body: { serial: 'abcdef0123456789', reason: 'keyCompromise' },
    });
    assert.equal(unknown.status, 404, unknown.text);
    assert.equal(unknown.json.code, 'CERT_NOT_FOUND');
    for (const body of [{ serial: 'xyz' }, { serial: managed.serial, reason: 'bogus' }, {}]) {
      const bad = await api.call('POST', '/v1/cas/default/revoke', { token: api.adminToken, body });
      assert.equal(bad.status, 400, bad.text);
    }
    const wrongCa = await api.call('POST', '/v1/cas/root/revoke', {
      token: api.adminToken,
      body: { serial: managed.serial },
    });
    assert.equal(wrongCa.status, 404, 'root never issued it');

    const ok = await api.call('POST', '/v1/cas/default/revoke', {
      token: api.adminToken,
      body: { serial: managed.serial, reason: 'superseded' },
    });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.certificate, 'web', ok.text);
    assert.equal(ok.json.reason, 'superseded');
    const versions = await api.call('GET', '/v1/certificates/web/versions', { token: api.adminToken });
    assert.equal(versions.json.versions[0].status, 'revoked', 'the managed version is marked revoked');

    const reader = (await api.tokens.create({ role: 'reader', createdBy: 't' })).token;
    const denied = await api.call('POST', '/v1/cas/default/revoke', {
      token: reader,
      body: { serial: managed.serial },
    });
    assert.equal(denied.status, 403);
    const audit = await api.audit.query({ action: 'cert.revoke', limit: 10 });
    assert.equal(audit.length, 1, 'one audited revocation');
    const crl = parseCrl((await raw(api.url, 'GET', '/crl/default.crl')).body);
    assert.deepEqual(
      crl.entries.map((e) => [e.serialHex, e.reason]),
      [[managed.serial, 'superseded']],
    );
    assert.ok(await readFile(join(dir, 'web.pem')));
  });
});
