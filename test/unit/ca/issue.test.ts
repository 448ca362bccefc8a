import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { generateKeyPairSync } from '../../helpers/keys.js';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { createIntermediate, createRoot } from '../../../src/ca/hierarchy.js';
import { buildLeafCertificate, buildLeafFromCsr } from '../../../src/ca/issue.js';
import type { Profile } from '../../../src/ca/profiles.js';
import { BUILTIN_PROFILES } from '../../../src/ca/profiles.js';
import { BACKDATE_MS } from '../../../src/ca/sign.js';
import { parseCertificate } from '../../../src/pki/certificate.js';
import { buildCsr } from '../../../src/pki/csr.js';
import type { Extension, ExtensionKind } from '../../../src/pki/extensions.js';
import { EXT_KEY_USAGES } from '../../../src/pki/extensions.js';
import { commonNameOf } from '../../../src/pki/name.js';
import { buildHierarchy, DAY, ecKey } from '../../fixtures/pki-ca.js';

const start = Date.UTC(2026, 3, 1, 8, 0, 0, 640);
const clock = new FakeClock(start);
const h = buildHierarchy(clock);

function ext<K extends ExtensionKind>(der: Buffer, kind: K): Extract<Extension, { kind: K }> | undefined {
  return parseCertificate(der).extensions.find((e) => e.kind === kind) as
    Extract<Extension, { kind: K }> | undefined;
}

