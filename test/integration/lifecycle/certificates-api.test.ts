import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startApi, type Harness, type HttpResult } from '../../helpers/api-harness.js';
import { requirePeer, runPeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';
import { CAS_COLLECTION, type CaRecord } from '../../../src/ca/authority.js';
import { CERTIFICATES_COLLECTION } from '../../../src/lifecycle/records.js';

function problem(res: HttpResult, status: number, code: string): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json.code, code, res.text);
}

async function rootPem(api: Harness): Promise<string> {
  return api.store.collection<CaRecord>(CAS_COLLECTION).get('root').certificatePem;
}

describe('managed certificates over the API, checked by openssl', () => {
  test('issue for several key types; the chain verifies; PEM, JSON and PKCS#12 bundles; ETag', async (t) => {
    const openssl = requirePeer(t, 'openssl');
    if (!openssl) return;
    const api = await startApi(t, { unsealed: true });
    const dir = await tempDir(t);
    await writeFile(join(dir, 'root.pem'), await rootPem(api));
    for (const key of ['ec-p256', 'ed25519', 'rsa-2048']) {
      const name = `web-${key}`;
      const res = await api.call('POST', '/v1/certificates', {
        token: api.adminToken,
        body: { name, sans: [`${name}.internal`, '10.0.0.5'], key, ttl: '30d' },
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json.version.version, 1);
      const bundle = await api.call('GET', `/v1/certificates/${name}/bundle?format=json`, {
        token: api.adminToken,
      });
      assert.equal(bundle.status, 200, bundle.text);
      assert.match(bundle.json.privateKey, /BEGIN PRIVATE KEY/);
      await writeFile(join(dir, 'chain.pem'), bundle.json.chain);
      await writeFile(join(dir, 'leaf.pem'), bundle.json.certificate);
      await writeFile(join(dir, 'key.pem'), bundle.json.privateKey);
      const verify = runPeer('openssl', [
        'verify',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'chain.pem'),
        join(dir, 'leaf.pem'),
      ]);
      assert.equal(verify.status, 0, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /leaf\.pem: OK/);
      const text = runPeer('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text']).stdout;
      assert.match(text, new RegExp(`DNS:${name}\\.internal, IP Address:10\\.0\\.0\\.5`));
      assert.match(text, /TLS Web Server Authentication/);
      // the key is the certificate's
      const pubCert = runPeer('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-pubkey']).stdout;
      const pubKey = runPeer('openssl', ['pkey', '-in', join(dir, 'key.pem'), '-pubout']).stdout;
      assert.equal(pubCert, pubKey);
    }

    const pem = await api.call('GET', '/v1/certificates/web-ec-p256/bundle?format=pem', {
      token: api.adminToken,
    });
    assert.equal(pem.headers['content-type'], 'application/pem-certificate-chain');
    assert.equal((pem.text.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    assert.match(pem.text, /BEGIN PRIVATE KEY/);
    const etag = String(pem.headers.etag);
    const again = await api.call('GET', '/v1/certificates/web-ec-p256/bundle?format=pem', {
      token: api.adminToken,
      headers: { 'if-none-match': etag },
    });
    assert.equal(again.status, 304);

    problem(
      await api.call('GET', '/v1/certificates/web-ec-p256/bundle?format=p12', { token: api.adminToken }),
      400,
      'API_BAD_REQUEST',
    );
    const p12 = await fetchBinary(api, '/v1/certificates/web-ec-p256/bundle?format=p12', {
      'x-keywright-p12-password': 'correct horse',
    });
    await writeFile(join(dir, 'b.p12'), p12);
    const opened = runPeer('openssl', [
      'pkcs12',
      '-in',
      join(dir, 'b.p12'),
      '-passin',
      'pass:correct horse',
      '-nodes',
      '-info',
    ]);
    assert.equal(opened.status, 0, opened.stderr);
    assert.match(opened.stderr + opened.stdout, /PBES2, PBKDF2, AES-256-CBC/);
    assert.match(opened.stdout, /BEGIN PRIVATE KEY/);
    assert.match(opened.stdout, /subject=CN = web-ec-p256\.internal/);

    const audit = await api.audit.query({ action: 'key.export', limit: 100 });
    assert.ok(audit.length >= 4, 'every key export is audited');
    assert.ok(audit.every((e) => e.subject.startsWith('cert:web-')));
  });

  test('a CSR is signed without keywright ever holding the key; names vetted by the profile', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const api = await startApi(t, { unsealed: true });
    const dir = await tempDir(t);
    const gen = runPeer('openssl', [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'k.pem'),
      '-out',
      join(dir, 'r.csr'),
      '-subj',
      '/CN=api.internal',
      '-addext',
      'subjectAltName=DNS:api.internal,DNS:api2.internal',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
    ]);
    assert.equal(gen.status, 0, gen.stderr);
    const csr = await readFile(join(dir, 'r.csr'), 'utf8');
    const res = await api.call('POST', '/v1/certificates', {
      token: api.adminToken,
      body: { name: 'api', csr },
    });
    assert.equal(res.status, 201, res.text);
    const bundle = await api.call('GET', '/v1/certificates/api/bundle?format=json', {
      token: api.adminToken,
    });
    assert.equal(bundle.status, 404, 'no key to export for a CSR-issued certificate');
    const pem = await api.call('GET', '/v1/certificates/api/bundle?format=pem', {
      token: (await api.tokens.create({ role: 'reader', createdBy: 't' })).token,
    });
    assert.equal(pem.status, 200);
    await writeFile(join(dir, 'leaf.pem'), pem.text.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
    const text = runPeer('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text']).stdout;
    assert.match(text, /DNS:api\.internal, DNS:api2\.internal/);
    assert.match(text, /CA:FALSE/, 'the CSR asked for CA:TRUE; extensions are never copied');
    const pubCert = runPeer('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-pubkey']).stdout;
    const pubKey = runPeer('openssl', ['pkey', '-in', join(dir, 'k.pem'), '-pubout']).stdout;
    assert.equal(pubCert, pubKey);
  });

  test('roles: a reader gets no key, a scoped service token gets only its own certificate', async (t) => {
    const api = await startApi(t, { unsealed: true });
    for (const name of ['web', 'db']) {
      assert.equal(
        (
          await api.call('POST', '/v1/certificates', {
            token: api.adminToken,
            body: { name, sans: [`${name}.internal`] },
          })
        ).status,
        201,
      );
    }
    const reader = (await api.tokens.create({ role: 'reader', createdBy: 't' })).token;
    const r = await api.call('GET', '/v1/certificates/web/bundle', { token: reader });
    assert.equal(r.status, 200);
    assert.equal(r.json.privateKey, undefined);
    problem(
      await api.call('GET', '/v1/certificates/web/bundle?format=p12', {
        token: reader,
        headers: { 'x-keywright-p12-password': '12345678' },
      }),
      403,
      'ACCESS_DENIED',
    );
    problem(await api.call('POST', '/v1/certificates/web/renew', { token: reader }), 403, 'ACCESS_DENIED');
    const svc = (await api.tokens.create({ role: 'service', scopes: ['cert:web'], createdBy: 't' })).token;
    const own = await api.call('GET', '/v1/certificates/web/bundle', { token: svc });
    assert.equal(own.status, 200, own.text);
    assert.match(own.json.privateKey, /PRIVATE KEY/);
    problem(await api.call('GET', '/v1/certificates/db/bundle', { token: svc }), 403, 'ACCESS_DENIED');
    const list = await api.call('GET', '/v1/certificates', { token: reader });
    assert.deepEqual(
      list.json.certificates.map((c: { name: string }) => c.name),
      ['db', 'web'],
    );
  });

  test('renew supersedes, revoke marks the version and the CA ledger; versions listed', async (t) => {
    const api = await startApi(t, { unsealed: true });
    const first = await api.call('POST', '/v1/certificates', {
      token: api.adminToken,
      body: { name: 'web', sans: ['web.internal'] },
    });
    const renewed = await api.call('POST', '/v1/certificates/web/renew', { token: api.adminToken });
    assert.equal(renewed.status, 200, renewed.text);
    assert.equal(renewed.json.version.version, 2);
    assert.notEqual(renewed.json.version.serial, first.json.version.serial);
    const revoked = await api.call('POST', '/v1/certificates/web/revoke', {
      token: api.adminToken,
      body: { reason: 'keyCompromise' },
    });
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.json.version.status, 'revoked');
    assert.equal(revoked.json.version.revocationReason, 'keyCompromise');
    const versions = await api.call('GET', '/v1/certificates/web/versions', { token: api.adminToken });
    assert.deepEqual(
      versions.json.versions.map((v: { version: number; status: string; keyState: string }) => [
        v.version,
        v.status,
        v.keyState,
      ]),
      [
        [2, 'revoked', 'enabled'],
        [1, 'superseded', 'disabled'],
      ],
    );
    const ca = api.unsealed!.internalCas.get('default')!;
    assert.equal(ca.lookup(renewed.json.version.serial)?.reason, 'keyCompromise');
    assert.equal(ca.lookup(first.json.version.serial)?.revokedAt, undefined);
    problem(
      await api.call('POST', '/v1/certificates/web/revoke', {
        token: api.adminToken,
        body: { serial: 'abcdef' },
      }),
      400,
      'API_BAD_REQUEST',
    );
  });

  test('bad input is refused with the field or rule named, and nothing is stored', async (t) => {
    const api = await startApi(t, { unsealed: true });
    const post = (body: unknown) => api.call('POST', '/v1/certificates', { token: api.adminToken, body });
    const wildcard = await post({ name: 'w', sans: ['*.svc.internal'] });
    problem(wildcard, 403, 'POLICY_VIOLATION');
    assert.match(wildcard.json.detail, /wildcard/);
    problem(await post({ name: 'long', sans: ['x.internal'], ttl: '500d' }), 403, 'POLICY_VIOLATION');
    problem(await post({ name: 'u', sans: ['x.internal'], issuer: 'ca:nope' }), 404, 'ISSUER_NOT_FOUND');
    problem(await post({ name: 'p', sans: ['x.internal'], profile: 'nope' }), 404, 'PROFILE_NOT_FOUND');
    problem(await post({ name: 'Bad Name', sans: ['x.internal'] }), 400, 'INVALID_ARGUMENT');
    problem(await post({ name: 'k', sans: ['x.internal'], key: 'rsa-1024' }), 400, 'API_BAD_REQUEST');
    problem(await post({ name: 'c', csr: 'not a csr' }), 400, 'PKI_PARSE');
    const badSig =
      '-----BEGIN CERTIFICATE REQUEST-----\nMIHRMHgCAQAwFjEUMBIGA1UEAwwLZXhhbXBsZS5jb20wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQ3\n-----END CERTIFICATE REQUEST-----\n';
    const bad = await post({ name: 'c2', csr: badSig });
    assert.ok(bad.status === 400, bad.text);
    const huge = await api.call('POST', '/v1/certificates', {
      token: api.adminToken,
      rawBody: JSON.stringify({ name: 'h', csr: 'A'.repeat(1024 * 1024) }),
    });
    problem(huge, 413, 'API_BODY_TOO_LARGE');
    assert.equal(api.store.collection(CERTIFICATES_COLLECTION).count(), 0, 'nothing stored');
    assert.equal((await post({ name: 'ok', sans: ['ok.internal'] })).status, 201);
    problem(await post({ name: 'ok', sans: ['ok.internal'] }), 409, 'CERT_EXISTS');
    problem(
      await api.call('GET', '/v1/certificates/missing', { token: api.adminToken }),
      404,
      'CERT_NOT_FOUND',
    );
  });
});

async function fetchBinary(api: Harness, path: string, headers: Record<string, string>): Promise<Buffer> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, api.url),
      { headers: { authorization: `Bearer ${api.adminToken}`, ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(Buffer.concat(chunks))
            : reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString()}`)),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}
