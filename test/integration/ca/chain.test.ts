/**
 * For every key type keywright offers: root → intermediate → leaf made by keywright, verified by
 * `openssl verify` and read back with `openssl x509 -text`. RSA 3072/4096 keys are slow, so all keys are
 * generated once, in parallel, when the file starts.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../../../src/core/clock.js';
import { createIntermediate, createRoot } from '../../../src/ca/hierarchy.js';
import { buildLeafCertificate } from '../../../src/ca/issue.js';
import { BUILTIN_PROFILES } from '../../../src/ca/profiles.js';
import type { CertKeyType } from '../../../src/pki/key-spec.js';
import { CERT_KEY_TYPES } from '../../../src/pki/key-spec.js';
import type { KeyPair } from '../../fixtures/pki-ca.js';
import { DAY, newKeyPair } from '../../fixtures/pki-ca.js';
import { requirePeer, runPeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';

const SIGNATURE_TEXT: Record<CertKeyType, string> = {
  'ec-p256': 'ecdsa-with-SHA256',
  'ec-p384': 'ecdsa-with-SHA384',
  'rsa-2048': 'sha256WithRSAEncryption',
  'rsa-3072': 'sha256WithRSAEncryption',
  'rsa-4096': 'sha256WithRSAEncryption',
  ed25519: 'ED25519',
};

const keys = new Map<CertKeyType, { root: KeyPair; inter: KeyPair; leaf: KeyPair }>();

before(async () => {
  await Promise.all(
    CERT_KEY_TYPES.map(async (type) => {
      const [root, inter, leaf] = await Promise.all([newKeyPair(type), newKeyPair(type), newKeyPair(type)]);
      keys.set(type, { root, inter, leaf });
    }),
  );
});

const urls = {
  crl: 'http://127.0.0.1:8890/crl/default.crl',
  ocsp: 'http://127.0.0.1:8890/ocsp/default',
  caIssuers: 'http://127.0.0.1:8890/ca/default.crt',
};

function chainFor(type: CertKeyType) {
  const k = keys.get(type)!;
  const root = createRoot({
    key: k.root.privateKey,
    subject: { commonName: `Root ${type}`, organization: 'keywright tests' },
    lifetimeMs: 3650 * DAY,
    clock: systemClock,
  });
  const inter = createIntermediate({
    issuer: { certificate: root.der, key: k.root.privateKey },
    subjectPublicKey: k.inter.publicKey,
    subject: { commonName: `Intermediate ${type}` },
    lifetimeMs: 1825 * DAY,
    clock: systemClock,
    urls: { crl: 'http://127.0.0.1:8890/crl/root.crl' },
  });
  const leaf = buildLeafCertificate({
    issuer: { certificate: inter.der, key: k.inter.privateKey },
    subjectPublicKey: k.leaf.publicKey,
    sans: ['web.internal', 'IP:10.0.0.5', 'IP:fd00::5'],
    profile: BUILTIN_PROFILES['server-client'],
    lifetimeMs: 30 * DAY,
    clock: systemClock,
    urls,
  });
  return { root, inter, leaf };
}

describe('openssl verifies keywright chains for every key type', () => {
  for (const type of CERT_KEY_TYPES) {
    test(type, async (t) => {
      if (!requirePeer(t, 'openssl')) return;
      const dir = await tempDir(t);
      const { root, inter, leaf } = chainFor(type);
      const f = (n: string): string => join(dir, n);
      await writeFile(f('root.pem'), root.pem);
      await writeFile(f('inter.pem'), inter.pem);
      await writeFile(f('leaf.pem'), leaf.pem);

      const ok = runPeer('openssl', [
        'verify',
        '-CAfile',
        f('root.pem'),
        '-untrusted',
        f('inter.pem'),
        f('leaf.pem'),
      ]);
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /leaf\.pem: OK/);
      // and purpose checks pass for both EKUs
      for (const purpose of ['sslserver', 'sslclient']) {
        const p = runPeer('openssl', [
          'verify',
          '-purpose',
          purpose,
          '-CAfile',
          f('root.pem'),
          '-untrusted',
          f('inter.pem'),
          f('leaf.pem'),
        ]);
        assert.equal(p.status, 0, `${purpose}: ${p.stdout}${p.stderr}`);
      }
      const noInter = runPeer('openssl', ['verify', '-CAfile', f('root.pem'), f('leaf.pem')]);
      assert.equal(noInter.status, 2, 'without the intermediate the chain must not build');

      const text = runPeer('openssl', ['x509', '-in', f('leaf.pem'), '-noout', '-text']);
      assert.equal(text.status, 0, text.stderr);
      const expected = [
        `Signature Algorithm: ${SIGNATURE_TEXT[type]}`,
        'X509v3 Key Usage: critical',
        type.startsWith('rsa') ? 'Digital Signature, Key Encipherment' : 'Digital Signature',
        'TLS Web Server Authentication, TLS Web Client Authentication',
        'X509v3 Basic Constraints: critical',
        'CA:FALSE',
        'X509v3 Subject Key Identifier',
        'X509v3 Authority Key Identifier',
        'DNS:web.internal, IP Address:10.0.0.5, IP Address:FD00:0:0:0:0:0:0:5',
        `OCSP - URI:${urls.ocsp}`,
        `CA Issuers - URI:${urls.caIssuers}`,
        `URI:${urls.crl}`,
        'Subject: CN = web.internal',
      ];
      for (const line of expected)
        assert.ok(text.stdout.includes(line), `leaf text lacks "${line}"\n${text.stdout}`);
      if (!type.startsWith('rsa')) assert.ok(!text.stdout.includes('Key Encipherment'));

      const interText = runPeer('openssl', ['x509', '-in', f('inter.pem'), '-noout', '-text']);
      for (const line of [
        'CA:TRUE, pathlen:0',
        'Certificate Sign, CRL Sign',
        'X509v3 Basic Constraints: critical',
        'X509v3 Key Usage: critical',
      ]) {
        assert.ok(interText.stdout.includes(line), `intermediate text lacks "${line}"`);
      }
      // the AKI of each certificate is the SKI of its issuer, as openssl reads them
      const ski = (file: string): string =>
        runPeer('openssl', ['x509', '-in', file, '-noout', '-ext', 'subjectKeyIdentifier'])
          .stdout.split('\n')[1]!
          .trim();
      const aki = (file: string): string =>
        runPeer('openssl', ['x509', '-in', file, '-noout', '-ext', 'authorityKeyIdentifier'])
          .stdout.split('\n')[1]!
          .trim()
          .replace(/^keyid:/, '');
      assert.equal(aki(f('leaf.pem')), ski(f('inter.pem')));
      assert.equal(aki(f('inter.pem')), ski(f('root.pem')));
    });
  }

  test('the default init hierarchy: P-384 root, P-256 intermediate, RSA and Ed25519 leaves', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const dir = await tempDir(t);
    const rk = keys.get('ec-p384')!.root;
    const ik = keys.get('ec-p256')!.inter;
    const root = createRoot({
      key: rk.privateKey,
      subject: { commonName: 'keywright root CA' },
      lifetimeMs: 3650 * DAY,
      clock: systemClock,
    });
    const inter = createIntermediate({
      issuer: { certificate: root.der, key: rk.privateKey },
      subjectPublicKey: ik.publicKey,
      subject: { commonName: 'keywright default intermediate CA' },
      lifetimeMs: 1825 * DAY,
      clock: systemClock,
    });
    await writeFile(join(dir, 'root.pem'), root.pem);
    await writeFile(join(dir, 'inter.pem'), inter.pem);
    for (const type of ['rsa-2048', 'ed25519', 'ec-p384'] as const) {
      const leaf = buildLeafCertificate({
        issuer: { certificate: inter.der, key: ik.privateKey },
        subjectPublicKey: keys.get(type)!.leaf.publicKey,
        sans: [`${type}.internal`],
        profile: BUILTIN_PROFILES.server,
        clock: systemClock,
      });
      await writeFile(join(dir, `${type}.pem`), leaf.pem);
      const r = runPeer('openssl', [
        'verify',
        '-x509_strict',
        '-CAfile',
        join(dir, 'root.pem'),
        '-untrusted',
        join(dir, 'inter.pem'),
        join(dir, `${type}.pem`),
      ]);
      assert.equal(r.status, 0, `${type}: ${r.stdout}${r.stderr}`);
    }
  });
});