describe('leaf certificates', () => {
  test('validity: notBefore back-dated and truncated to the second; notAfter = now + lifetime', () => {
    const leaf = buildLeafCertificate({
      issuer: h.issuer,
      subjectPublicKey: ecKey().publicKey,
      sans: ['a.internal'],
      profile: BUILTIN_PROFILES.server,
      lifetimeMs: 10 * DAY,
      clock,
    });
    assert.equal(leaf.notBefore.getTime(), Math.floor((start - BACKDATE_MS) / 1000) * 1000);
    assert.equal(leaf.notAfter.getTime(), Math.floor((start + 10 * DAY) / 1000) * 1000);
    const parsed = parseCertificate(leaf.der);
    assert.equal(parsed.notBefore.getTime(), leaf.notBefore.getTime());
    assert.equal(parsed.notAfter.getTime(), leaf.notAfter.getTime());
  });

  test('notAfter is capped by the issuer’s notAfter', () => {
    const short = buildHierarchy(clock, { interLifetimeMs: 5 * DAY });
    const leaf = buildLeafCertificate({
      issuer: short.issuer,
      subjectPublicKey: ecKey().publicKey,
      sans: ['a.internal'],
      profile: BUILTIN_PROFILES.server,
      lifetimeMs: 90 * DAY,
      clock,
    });
    assert.equal(leaf.notAfter.getTime(), parseCertificate(short.inter.der).notAfter.getTime());
  });

  test('the default lifetime is the profile’s; a lifetime over the maximum is refused', () => {
    const p: Profile = { ...BUILTIN_PROFILES.server, defaultLifetimeMs: 3 * DAY, maxLifetimeMs: 7 * DAY };
    const leaf = buildLeafCertificate({
      issuer: h.issuer,
      subjectPublicKey: ecKey().publicKey,
      sans: ['a.internal'],
      profile: p,
      clock,
    });
    assert.equal(leaf.notAfter.getTime(), Math.floor((start + 3 * DAY) / 1000) * 1000);
    assert.throws(
      () =>
        buildLeafCertificate({
          issuer: h.issuer,
          subjectPublicKey: ecKey().publicKey,
          sans: ['a.internal'],
          profile: p,
          lifetimeMs: 8 * DAY,
          clock,
        }),
      (e) => isAppError(e, 'POLICY_VIOLATION') && e.details.rule === 'lifetime_too_long',
    );
  });

  test('random 128-bit positive serials by default; injected randomness and fixed serials are honoured', () => {
    const serials = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const s = buildLeafCertificate({
        issuer: h.issuer,
        subjectPublicKey: ecKey().publicKey,
        sans: ['a.internal'],
        profile: BUILTIN_PROFILES.server,
        clock,
      }).serialHex;
      assert.ok(s.length >= 30 && s.length <= 32, s);
      serials.add(s);
    }
    assert.equal(serials.size, 50);
    const fixed = buildLeafCertificate({
      issuer: h.issuer,
      subjectPublicKey: ecKey().publicKey,
      sans: ['a.internal'],
      profile: BUILTIN_PROFILES.server,
      clock,
      random: (n) => Buffer.alloc(n, 0xab),
    });
    assert.equal(fixed.serialHex, 'ab'.repeat(16));
    assert.equal(new X509Certificate(fixed.der).serialNumber.toLowerCase(), 'ab'.repeat(16));
    const given = buildLeafCertificate({
      issuer: h.issuer,
      subjectPublicKey: ecKey().publicKey,
      sans: ['a.internal'],
      profile: BUILTIN_PROFILES.server,
      clock,
      serial: '00ff' + '11'.repeat(10),
    });
    assert.equal(given.serialHex, 'ff' + '11'.repeat(10));
  });

  test('key usage by key type: EC and Ed25519 sign only, RSA servers also encipher', () => {
    const ku = (pub: KeyObject, profile: Profile): readonly string[] =>
      ext(
        buildLeafCertificate({
          issuer: h.issuer,
          subjectPublicKey: pub,
          sans: ['a.internal'],
          profile,
          clock,
        }).der,
        'keyUsage',
      )!.usages;
    assert.deepEqual(ku(ecKey().publicKey, BUILTIN_PROFILES.server), ['digitalSignature']);
    assert.deepEqual(ku(generateKeyPairSync('ed25519').publicKey, BUILTIN_PROFILES.server), [
      'digitalSignature',
    ]);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    assert.deepEqual(ku(rsa, BUILTIN_PROFILES.server), ['digitalSignature', 'keyEncipherment']);
    assert.deepEqual(ku(rsa, BUILTIN_PROFILES.client), ['digitalSignature']);
    // a profile asking for keyEncipherment does not get it on an EC key
    assert.deepEqual(
      ku(ecKey().publicKey, {
        ...BUILTIN_PROFILES.server,
        keyUsages: ['digitalSignature', 'keyEncipherment'],
      }),
      ['digitalSignature'],
    );
  });

  test('EKU from the profile, BC CA:FALSE critical, SKI, AKI = issuer SKI', () => {
    const der = buildLeafCertificate({
      issuer: h.issuer,
      subjectPublicKey: ecKey().publicKey,
      sans: ['a.internal'],
      profile: BUILTIN_PROFILES['server-client'],
      clock,
    }).der;
    assert.deepEqual(ext(der, 'extKeyUsage')!.purposes, [
      EXT_KEY_USAGES.serverAuth,
      EXT_KEY_USAGES.clientAuth,
    ]);
    assert.deepEqual(ext(der, 'basicConstraints'), { kind: 'basicConstraints', critical: true, ca: false });
    assert.ok(ext(der, 'subjectKeyIdentifier'));
    assert.deepEqual(
      ext(der, 'authorityKeyIdentifier')!.keyId,
      ext(h.inter.der, 'subjectKeyIdentifier')!.keyId,
    );
    assert.equal(ext(der, 'crlDistributionPoints'), undefined, 'no URLs configured: no CRL DP');
    assert.equal(ext(der, 'authorityInfoAccess'), undefined);
  });

  test('CN is the first DNS/IP SAN when it fits; otherwise the subject is empty and the SAN critical', () => {
    const long = `${'a'.repeat(60)}.internal`;
    const a = parseCertificate(
      buildLeafCertificate({
        issuer: h.issuer,
        subjectPublicKey: ecKey().publicKey,
        sans: ['10.0.0.7', 'b.internal'],
        profile: BUILTIN_PROFILES.server,
        clock,
      }).der,
    );
    assert.equal(commonNameOf(a.subject), '10.0.0.7');
    const b = buildLeafCertificate({
      issuer: h.issuer,
      subjectPublicKey: ecKey().publicKey,
      sans: [long],
      profile: BUILTIN_PROFILES.server,
      clock,
    });
    assert.equal(parseCertificate(b.der).subject.rdns.length, 0);
    assert.equal(ext(b.der, 'subjectAltName')!.critical, true);
    const c = buildLeafCertificate({
      issuer: h.issuer,
      subjectPublicKey: ecKey().publicKey,
      sans: ['URI:spiffe://cluster.local/ns/a'],
      profile: BUILTIN_PROFILES.client,
      clock,
    });
    assert.equal(parseCertificate(c.der).subject.rdns.length, 0);
  });

  test('a caller subject keeps its attributes; a CN that is not a SAN fails lint', () => {
    const cert = parseCertificate(
      buildLeafCertificate({
        issuer: h.issuer,
        subjectPublicKey: ecKey().publicKey,
        subject: { organization: 'Example', country: 'DE' },
        sans: ['a.internal'],
        profile: BUILTIN_PROFILES.server,
        clock,
      }).der,
    );
    assert.deepEqual(
      cert.subject.rdns.flat().map((a) => `${a.type}=${a.value}`),
      ['C=DE', 'O=Example', 'CN=a.internal'],
    );
    assert.throws(
      () =>
        buildLeafCertificate({
          issuer: h.issuer,
          subjectPublicKey: ecKey().publicKey,
          subject: { commonName: 'b.internal' },
          sans: ['a.internal'],
          profile: BUILTIN_PROFILES.server,
          clock,
        }),
      (e) => isAppError(e, 'LINT_FAILED') && e.details.rule === 'subject_cn_in_san',
    );
  });

  test('AIA and CRL DP when URLs are configured', () => {
    const der = buildLeafCertificate({
      issuer: h.issuer,
      subjectPublicKey: ecKey().publicKey,
      sans: ['a.internal'],
      profile: BUILTIN_PROFILES.server,
      clock,
      urls: {
        crl: 'http://pki.internal/crl/default.crl',
        ocsp: 'http://pki.internal/ocsp/default',
        caIssuers: 'http://pki.internal/ca/default.crt',
      },
    }).der;
    assert.deepEqual(ext(der, 'crlDistributionPoints')!.uris, ['http://pki.internal/crl/default.crl']);
    assert.deepEqual(ext(der, 'authorityInfoAccess'), {
      kind: 'authorityInfoAccess',
      critical: false,
      ocsp: ['http://pki.internal/ocsp/default'],
      caIssuers: ['http://pki.internal/ca/default.crt'],
    });
  });

  test('a key that does not belong to the issuer certificate is KEY_INVALID', () => {
    assert.throws(
      () =>
        buildLeafCertificate({
          issuer: { certificate: h.inter.der, key: ecKey().privateKey },
          subjectPublicKey: ecKey().publicKey,
          sans: ['a.internal'],
          profile: BUILTIN_PROFILES.server,
          clock,
        }),
      (e) => isAppError(e, 'KEY_INVALID'),
    );
  });
});

