/**
 * CA management over the real API, with openssl on every answer: list/show/chain, create (roots and
 * intermediates of every key type, name constraints honoured at issuance), import of an openssl-made CA
 * (a mismatched key stores nothing), CSR signing under built-in and configured profiles, export-key
 * (opens with openssl pkey -passin) and disable-key (the intermediate keeps issuing). Bad input for
 * each route is a clear 4xx with nothing stored.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startApi, type Harness, type HttpResult } from '../../helpers/api-harness.js';
import { requirePeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';
import { CAS_COLLECTION, type CaRecord } from '../../../src/ca/authority.js';
import { LEDGER_COLLECTION, type LedgerRecord } from '../../../src/ca/ledger.js';
import { CERTIFICATES_COLLECTION } from '../../../src/lifecycle/records.js';
import { parseCrl } from '../../../src/pki/crl.js';
import { caPem, openssl, opensslCsr, raw, writeCaFiles } from './helpers.js';

function problem(res: HttpResult, status: number, code: string): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json.code, code, res.text);
}

const casCount = (api: Harness) => api.store.collection<CaRecord>(CAS_COLLECTION).count();
const sealedCaBlobs = (api: Harness) => api.store.listBlobs('sealed/ca/');

async function verifyChain(dir: string, rootPem: string, chainPem: string, leafPem: string) {
  await writeFile(join(dir, 'v-root.pem'), rootPem);
  await writeFile(join(dir, 'v-chain.pem'), chainPem || rootPem);
  await writeFile(join(dir, 'v-leaf.pem'), leafPem);
  return openssl([
    'verify',
    '-CAfile',
    join(dir, 'v-root.pem'),
    '-untrusted',
    join(dir, 'v-chain.pem'),
    join(dir, 'v-leaf.pem'),
  ]);
}

describe('CA management over the API, checked by openssl', () => {
  test('list, show and chain; the chain verifies', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const api = await startApi(t, { unsealed: true });
    const dir = await tempDir(t);
    const list = await api.call('GET', '/v1/cas', { token: api.adminToken });
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(
      list.json.cas.map((c: { name: string; kind: string; keyState: string }) => [
        c.name,
        c.kind,
        c.keyState,
      ]),
      [
        ['default', 'intermediate', 'online'],
        ['root', 'root', 'online'],
      ],
    );
    const show = await api.call('GET', '/v1/cas/default', { token: api.adminToken });
    assert.equal(show.json.ca.parent, 'root');
    assert.equal(show.json.ca.pathLen, 0);
    assert.deepEqual(show.json.ca.profiles, ['client', 'server', 'server-client']);
    const chain = await api.call('GET', '/v1/cas/default/chain', { token: api.adminToken });
    assert.equal(chain.headers['content-type'], 'application/pem-certificate-chain');
    assert.equal((chain.text.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    await writeFile(join(dir, 'chain.pem'), chain.text);
    await writeCaFiles(api, dir);
    const v = await openssl(['verify', '-CAfile', join(dir, 'root.pem'), join(dir, 'inter.pem')]);
    assert.equal(v.status, 0, v.stderr);
    const text = await openssl(['x509', '-in', join(dir, 'chain.pem'), '-noout', '-subject']);
    assert.match(text.stdout, /keywright default intermediate CA/);

    problem(await api.call('GET', '/v1/cas/nope', { token: api.adminToken }), 404, 'CA_NOT_FOUND');
    problem(await api.call('GET', '/v1/cas/Bad%20Name', { token: api.adminToken }), 400, 'API_BAD_REQUEST');
    problem(await api.call('GET', '/v1/cas'), 401, 'AUTH_REQUIRED');
    const scoped = (await api.tokens.create({ role: 'reader', scopes: ['ca:root'], createdBy: 't' })).token;
    const seen = await api.call('GET', '/v1/cas', { token: scoped });
    assert.deepEqual(
      seen.json.cas.map((c: { name: string }) => c.name),
      ['root'],
    );
    problem(await api.call('GET', '/v1/cas/default', { token: scoped }), 403, 'ACCESS_DENIED');
  });

  test('create roots and intermediates of each key type; name constraints honoured at issuance', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const api = await startApi(t, { unsealed: true });
    const dir = await tempDir(t);
    const create = (body: unknown) => api.call('POST', '/v1/cas', { token: api.adminToken, body });

    const root2 = await create({ name: 'lab-root', key: 'rsa-2048', ttl: '3650d', pathLen: 1 });
    assert.equal(root2.status, 201, root2.text);
    assert.equal(root2.json.ca.kind, 'root');
    assert.equal(root2.json.ca.keyType, 'rsa-2048');
    for (const key of ['ec-p384', 'ed25519', 'rsa-2048']) {
      const res = await create({ name: `lab-${key}`, parent: 'lab-root', key, ttl: '365d' });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json.ca.parent, 'lab-root');
      // registered as an issuer at once: a managed certificate from it verifies with openssl
      const cert = await api.call('POST', '/v1/certificates', {
        token: api.adminToken,
        body: { name: `w-${key}`, issuer: `ca:lab-${key}`, sans: ['w.lab.internal'] },
      });
      assert.equal(cert.status, 201, cert.text);
      const bundle = await api.call('GET', `/v1/certificates/w-${key}/bundle?format=json`, {
        token: api.adminToken,
      });
      const v = await verifyChain(dir, caPem(api, 'lab-root'), bundle.json.chain, bundle.json.certificate);
      assert.equal(v.status, 0, `${key}: ${v.stdout}${v.stderr}`);
    }

    const restricted = await create({
      name: 'restricted',
      parent: 'root',
      permitted: ['DNS:svc.internal', 'IP:10.0.0.0/8'],
      excluded: ['DNS:secret.svc.internal'],
    });
    assert.equal(restricted.status, 201, restricted.text);
    assert.deepEqual(restricted.json.ca.nameConstraints, {
      permitted: ['DNS:svc.internal', 'IP:10.0.0.0/8'],
      excluded: ['DNS:secret.svc.internal'],
    });
    await writeFile(join(dir, 'restricted.pem'), caPem(api, 'restricted'));
    const nc = await openssl(['x509', '-in', join(dir, 'restricted.pem'), '-noout', '-text']);
    assert.match(nc.stdout, /X509v3 Name Constraints: critical/);
    assert.match(nc.stdout, /Permitted:\s+DNS:svc\.internal\s+IP:10\.0\.0\.0\/255\.0\.0\.0/);

    const inside = await api.call('POST', '/v1/certificates', {
      token: api.adminToken,
      body: { name: 'inside', issuer: 'ca:restricted', sans: ['api.svc.internal', '10.1.2.3'] },
    });
    assert.equal(inside.status, 201, inside.text);
    const bundle = await api.call('GET', '/v1/certificates/inside/bundle?format=json', {
      token: api.adminToken,
    });
    const ok = await verifyChain(dir, caPem(api, 'root'), bundle.json.chain, bundle.json.certificate);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    for (const san of ['web.example.com', 'db.secret.svc.internal', '192.168.1.1']) {
      const outside = await api.call('POST', '/v1/certificates', {
        token: api.adminToken,
        body: { name: 'outside', issuer: 'ca:restricted', sans: [san] },
      });
      problem(outside, 400, 'LINT_FAILED');
      assert.equal(outside.json.details.rule, 'name_constraints', outside.text);
      assert.match(outside.json.detail, /name_constraints/);
    }
    assert.equal(
      api.store.collection(CERTIFICATES_COLLECTION).find('outside'),
      undefined,
      'a refused issuance stores nothing',
    );

    // bad input: each a clear 4xx, nothing stored
    const before = casCount(api);
    const blobsBefore = await sealedCaBlobs(api);
    problem(await create({ name: 'x', parent: 'nope' }), 404, 'CA_NOT_FOUND');
    problem(await create({ name: 'restricted', parent: 'root' }), 409, 'CA_EXISTS');
    problem(await create({ name: 'Bad Name' }), 400, 'API_BAD_REQUEST');
    problem(await create({ name: 'x', key: 'dsa-1024' }), 400, 'API_BAD_REQUEST');
    problem(await create({ name: 'x', ttl: 'soon' }), 400, 'API_BAD_REQUEST');
    problem(await create({ name: 'x', ttl: '1s' }), 400, 'INVALID_ARGUMENT');
    problem(
      await create({ name: 'x', parent: 'root', permitted: ['IP:banana/99'] }),
      400,
      'INVALID_ARGUMENT',
    );
    problem(
      await create({ name: 'x', parent: 'root', permitted: ['DNS:bad name'] }),
      400,
      'INVALID_ARGUMENT',
    );
    problem(await create({ name: 'x', permitted: ['DNS:svc.internal'] }), 400, 'INVALID_ARGUMENT');
    problem(await create({ name: 'x', unknown: 1 }), 400, 'API_BAD_REQUEST');
    // the default intermediate has pathLen 0: no CA below it (lint refuses, nothing signed)
    const deep = await create({ name: 'x', parent: 'default' });
    problem(deep, 400, 'LINT_FAILED');
    assert.equal(deep.json.details.rule, 'issuer_path_length');
    const operator = (await api.tokens.create({ role: 'issuer', createdBy: 't' })).token;
    problem(
      await api.call('POST', '/v1/cas', { token: operator, body: { name: 'x' } }),
      403,
      'ACCESS_DENIED',
    );
    assert.equal(casCount(api), before, 'no CA stored');
    assert.deepEqual(await sealedCaBlobs(api), blobsBefore, 'no key stored');

    const audit = await api.audit.query({ action: 'ca.create', limit: 100 });
    assert.equal(audit.length, 5 + 2, 'five created here, two by the harness hierarchy');
  });

  test('import an openssl-made CA; a mismatched key or a non-CA is refused and nothing is stored', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const api = await startApi(t, { unsealed: true });
    const dir = await tempDir(t);
    const f = (n: string) => join(dir, n);
    const mk = async (args: string[]) => {
      const res = await openssl(args);
      assert.equal(res.status, 0, res.stderr);
    };
    // an external root and an intermediate under it, both made by openssl
    await mk([
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      f('ext-root.key'),
    ]);
    await mk([
      'req',
      '-x509',
      '-new',
      '-key',
      f('ext-root.key'),
      '-subj',
      '/O=Example/CN=Example Root',
      '-days',
      '3650',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      f('ext-root.pem'),
    ]);
    await mk([
      'genpkey',
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
      '-out',
      f('ext-inter.key'),
    ]);
    await mk([
      'req',
      '-new',
      '-key',
      f('ext-inter.key'),
      '-subj',
      '/O=Example/CN=Example Issuing CA',
      '-out',
      f('ext-inter.csr'),
    ]);
    await writeFile(
      f('ext.cnf'),
      '[v3]\nbasicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
    );
    await mk([
      'x509',
      '-req',
      '-in',
      f('ext-inter.csr'),
      '-CA',
      f('ext-root.pem'),
      '-CAkey',
      f('ext-root.key'),
      '-CAcreateserial',
      '-days',
      '1000',
      '-extfile',
      f('ext.cnf'),
      '-extensions',
      'v3',
      '-out',
      f('ext-inter.pem'),
    ]);
    // a leaf certificate is not a CA
    await mk([
      'req',
      '-x509',
      '-new',
      '-key',
      f('ext-root.key'),
      '-subj',
      '/CN=leaf',
      '-days',
      '10',
      '-addext',
      'basicConstraints=critical,CA:FALSE',
      '-out',
      f('leaf.pem'),
    ]);
    const read = (n: string) => readFile(f(n), 'utf8');
    const importCa = (name: string, certificate: string, key: string) =>
      api.call('POST', `/v1/cas/${name}/import`, { token: api.adminToken, body: { certificate, key } });

    const before = casCount(api);
    const blobsBefore = await sealedCaBlobs(api);
    const mismatch = await importCa('ext-root', await read('ext-root.pem'), await read('ext-inter.key'));
    problem(mismatch, 400, 'KEY_INVALID');
    assert.match(mismatch.json.detail, /does not match the certificate/);
    assert.doesNotMatch(mismatch.text, /PRIVATE KEY/, 'the key never comes back');
    problem(
      await importCa('ext-root', await read('leaf.pem'), await read('ext-root.key')),
      400,
      'INVALID_ARGUMENT',
    );
    problem(await importCa('ext-root', 'not a certificate', await read('ext-root.key')), 400, 'PKI_PARSE');
    problem(await importCa('ext-root', await read('ext-root.pem'), 'not a key'), 400, 'KEY_INVALID');
    // the intermediate alone: its issuer is unknown to keywright
    const orphan = await importCa('ext-inter', await read('ext-inter.pem'), await read('ext-inter.key'));
    problem(orphan, 400, 'INVALID_ARGUMENT');
    assert.match(orphan.json.detail, /import the issuer first, or append/);
    problem(
      await importCa('default', await read('ext-root.pem'), await read('ext-root.key')),
      409,
      'CA_EXISTS',
    );
    problem(
      await api.call('POST', '/v1/cas/ext-root/import', {
        token: api.adminToken,
        body: { certificate: 'x' },
      }),
      400,
      'API_BAD_REQUEST',
    );
    assert.equal(casCount(api), before, 'no CA stored');
    assert.deepEqual(await sealedCaBlobs(api), blobsBefore, 'no key stored');

    // the intermediate with its root appended: kept as an external chain
    const withChain = await importCa(
      'ext-issuing',
      (await read('ext-inter.pem')) + (await read('ext-root.pem')),
      await read('ext-inter.key'),
    );
    assert.equal(withChain.status, 201, withChain.text);
    assert.equal(withChain.json.ca.kind, 'intermediate');
    assert.equal(withChain.json.ca.parent, null);
    assert.equal(withChain.json.ca.keyType, 'rsa-2048');
    assert.equal(withChain.json.ca.origin, 'imported');
    const chain = await api.call('GET', '/v1/cas/ext-issuing/chain', { token: api.adminToken });
    assert.equal((chain.text.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);

    // the root, then the intermediate again under a second name: found under the imported root
    const root = await importCa('ext-root', await read('ext-root.pem'), await read('ext-root.key'));
    assert.equal(root.status, 201, root.text);
    assert.equal(root.json.ca.kind, 'root');
    const under = await importCa('ext-inter', await read('ext-inter.pem'), await read('ext-inter.key'));
    assert.equal(under.status, 201, under.text);
    assert.equal(under.json.ca.parent, 'ext-root');
    const audit = await api.audit.query({ action: 'ca.import', limit: 10 });
    assert.equal(audit.length, 3);
    const blob = await api.store.getBlob(
      api.store.collection<CaRecord>(CAS_COLLECTION).get('ext-root').keyBlob!,
    );
    assert.ok(blob && !blob.toString().includes('PRIVATE KEY'), 'the key is stored sealed');

    // it issues: a CSR signed by the imported intermediate verifies against the openssl root
    const csr = await opensslCsr(dir, 'svc', ['svc.example.internal']);
    const signed = await api.call('POST', '/v1/cas/ext-issuing/sign', {
      token: api.adminToken,
      body: { csr: await readFile(csr, 'utf8') },
    });
    assert.equal(signed.status, 201, signed.text);
    await writeFile(f('svc.pem'), signed.json.certificate);
    await writeFile(f('svc-chain.pem'), signed.json.chain);
    assert.equal(
      (signed.json.chain.match(/BEGIN CERTIFICATE/g) ?? []).length,
      1,
      'the chain stops below the root',
    );
    const v = await openssl([
      'verify',
      '-CAfile',
      f('ext-root.pem'),
      '-untrusted',
      f('svc-chain.pem'),
      f('svc.pem'),
    ]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    // and its CRL is served, signed by the imported key
    const crl = await raw(api.url, 'GET', '/crl/ext-issuing.crl');
    assert.equal(crl.status, 200);
    await writeFile(f('ext.crl'), crl.body);
    const crlCheck = await openssl([
      'crl',
      '-inform',
      'DER',
      '-in',
      f('ext.crl'),
      '-CAfile',
      f('ext-inter.pem'),
      '-noout',
    ]);
    assert.match(crlCheck.stderr + crlCheck.stdout, /verify OK/);
  });

  test('sign a CSR: openssl verifies; profiles (built-in and configured) decide; bad CSRs are refused', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const api = await startApi(t, {
      unsealed: true,
      bodyLimit: 2 * 1024 * 1024,
      config: {
        ca: {
          root: { key: 'ec-p256' },
          profiles: [
            { name: 'svc', cas: ['default'], names: { dns: ['*.svc.internal'], ip: [] }, maxLifetime: '30d' },
            { name: 'other-only', cas: ['root'] },
          ],
        },
      },
    });
    const dir = await tempDir(t);
    await writeCaFiles(api, dir);
    const sign = (body: unknown, ca = 'default', token = api.adminToken) =>
      api.call('POST', `/v1/cas/${ca}/sign`, { token, body });
    const csr = await readFile(await opensslCsr(dir, 'web', ['web.svc.internal', '10.0.0.7']), 'utf8');

    const res = await sign({ csr });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.profile, 'server');
    assert.deepEqual(res.json.names, ['DNS:web.svc.internal', 'IP:10.0.0.7']);
    await writeFile(join(dir, 'web.pem'), res.json.certificate);
    const v = await openssl([
      'verify',
      '-CAfile',
      join(dir, 'root.pem'),
      '-untrusted',
      join(dir, 'inter.pem'),
      join(dir, 'web.pem'),
    ]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    const pub = await openssl(['x509', '-in', join(dir, 'web.pem'), '-noout', '-pubkey']);
    const key = await openssl(['pkey', '-in', join(dir, 'web.key'), '-pubout']);
    assert.equal(pub.stdout, key.stdout, 'the requester keeps its key');
    const ledger = api.store.collection<LedgerRecord>(LEDGER_COLLECTION).find(`default/${res.json.serial}`);
    assert.ok(ledger, 'recorded in the ledger');
    const audit = await api.audit.query({ action: 'ca.sign', limit: 10 });
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.details?.serial, res.json.serial);

    // a configured profile: names and lifetime limited
    const svc = await sign({ csr, profile: 'svc' });
    problem(svc, 403, 'POLICY_VIOLATION');
    assert.equal(svc.json.details.rule, 'ip_not_allowed');
    const dnsOnly = await readFile(await opensslCsr(dir, 'api', ['api.svc.internal']), 'utf8');
    const ok = await sign({ csr: dnsOnly, profile: 'svc', ttl: '30d' });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json.profile, 'svc');
    const evil = await readFile(await opensslCsr(dir, 'evil', ['evil.example.com']), 'utf8');
    const refused = await sign({ csr: evil, profile: 'svc' });
    problem(refused, 403, 'POLICY_VIOLATION');
    assert.equal(refused.json.details.rule, 'dns_not_allowed');
    assert.equal(
      (await sign({ csr: dnsOnly, profile: 'svc', ttl: '31d' })).json.details.rule,
      'lifetime_too_long',
    );
    problem(await sign({ csr: dnsOnly, profile: 'other-only' }), 404, 'PROFILE_NOT_FOUND');
    problem(await sign({ csr: dnsOnly, profile: 'nope' }), 404, 'PROFILE_NOT_FOUND');
    const rootProfiles = await api.call('GET', '/v1/cas/root', { token: api.adminToken });
    assert.ok(rootProfiles.json.ca.profiles.includes('other-only'));
    assert.ok(!rootProfiles.json.ca.profiles.includes('svc'));

    // bad CSRs and bad requests
    const tampered = csr.replace(
      /(-----BEGIN CERTIFICATE REQUEST-----\n)(.{60})/,
      (_m, a: string, b: string) => a + b.slice(0, 40) + (b[40] === 'A' ? 'B' : 'A') + b.slice(41),
    );
    const ledgerBefore = api.store.collection(LEDGER_COLLECTION).count();
    assert.ok([400].includes((await sign({ csr: tampered })).status));
    problem(await sign({ csr: 'hello' }), 400, 'PKI_PARSE');
    problem(
      await sign({ csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' }),
      400,
      'CSR_INVALID',
    );
    problem(await sign({ csr: 'x'.repeat(70 * 1024) }), 400, 'API_BAD_REQUEST');
    problem(await sign({ csr: 'x'.repeat(1024 * 1024) }), 400, 'API_BAD_REQUEST');
    problem(await sign({}), 400, 'API_BAD_REQUEST');
    problem(await sign({ csr }, 'nope'), 404, 'CA_NOT_FOUND');
    const reader = (await api.tokens.create({ role: 'reader', createdBy: 't' })).token;
    problem(await sign({ csr }, 'default', reader), 403, 'ACCESS_DENIED');
    assert.equal(api.store.collection(LEDGER_COLLECTION).count(), ledgerBefore, 'nothing recorded');
    const small = await readFile(
      await (async () => {
        const r = await openssl([
          'req',
          '-new',
          '-newkey',
          'rsa:1024',
          '-nodes',
          '-keyout',
          join(dir, 's.key'),
          '-out',
          join(dir, 's.csr'),
          '-subj',
          '/CN=small.svc.internal',
        ]);
        assert.equal(r.status, 0, r.stderr);
        return join(dir, 's.csr');
      })(),
      'utf8',
    );
    const tooSmall = await sign({ csr: small });
    assert.ok(tooSmall.status >= 400 && tooSmall.status < 500, tooSmall.text);
    assert.match(tooSmall.text, /rsa_key_too_small|CSR_INVALID|KEY_TYPE_UNSUPPORTED/);
  });

  test('issue a key with its certificate: openssl verifies both and the pair; the key is kept nowhere', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const api = await startApi(t, {
      unsealed: true,
      config: {
        ca: {
          root: { key: 'ec-p256' },
          profiles: [{ name: 'svc', cas: ['default'], names: { dns: ['*.svc.internal'], ip: [] } }],
        },
      },
    });
    const dir = await tempDir(t);
    await writeCaFiles(api, dir);
    const issue = (body: unknown, ca = 'default', token = api.adminToken) =>
      api.call('POST', `/v1/cas/${ca}/issue`, { token, body });
    const blobsBefore = (await api.store.listBlobs('')).length;

    for (const key of ['ec-p256', 'ec-p384', 'ed25519', 'rsa-2048'] as const) {
      const res = await issue({ sans: ['api.svc.internal', '10.0.0.9'], key, ttl: '7d' });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.json.keyType, key);
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.deepEqual(res.json.names, ['DNS:api.svc.internal', 'IP:10.0.0.9']);
      await writeFile(join(dir, `i-${key}.pem`), res.json.certificate);
      await writeFile(join(dir, `i-${key}.key`), res.json.privateKey, { mode: 0o600 });
      const v = await openssl([
        'verify',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'inter.pem'),
        join(dir, `i-${key}.pem`),
      ]);
      assert.equal(v.status, 0, v.stdout + v.stderr);
      const pub = await openssl(['x509', '-in', join(dir, `i-${key}.pem`), '-noout', '-pubkey']);
      const fromKey = await openssl(['pkey', '-in', join(dir, `i-${key}.key`), '-pubout']);
      assert.equal(fromKey.status, 0, fromKey.stderr);
      assert.equal(pub.stdout, fromKey.stdout, 'the key belongs to the certificate');
      const days = await openssl([
        'x509',
        '-in',
        join(dir, `i-${key}.pem`),
        '-noout',
        '-checkend',
        String(8 * 86400),
      ]);
      assert.notEqual(days.status, 0, 'ttl 7d honoured: it expires within 8 days');
      assert.ok(api.store.collection<LedgerRecord>(LEDGER_COLLECTION).find(`default/${res.json.serial}`));
    }
    const audit = await api.audit.query({ action: 'ca.issue', limit: 10 });
    assert.equal(audit.length, 4);
    assert.ok(
      audit.every((e) => !JSON.stringify(e).includes('PRIVATE')),
      'no key in the audit log',
    );
    assert.equal(
      (await api.store.listBlobs('')).length,
      blobsBefore,
      'no key (or anything) stored as a blob',
    );

    // the profile decides the names; bad input is a clear 4xx that issues nothing
    problem(await issue({ sans: ['evil.example.com'], profile: 'svc' }), 403, 'POLICY_VIOLATION');
    problem(await issue({ sans: [] }), 400, 'API_BAD_REQUEST');
    problem(await issue({ sans: ['ok.example'], key: 'dsa-1024' }), 400, 'API_BAD_REQUEST');
    const badName = await issue({ sans: ['bad name!'] });
    problem(badName, 403, 'POLICY_VIOLATION');
    assert.equal(badName.json.details.rule, 'san_syntax');
    problem(await issue({ sans: ['ok.example'] }, 'nope'), 404, 'CA_NOT_FOUND');
    const reader = (await api.tokens.create({ role: 'reader', createdBy: 'test' })).token;
    problem(await issue({ sans: ['ok.example'] }, 'default', reader), 403, 'ACCESS_DENIED');
    assert.equal(
      (await api.audit.query({ action: 'ca.issue', limit: 10 })).length,
      4,
      'refusals issued nothing',
    );
  });

  test('export-key opens with openssl; disable-key keeps the intermediate issuing', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const api = await startApi(t, { unsealed: true });
    const dir = await tempDir(t);
    await writeCaFiles(api, dir);
    const passphrase = 'correct horse battery staple';
    const exportKey = (body: unknown, token = api.adminToken, ca = 'root') =>
      api.call('POST', `/v1/cas/${ca}/export-key`, { token, body });

    problem(await exportKey({ passphrase: 'short' }), 400, 'INVALID_ARGUMENT');
    problem(await exportKey({}), 400, 'API_BAD_REQUEST');
    const operator = (await api.tokens.create({ role: 'operator', createdBy: 't' })).token;
    problem(await exportKey({ passphrase }, operator), 403, 'ACCESS_DENIED');
    const service = (await api.tokens.create({ role: 'service', scopes: ['ca:*'], createdBy: 't' })).token;
    problem(await exportKey({ passphrase }, service), 403, 'ACCESS_DENIED');
    assert.equal((await api.audit.query({ action: 'key.export', limit: 10 })).length, 0);

    const exported = await exportKey({ passphrase });
    assert.equal(exported.status, 200, exported.text);
    assert.match(exported.json.privateKey, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    await writeFile(join(dir, 'root.key.enc'), exported.json.privateKey);
    const opened = await openssl([
      'pkey',
      '-in',
      join(dir, 'root.key.enc'),
      '-passin',
      `pass:${passphrase}`,
      '-pubout',
    ]);
    assert.equal(opened.status, 0, opened.stderr);
    const certPub = await openssl(['x509', '-in', join(dir, 'root.pem'), '-noout', '-pubkey']);
    assert.equal(opened.stdout, certPub.stdout, 'the exported key is the root key');
    const wrong = await openssl([
      'pkey',
      '-in',
      join(dir, 'root.key.enc'),
      '-passin',
      'pass:wrong passphrase',
      '-noout',
    ]);
    assert.notEqual(wrong.status, 0);
    const info = await openssl(['asn1parse', '-in', join(dir, 'root.key.enc')]);
    assert.match(info.stdout, /aes-256-cbc/);
    const exportAudit = await api.audit.query({ action: 'key.export', limit: 10 });
    assert.equal(exportAudit.length, 1);
    assert.equal(exportAudit[0]!.subject, 'ca:root');
    assert.doesNotMatch(JSON.stringify(exportAudit), /horse/);

    // a revoked intermediate shows in the root's final CRL
    const rootCrlBefore = await raw(api.url, 'GET', '/crl/root.crl');
    assert.equal(rootCrlBefore.status, 200);

    const rootRecord = api.store.collection<CaRecord>(CAS_COLLECTION).get('root');
    problem(
      await api.call('POST', '/v1/cas/root/disable-key', { token: operator.replace(/.$/, 'x'), body: {} }),
      401,
      'AUTH_INVALID',
    );
    const disabled = await api.call('POST', '/v1/cas/root/disable-key', { token: api.adminToken, body: {} });
    assert.equal(disabled.status, 200, disabled.text);
    assert.equal(disabled.json.ca.keyState, 'offline');
    assert.equal(
      await api.store.getBlob(rootRecord.keyBlob!),
      undefined,
      'the sealed key is gone from the store',
    );
    assert.equal((await api.audit.query({ action: 'ca.key.disable', limit: 10 })).length, 1);

    // the intermediate keeps issuing
    const cert = await api.call('POST', '/v1/certificates', {
      token: api.adminToken,
      body: { name: 'after', sans: ['after.internal'] },
    });
    assert.equal(cert.status, 201, cert.text);
    const bundle = await api.call('GET', '/v1/certificates/after/bundle?format=json', {
      token: api.adminToken,
    });
    const v = await verifyChain(dir, caPem(api, 'root'), bundle.json.chain, bundle.json.certificate);
    assert.equal(v.status, 0, v.stdout + v.stderr);

    // the root signs nothing more, but its last CRL is still served, valid about a year
    const crl = await raw(api.url, 'GET', '/crl/root.crl');
    assert.equal(crl.status, 200);
    const parsed = parseCrl(crl.body);
    const days = (parsed.nextUpdate!.getTime() - parsed.thisUpdate.getTime()) / 86_400_000;
    assert.equal(days, 365);
    assert.ok(parsed.crlNumber! > parseCrl(rootCrlBefore.body).crlNumber!);
    await writeFile(join(dir, 'root.crl'), crl.body);
    const crlOk = await openssl([
      'crl',
      '-inform',
      'DER',
      '-in',
      join(dir, 'root.crl'),
      '-CAfile',
      join(dir, 'root.pem'),
      '-noout',
    ]);
    assert.match(crlOk.stderr + crlOk.stdout, /verify OK/);
    problem(
      await api.call('POST', '/v1/cas', { token: api.adminToken, body: { name: 'x', parent: 'root' } }),
      409,
      'CA_KEY_UNAVAILABLE',
    );
    problem(await exportKey({ passphrase }), 409, 'CA_KEY_UNAVAILABLE');
    problem(
      await api.call('POST', '/v1/cas/root/disable-key', { token: api.adminToken, body: {} }),
      409,
      'CA_KEY_UNAVAILABLE',
    );
    problem(
      await api.call('POST', '/v1/certificates', {
        token: api.adminToken,
        body: { name: 'r', issuer: 'ca:root', sans: ['r.internal'] },
      }),
      404,
      'ISSUER_NOT_FOUND',
    );
    const ocsp = await raw(api.url, 'POST', '/ocsp/root', {
      body: Buffer.from([0x30, 0x00]),
      headers: { 'content-type': 'application/ocsp-request' },
    });
    assert.equal(ocsp.status, 200);
    const chain = await api.call('GET', '/v1/cas/default/chain', { token: api.adminToken });
    assert.equal((chain.text.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'the root stays in chains');
  });
});
