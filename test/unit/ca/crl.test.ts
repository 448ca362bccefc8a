import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import type { CrlEntry } from '../../../src/ca/crl.js';
import { buildCrl } from '../../../src/ca/crl.js';
import { signatureAlgorithmFor } from '../../../src/pki/algorithms.js';
import type { TbsCertificate } from '../../../src/pki/certificate.js';
import { parseCertificate, signCertificate } from '../../../src/pki/certificate.js';
import { encodeName, parseName } from '../../../src/pki/name.js';
import { parseCrl, verifyCrlSignature } from '../../../src/pki/crl.js';
import { buildHierarchy, DAY, ecKey } from '../../fixtures/pki-ca.js';

const clock = new FakeClock(Date.UTC(2026, 4, 5, 6, 7, 8, 900));
const h = buildHierarchy(clock);
const inter = parseCertificate(h.inter.der);

test('CRL v2: issuer, times, entries with reason codes (none for unspecified), CRL number, AKI, signature', () => {
  const crl = buildCrl({
    issuer: h.issuer,
    entries: [
      { serialHex: 'ab'.repeat(16), revokedAt: new Date(Date.UTC(2026, 4, 1)), reason: 'keyCompromise' },
      { serialHex: '0f', revokedAt: new Date(Date.UTC(2026, 4, 2)), reason: 'unspecified' },
      { serialHex: '1234', revokedAt: new Date(Date.UTC(2051, 0, 1)) },
      { serialHex: 'AB01', revokedAt: new Date(Date.UTC(2026, 4, 3)), reason: 'superseded' },
    ],
    crlNumber: 42,
    clock,
    validityMs: 7 * DAY,
  });
  const p = parseCrl(crl.pem);
  assert.equal(p.version, 2);
  assert.equal(p.signatureAlgorithm?.name, 'ecdsa-with-SHA256');
  assert.ok(p.issuer.der.equals(inter.subject.der));
  assert.equal(p.thisUpdate.toISOString(), '2026-05-05T06:07:08.000Z');
  assert.equal(p.nextUpdate?.toISOString(), '2026-05-12T06:07:08.000Z');
  assert.equal(p.crlNumber, 42n);
  assert.ok(
    p.authorityKeyId?.equals(
      (inter.extensions.find((e) => e.kind === 'subjectKeyIdentifier') as { keyId: Buffer }).keyId,
    ),
  );
  assert.deepEqual(p.entries, [
    { serialHex: 'ab'.repeat(16), revokedAt: new Date(Date.UTC(2026, 4, 1)), reason: 'keyCompromise' },
    { serialHex: '0f', revokedAt: new Date(Date.UTC(2026, 4, 2)) },
    { serialHex: '1234', revokedAt: new Date(Date.UTC(2051, 0, 1)) },
    { serialHex: 'ab01', revokedAt: new Date(Date.UTC(2026, 4, 3)), reason: 'superseded' },
  ]);
  assert.ok(verifyCrlSignature(p, inter.publicKey));
  assert.ok(!verifyCrlSignature(p, h.rootKey.publicKey));
  assert.equal(crl.count, 4);
});

test('an empty CRL omits revokedCertificates (RFC 5280 §5.1.2.6)', () => {
  const crl = buildCrl({ issuer: h.issuer, entries: [], crlNumber: 1, clock, validityMs: DAY });
  const p = parseCrl(crl.der);
  assert.deepEqual(p.entries, []);
  assert.ok(verifyCrlSignature(p, inter.publicKey));
});

test('bad entries are REVOCATION_INVALID; a CA without cRLSign cannot sign a CRL', () => {
  const bad = (entries: Parameters<typeof buildCrl>[0]['entries']): void =>
    assert.throws(
      () => buildCrl({ issuer: h.issuer, entries, crlNumber: 1, clock, validityMs: DAY }),
      (e) => isAppError(e, 'REVOCATION_INVALID'),
    );
  bad([{ serialHex: 'xyz', revokedAt: new Date() }]);
  bad([{ serialHex: 'ab'.repeat(21), revokedAt: new Date() }]);
  bad([{ serialHex: 'ab', revokedAt: new Date(NaN) }]);
  bad([{ serialHex: 'ab', revokedAt: new Date(), reason: 'removeFromCRL' }]);
  assert.throws(
    () => buildCrl({ issuer: h.issuer, entries: [], crlNumber: -1, clock, validityMs: DAY }),
    (e) => isAppError(e, 'REVOCATION_INVALID'),
  );

  // a self-signed CA whose KeyUsage lacks cRLSign, signed through the pki seam (no lint)
  const k = ecKey();
  const name = parseName(encodeName({ commonName: 'No CRL CA' }));
  const tbs: TbsCertificate = {
    serialNumber: Buffer.from('7f' + '11'.repeat(15), 'hex'),
    signatureAlgorithm: signatureAlgorithmFor(k.privateKey),
    issuer: name,
    notBefore: new Date(Date.UTC(2026, 0, 1)),
    notAfter: new Date(Date.UTC(2027, 0, 1)),
    subject: name,
    subjectPublicKey: k.publicKey,
    extensions: [
      { kind: 'basicConstraints', critical: true, ca: true },
      { kind: 'keyUsage', critical: true, usages: ['keyCertSign'] },
    ],
  };
  const noCrlSign = { certificate: signCertificate(tbs, k.privateKey), key: k.privateKey };
  assert.throws(
    () => buildCrl({ issuer: noCrlSign, entries: [], crlNumber: 1, clock, validityMs: DAY }),
    (e) => isAppError(e, 'LINT_FAILED') && e.details.rule === 'issuer_crl_sign',
  );
});

test('100 000 entries encode and parse back exactly', () => {
  const entries: CrlEntry[] = Array.from({ length: 100_000 }, (_, i) => ({
    serialHex: (0x10000000 + i).toString(16) + 'ab'.repeat(12),
    revokedAt: new Date(Date.UTC(2026, 0, 1) + i * 1000),
    ...(i % 3 === 0 ? { reason: 'keyCompromise' as const } : {}),
  }));
  const crl = buildCrl({ issuer: h.issuer, entries, crlNumber: 9, clock, validityMs: DAY });
  const p = parseCrl(crl.der);
  assert.equal(p.entries.length, 100_000);
  assert.deepEqual(p.entries[99_999], {
    serialHex: entries[99_999]!.serialHex,
    revokedAt: entries[99_999]!.revokedAt,
    reason: 'keyCompromise',
  });
  assert.deepEqual(p.entries[1], { serialHex: entries[1]!.serialHex, revokedAt: entries[1]!.revokedAt });
  assert.ok(verifyCrlSignature(p, inter.publicKey));
});