describe('signing CSRs', () => {
  test('only the names are taken from the CSR; requested extensions are ignored', () => {
    const k = ecKey();
    const csr = buildCsr({
      subject: { commonName: 'cn.internal', organization: 'Evil Corp' },
      sans: [{ type: 'dns', value: 'a.internal' }],
      privateKey: k.privateKey,
    });
    const leaf = buildLeafFromCsr({ issuer: h.issuer, csr, profile: BUILTIN_PROFILES.server, clock });
    const cert = parseCertificate(leaf.der);
    assert.deepEqual(ext(leaf.der, 'subjectAltName')!.names, [
      { type: 'dns', value: 'cn.internal' },
      { type: 'dns', value: 'a.internal' },
    ]);
    assert.deepEqual(
      cert.subject.rdns.flat().map((a) => a.type),
      ['CN'],
      'the requester’s O is not copied',
    );
    assert.ok(cert.publicKey.equals(k.publicKey));
  });

  test('a CSR CN that is not a host name is ignored; one that repeats a SAN is not doubled', () => {
    const k = ecKey();
    const csr = buildCsr({
      subject: { commonName: 'Payments Service' },
      sans: [{ type: 'dns', value: 'pay.internal' }],
      privateKey: k.privateKey,
    });
    const leaf = buildLeafFromCsr({ issuer: h.issuer, csr, profile: BUILTIN_PROFILES.server, clock });
    assert.deepEqual(leaf.names, [{ type: 'dns', value: 'pay.internal' }]);
    const again = buildCsr({
      subject: { commonName: 'PAY.internal' },
      sans: [{ type: 'dns', value: 'pay.internal' }],
      privateKey: k.privateKey,
    });
    assert.deepEqual(
      buildLeafFromCsr({ issuer: h.issuer, csr: again, profile: BUILTIN_PROFILES.server, clock }).names,
      [{ type: 'dns', value: 'pay.internal' }],
    );
  });

  test('a CSR asking for CA:TRUE, keyCertSign and codeSigning gets the profile’s leaf', () => {
    const k = ecKey();
    const csr = buildCsr({
      subject: { commonName: 'a.internal' },
      extensions: [
        { kind: 'basicConstraints', critical: true, ca: true },
        { kind: 'keyUsage', critical: true, usages: ['keyCertSign', 'digitalSignature'] },
        { kind: 'extKeyUsage', critical: false, purposes: [EXT_KEY_USAGES.codeSigning] },
      ],
      privateKey: k.privateKey,
    });
    const leaf = buildLeafFromCsr({ issuer: h.issuer, csr, profile: BUILTIN_PROFILES.server, clock });
    assert.equal(ext(leaf.der, 'basicConstraints')!.ca, false);
    assert.deepEqual(ext(leaf.der, 'keyUsage')!.usages, ['digitalSignature']);
    assert.deepEqual(ext(leaf.der, 'extKeyUsage')!.purposes, [EXT_KEY_USAGES.serverAuth]);
  });

  test('names outside the profile are refused; a bad CSR is CSR_INVALID', () => {
    const k = ecKey();
    const p: Profile = {
      ...BUILTIN_PROFILES.server,
      names: { ...BUILTIN_PROFILES.server.names, dns: ['*.svc.internal'] },
    };
    const csr = buildCsr({
      subject: {},
      sans: [{ type: 'dns', value: 'evil.example' }],
      privateKey: k.privateKey,
    });
    assert.throws(
      () => buildLeafFromCsr({ issuer: h.issuer, csr, profile: p, clock }),
      (e) => isAppError(e, 'POLICY_VIOLATION') && e.details.san === 'DNS:evil.example',
    );
    assert.throws(
      () => buildLeafFromCsr({ issuer: h.issuer, csr: 'garbage', profile: p, clock }),
      (e) => isAppError(e, 'CSR_INVALID'),
    );
  });
});

