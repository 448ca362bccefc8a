import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from '../../helpers/keys.js';
import { createSecureContext } from 'node:tls';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { buildLeafCertificate } from '../../../src/ca/issue.js';
import { BUILTIN_PROFILES } from '../../../src/ca/profiles.js';
import { parseDer, readOid } from '../../../src/pki/der-reader.js';
import { buildPkcs12 } from '../../../src/pki/pkcs12.js';
import { buildHierarchy } from '../../fixtures/pki-ca.js';

const clock = new FakeClock(Date.now());

function bundle(password = 'correct horse') {
  const h = buildHierarchy(clock);
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const leaf = buildLeafCertificate({
    issuer: h.issuer,
    subjectPublicKey: key.publicKey,
    sans: ['web.internal'],
    profile: BUILTIN_PROFILES.server,
    clock,
  });
  return {
    h,
    key,
    leaf,
    p12: buildPkcs12({
      privateKey: key.privateKey,
      certificate: leaf.der,
      chain: [h.inter.der],
      password,
      friendlyName: 'web',
    }),
  };
}

test('OpenSSL (through node:tls) opens the bundle with the password and refuses a wrong one', () => {
  const { p12 } = bundle();
  assert.doesNotThrow(() => createSecureContext({ pfx: p12, passphrase: 'correct horse' }));
  assert.throws(
    () => createSecureContext({ pfx: p12, passphrase: 'wrong' }),
    /mac verify failure|invalid password/i,
  );
});

test('PFX v3 whose MAC is HMAC-SHA256 and whose bags use PBES2', () => {
  const { p12 } = bundle();
  const [version, , macData] = parseDer(p12, 'pfx').children();
  assert.equal(version!.content[0], 3);
  const digestAlg = macData!.children()[0]!.children()[0]!.children()[0]!;
  assert.equal(readOid(digestAlg), '2.16.840.1.101.3.4.2.1');
  const text = p12.toString('hex');
  assert.ok(text.includes('06092a864886f70d01050d'), 'PBES2 OID present');
  assert.equal(
    text.split('060960864801650304012a').length - 1,
    2,
    'AES-256-CBC for the certificates and the key',
  );
  assert.ok(!text.includes('2a864886f70d010c0103'), 'no legacy pbeWithSHAAnd3-KeyTripleDES');
});

test('refuses an empty password and a key that is not the certificate’s', () => {
  const { leaf } = bundle();
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  assert.throws(
    () => buildPkcs12({ privateKey: other.privateKey, certificate: leaf.der, password: 'x' }),
    (e) => isAppError(e, 'KEY_INVALID'),
  );
  assert.throws(
    () => buildPkcs12({ privateKey: other.privateKey, certificate: leaf.der, password: '' }),
    (e) => isAppError(e, 'INVALID_ARGUMENT'),
  );
});
