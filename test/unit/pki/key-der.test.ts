import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { pkcs8FromJwk, spkiFromJwk } from '../../../src/pki/key-der.js';

const makers: Record<string, () => { privateKey: KeyObject; publicKey: KeyObject }> = {
  'P-256': () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  'P-384': () => generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  Ed25519: () => generateKeyPairSync('ed25519'),
  X25519: () => generateKeyPairSync('x25519'),
};

describe('SPKI and PKCS#8 from a JWK', () => {
  for (const [name, make] of Object.entries(makers)) {
    test(`${name}: byte for byte what node:crypto (OpenSSL) exports, over 200 keys`, () => {
      for (let i = 0; i < 200; i++) {
        const { privateKey, publicKey } = make();
        assert.deepEqual(
          spkiFromJwk(publicKey.export({ format: 'jwk' })),
          publicKey.export({ type: 'spki', format: 'der' }),
        );
        assert.deepEqual(
          pkcs8FromJwk(privateKey.export({ format: 'jwk' })),
          privateKey.export({ type: 'pkcs8', format: 'der' }),
        );
      }
    });
  }

  test('RSA, unknown curves and malformed members fall back (undefined)', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    assert.equal(spkiFromJwk(rsa.publicKey.export({ format: 'jwk' })), undefined);
    assert.equal(pkcs8FromJwk(rsa.privateKey.export({ format: 'jwk' })), undefined);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    assert.equal(spkiFromJwk({ ...ec, crv: 'secp256k1' }), undefined);
    assert.equal(pkcs8FromJwk({ ...ec, d: ec.d!.slice(2) }), undefined, 'a short scalar');
    assert.equal(spkiFromJwk({ kty: 'EC', crv: 'P-256', x: ec.x! }), undefined, 'no y');
  });
});