describe('CA certificates', () => {
  test('root: self-signed, CA:TRUE critical, keyCertSign+cRLSign critical, SKI, no AKI', () => {
    const k = ecKey();
    const root = createRoot({
      key: k.privateKey,
      subject: { commonName: 'R' },
      lifetimeMs: 3650 * DAY,
      clock,
      pathLen: 1,
    });
    const c = parseCertificate(root.der);
    assert.ok(c.selfIssued && c.verifySignature(k.publicKey));
    assert.deepEqual(ext(root.der, 'basicConstraints'), {
      kind: 'basicConstraints',
      critical: true,
      ca: true,
      pathLen: 1,
    });
    assert.deepEqual(ext(root.der, 'keyUsage'), {
      kind: 'keyUsage',
      critical: true,
      usages: ['keyCertSign', 'cRLSign'],
    });
    assert.equal(ext(root.der, 'authorityKeyIdentifier'), undefined);
  });

  test('intermediate: pathLen 0 by default, validity capped by the root, no sub-CA under pathLen 0', () => {
    const k = ecKey();
    const i = parseCertificate(h.inter.der);
    assert.equal(ext(h.inter.der, 'basicConstraints')!.pathLen, 0);
    assert.ok(i.verifySignature(h.rootKey.publicKey));
    const long = createIntermediate({
      issuer: h.rootIssuer,
      subjectPublicKey: k.publicKey,
      subject: { commonName: 'Long' },
      lifetimeMs: 100 * 365 * DAY,
      clock,
    });
    assert.equal(long.notAfter.getTime(), parseCertificate(h.root.der).notAfter.getTime());
    assert.throws(
      () =>
        createIntermediate({
          issuer: h.issuer,
          subjectPublicKey: k.publicKey,
          subject: { commonName: 'Sub' },
          lifetimeMs: DAY,
          clock,
        }),
      (e) => isAppError(e, 'LINT_FAILED') && e.details.rule === 'issuer_path_length',
    );
  });

  test('a leaf cannot issue: its certificate is not a CA', () => {
    const lk = ecKey();
    const leaf = buildLeafCertificate({
      issuer: h.issuer,
      subjectPublicKey: lk.publicKey,
      sans: ['a.internal'],
      profile: BUILTIN_PROFILES.server,
      clock,
    });
    assert.throws(
      () =>
        buildLeafCertificate({
          issuer: { certificate: leaf.der, key: lk.privateKey },
          subjectPublicKey: ecKey().publicKey,
          sans: ['b.internal'],
          profile: BUILTIN_PROFILES.server,
          clock,
        }),
      (e) => isAppError(e, 'LINT_FAILED') && e.details.rule === 'issuer_is_ca',
    );
  });
});
