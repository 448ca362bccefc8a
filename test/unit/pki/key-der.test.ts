import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type KeyObject } from 'node:crypto';
import { generateKeyPairSync } from '../../helpers/keys.js';
import { pkcs8FromJwk, spkiFromJwk } from '../../../src/pki/key-der.js';
import { describeKey, keysMatch, publicKeyOf, spkiOf } from '../../../src/pki/algorithms.js';

const makers: Record<string, () => { privateKey: KeyObject; publicKey: KeyObject }> = {
  'P-256': () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  'P-384': () => generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  Ed25519: () => generateKeyPairSync('ed25519'),
  X25519: () => generateKeyPairSync('x25519'),
};

describe('SPKI from a JWK', () => {
  for (const [name, make] of Object.entries(makers)) {
    test(`${name}: byte for byte what node:crypto (OpenSSL) exports, over 200 keys`, () => {
      for (let i = 0; i < 200; i++) {
        const { publicKey } = make();
        assert.deepEqual(
          spkiFromJwk(publicKey.export({ format: 'jwk' })),
          publicKey.export({ type: 'spki', format: 'der' }),
        );
      }
    });
  }

  test('RSA, unknown curves and malformed members fall back (undefined)', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    assert.equal(spkiFromJwk(rsa.publicKey.export({ format: 'jwk' })), undefined);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    assert.equal(spkiFromJwk({ ...ec, crv: 'secp256k1' }), undefined);
    assert.equal(spkiFromJwk({ ...ec, x: ec.x!.slice(2) }), undefined, 'a short coordinate');
    assert.equal(spkiFromJwk({ kty: 'EC', crv: 'P-256', x: ec.x! }), undefined, 'no y');
  });
});

describe('PKCS#8 from a private JWK', () => {
  for (const name of ['P-256', 'P-384', 'Ed25519']) {
    test(`${name}: byte for byte what node:crypto (OpenSSL) exports, over 200 keys`, () => {
      for (let i = 0; i < 200; i++) {
        const { privateKey } = makers[name]!();
        assert.deepEqual(
          pkcs8FromJwk(privateKey.export({ format: 'jwk' })),
          privateKey.export({ type: 'pkcs8', format: 'der' }),
        );
      }
    });
  }

  test('X25519, RSA, public keys, unknown curves and malformed scalars fall back (undefined)', () => {
    assert.equal(pkcs8FromJwk(makers.X25519!().privateKey.export({ format: 'jwk' })), undefined);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    assert.equal(pkcs8FromJwk(rsa.privateKey.export({ format: 'jwk' })), undefined);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    const { d: _d, ...publicOnly } = ec;
    assert.equal(pkcs8FromJwk(publicOnly), undefined, 'a public key');
    assert.equal(pkcs8FromJwk({ ...ec, crv: 'secp256k1' }), undefined);
    assert.equal(pkcs8FromJwk({ ...ec, d: ec.d!.slice(4) }), undefined, 'a short scalar');
    const { y: _y, ...noY } = ec;
    assert.equal(pkcs8FromJwk(noY), undefined, 'no y');
  });
});

describe('describeKey', () => {
  test('EC public keys: the curve from the JWK; curves a JWK cannot name fall back to OpenSSL', () => {
    const pub = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve }).publicKey;
    assert.deepEqual(describeKey(pub('P-256')), {
      family: 'ec',
      curve: 'P-256',
      certKeyType: 'ec-p256',
      label: 'ec-p256',
    });
    assert.equal(describeKey(pub('P-384')).certKeyType, 'ec-p384');
    assert.deepEqual(describeKey(pub('secp256k1')), {
      family: 'ec',
      curve: 'secp256k1',
      label: 'ec-secp256k1',
    });
    assert.equal(describeKey(pub('brainpoolP256r1')).label, 'ec-brainpoolP256r1');
    // a private key is described without a JWK (its scalar would land in a string)
    const priv = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    assert.equal(describeKey(priv).certKeyType, 'ec-p256');
  });
});

describe('spkiOf and publicKeyOf', () => {
  test('a private key and its publicKeyOf share one SPKI, encoded once; both match what OpenSSL exports', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pub = publicKeyOf(privateKey);
    assert.equal(publicKeyOf(privateKey), pub, 'one public KeyObject per private key');
    assert.equal(publicKeyOf(publicKey), publicKey);
    const proto = Object.getPrototypeOf(pub) as { export: (...a: unknown[]) => unknown };
    const original = proto.export;
    let exports = 0;
    proto.export = function (this: KeyObject, ...a: unknown[]) {
      exports += 1;
      return original.apply(this, a);
    };
    try {
      const fromPrivate = spkiOf(privateKey);
      const fromPublic = spkiOf(pub);
      assert.equal(fromPublic, fromPrivate);
      assert.equal(exports, 1, 'the public half was exported once');
    } finally {
      proto.export = original;
    }
    assert.deepEqual(spkiOf(privateKey).der, publicKey.export({ type: 'spki', format: 'der' }));
    assert.ok(keysMatch(privateKey, publicKey));
    assert.ok(!keysMatch(privateKey, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey));
  });
});
