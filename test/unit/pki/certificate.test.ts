import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto, X509Certificate } from 'node:crypto';
import { generateKeyPairSync } from '../../helpers/keys.js';
import * as x509 from '@peculiar/x509';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { buildLeafCertificate } from '../../../src/ca/issue.js';
import { BUILTIN_PROFILES } from '../../../src/ca/profiles.js';
import { spkiOf } from '../../../src/pki/algorithms.js';
import { parseCertificate, signCertificate } from '../../../src/pki/certificate.js';
import type { Extension } from '../../../src/pki/extensions.js';
import { encodeName, parseName } from '../../../src/pki/name.js';
import type { KeyPair } from '../../fixtures/pki-ca.js';
import { buildHierarchy, DAY } from '../../fixtures/pki-ca.js';

const clock = new FakeClock(Date.UTC(2026, 0, 10, 12, 0, 0, 250));

async function toCryptoKeys(pair: KeyPair, alg: webcrypto.EcKeyImportParams | webcrypto.Algorithm) {
  const subtle = webcrypto.subtle;
  const privateKey = await subtle.importKey(
    'pkcs8',
    pair.privateKey.export({ type: 'pkcs8', format: 'der' }),
    alg,
    false,
    ['sign'],
  );
  const publicKey = await subtle.importKey(
    'spki',
    pair.publicKey.export({ type: 'spki', format: 'der' }),
    alg,
    true,
    ['verify'],
  );
  return { privateKey, publicKey };
}

/**
 * The same certificate made by keywright's encoder and by @peculiar/x509's generator, from the same
 * serial, dates, keys, names and extensions. Ed25519 signatures are deterministic (RFC 8032), so the two
 * DER encodings must be identical byte for byte, signature included.
 */
test('a leaf is byte-identical to the one @peculiar/x509 generates from the same inputs (Ed25519)', async () => {
  const rootKey = generateKeyPairSync('ed25519');
  const interKey = generateKeyPairSync('ed25519');
  const leafKey = generateKeyPairSync('ed25519');
  const h = buildHierarchy(clock, { rootKey, interKey });
  const urls = {
    ocsp: 'http://ca.internal/ocsp/default',
    caIssuers: 'http://ca.internal/ca/default.crt',
    crl: 'http://ca.internal/crl/default.crl',
  };
  const ours = buildLeafCertificate({
    issuer: h.issuer,
    subjectPublicKey: leafKey.publicKey,
    sans: ['web.internal', 'IP:10.0.0.5', 'IP:fd00::5'],
    profile: BUILTIN_PROFILES['server-client'],
    lifetimeMs: 30 * DAY,
    clock,
    serial: '3f1e2d3c4b5a69788796a5b4c3d2e1f0',
    urls,
  });

  const alg = { name: 'Ed25519' };
  const inter = await toCryptoKeys(h.interKey, alg);
  const leaf = await toCryptoKeys(leafKey, alg);
  const interCert = new x509.X509Certificate(h.inter.der);
  const theirs = await x509.X509CertificateGenerator.create({
    serialNumber: '3f1e2d3c4b5a69788796a5b4c3d2e1f0',
    issuer: interCert.subjectName,
    subject: new x509.Name(parseName(encodeName({ commonName: 'web.internal' })).der),
    notBefore: ours.notBefore,
    notAfter: ours.notAfter,
    signingAlgorithm: alg,
    publicKey: leaf.publicKey,
    signingKey: inter.privateKey,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(
        [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      new x509.BasicConstraintsExtension(false, undefined, true),
      await x509.SubjectKeyIdentifierExtension.create(leaf.publicKey, false),
      await x509.AuthorityKeyIdentifierExtension.create(inter.publicKey, false),
      new x509.SubjectAlternativeNameExtension(
        [
          { type: 'dns', value: 'web.internal' },
          { type: 'ip', value: '10.0.0.5' },
          { type: 'ip', value: 'fd00::5' },
        ],
        false,
      ),
      new x509.AuthorityInfoAccessExtension({ ocsp: [urls.ocsp], caIssuers: [urls.caIssuers] }, false),
      new x509.CRLDistributionPointsExtension([urls.crl], false),
    ],
  });
  assert.equal(Buffer.from(theirs.rawData).toString('hex'), ours.der.toString('hex'));
});

test('ECDSA: TBS identical to @peculiar/x509 and both signatures verify', async () => {
  const h = buildHierarchy(clock);
  const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ours = buildLeafCertificate({
    issuer: h.issuer,
    subjectPublicKey: leafKey.publicKey,
    sans: ['api.internal'],
    profile: BUILTIN_PROFILES.server,
    lifetimeMs: 10 * DAY,
    clock,
    serial: 'fa01020304050607',
  });
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const inter = await toCryptoKeys(h.interKey, alg);
  const leaf = await toCryptoKeys(leafKey, alg);
  const theirs = await x509.X509CertificateGenerator.create({
    serialNumber: 'fa01020304050607',
    issuer: new x509.X509Certificate(h.inter.der).subjectName,
    subject: new x509.Name(parseName(encodeName({ commonName: 'api.internal' })).der),
    notBefore: ours.notBefore,
    notAfter: ours.notAfter,
    signingAlgorithm: alg,
    publicKey: leaf.publicKey,
    signingKey: inter.privateKey,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.BasicConstraintsExtension(false, undefined, true),
      await x509.SubjectKeyIdentifierExtension.create(leaf.publicKey, false),
      await x509.AuthorityKeyIdentifierExtension.create(inter.publicKey, false),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'api.internal' }], false),
    ],
  });
  const a = parseCertificate(ours.der);
  const b = parseCertificate(Buffer.from(theirs.rawData));
  assert.equal(b.tbsDer.toString('hex'), a.tbsDer.toString('hex'));
  const issuerKey = parseCertificate(h.inter.der).publicKey;
  assert.ok(a.verifySignature(issuerKey));
  assert.ok(b.verifySignature(issuerKey));
  assert.ok(new X509Certificate(ours.der).verify(issuerKey), 'node:crypto agrees');
});

test('parses back every extension keywright writes', () => {
  const h = buildHierarchy(clock, {
    nameConstraints: {
      permitted: ['DNS:internal', 'IP:10.0.0.0/8', 'email:example.com', 'URI:.example.com'],
      excluded: ['DNS:bad.internal', 'IP:fd00::/8'],
    },
  });
  const inter = parseCertificate(h.inter.pem);
  assert.equal(inter.version, 3);
  assert.equal(inter.signatureAlgorithm?.name, 'ecdsa-with-SHA256');
  assert.ok(inter.isCa);
  assert.ok(!inter.selfIssued);
  const byKind = Object.fromEntries(inter.extensions.map((e) => [e.kind, e])) as Record<
    Extension['kind'],
    Extension
  >;
  assert.deepEqual(byKind.basicConstraints, {
    kind: 'basicConstraints',
    critical: true,
    ca: true,
    pathLen: 0,
  });
  assert.deepEqual(byKind.keyUsage, { kind: 'keyUsage', critical: true, usages: ['keyCertSign', 'cRLSign'] });
  assert.deepEqual(byKind.nameConstraints, {
    kind: 'nameConstraints',
    critical: true,
    permitted: [
      { type: 'dns', value: 'internal' },
      { type: 'ip', value: '10.0.0.0/8' },
      { type: 'email', value: 'example.com' },
      { type: 'uri', value: '.example.com' },
    ],
    excluded: [
      { type: 'dns', value: 'bad.internal' },
      { type: 'ip', value: 'fd00::/8' },
    ],
  });
  const ski = byKind.subjectKeyIdentifier as Extract<Extension, { kind: 'subjectKeyIdentifier' }>;
  assert.deepEqual(ski.keyId, spkiOf(h.interKey.publicKey).keyId);
  const root = parseCertificate(h.root.der);
  assert.ok(root.selfIssued);
  assert.equal(
    root.extensions.find((e) => e.kind === 'authorityKeyIdentifier'),
    undefined,
  );
});

test('signCertificate refuses a TBS whose algorithm is not the issuer key’s', () => {
  const h = buildHierarchy(clock);
  const otherKey = generateKeyPairSync('ed25519');
  const cert = parseCertificate(h.inter.der);
  assert.throws(
    () =>
      signCertificate(
        {
          serialNumber: Buffer.from([1]),
          signatureAlgorithm: cert.signatureAlgorithm!,
          issuer: cert.issuer,
          notBefore: cert.notBefore,
          notAfter: cert.notAfter,
          subject: cert.subject,
          subjectPublicKey: h.interKey.publicKey,
          extensions: [],
        },
        otherKey.privateKey,
      ),
    (e) => isAppError(e, 'KEY_INVALID'),
  );
});

test('parseCertificate refuses garbage and a mismatched outer algorithm with PKI_PARSE', () => {
  assert.throws(
    () => parseCertificate(Buffer.from('300100', 'hex')),
    (e) => isAppError(e, 'PKI_PARSE'),
  );
  assert.throws(
    () => parseCertificate('not a certificate'),
    (e) => isAppError(e, 'PKI_PARSE'),
  );
  const h = buildHierarchy(clock);
  const der = Buffer.from(h.inter.der);
  // flip ecdsa-with-SHA256 → ecdsa-with-SHA384 in the outer signatureAlgorithm only (the last OID before the signature)
  const outer = der.lastIndexOf(Buffer.from('06082a8648ce3d040302', 'hex'));
  der[outer + 9] = 0x03;
  assert.throws(
    () => parseCertificate(der),
    (e) => isAppError(e, 'PKI_PARSE') && /differs/.test((e as Error).message),
  );
});
