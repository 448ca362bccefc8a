import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, createSecretKey, diffieHellman, sign, verify } from 'node:crypto';
import { generateKeyPairSync } from '../../helpers/keys.js';
import type { KeyObject } from 'node:crypto';
import { isAppError } from '../../../src/core/errors.js';
import { KEY_SPECS, KEY_TYPES } from '../../../src/pki/key-spec.js';
import type { KeyType } from '../../../src/pki/key-spec.js';
import {
  exportPkcs8Der,
  generateKeyPair,
  importPrivateKey,
  keyTypeOf,
  x25519PrivateKeyFromRaw,
  x25519RawPrivate,
  x25519RawPublic,
} from '../../../src/keys/generate.js';

const message = Buffer.from('keywright test message');

function digestFor(type: KeyType): string | null {
  if (type === 'ed25519') return null; // Ed25519 hashes internally (RFC 8032)
  return type === 'ec-p384' ? 'sha384' : 'sha256';
}

function rejects(code: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isAppError(err), `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

describe('generateKeyPair', () => {
  // All types at once: the RSA ones run side by side on the threadpool.
  const pairs = new Map(KEY_TYPES.map((type) => [type, generateKeyPair(type)]));

  for (const type of KEY_TYPES) {
    test(`${type}: keyTypeOf recognises both halves`, async () => {
      const { privateKey, publicKey } = await pairs.get(type)!;
      assert.equal(privateKey.type, 'private');
      assert.equal(publicKey.type, 'public');
      assert.equal(keyTypeOf(privateKey), type);
      assert.equal(keyTypeOf(publicKey), type);
    });
    if (type === 'x25519') {
      test('x25519: two pairs agree on a shared secret', async () => {
        const alice = await pairs.get('x25519')!;
        const bob = await generateKeyPair('x25519');
        const k1 = diffieHellman({ privateKey: alice.privateKey, publicKey: bob.publicKey });
        const k2 = diffieHellman({ privateKey: bob.privateKey, publicKey: alice.publicKey });
        assert.equal(k1.length, 32);
        assert.deepEqual(k1, k2);
      });
    } else {
      test(`${type}: signs, verifies, and rejects a changed message`, async () => {
        const { privateKey, publicKey } = await pairs.get(type)!;
        const signature = sign(digestFor(type), message, privateKey);
        assert.equal(verify(digestFor(type), message, publicKey, signature), true);
        assert.equal(
          verify(digestFor(type), Buffer.from('keywright test messagE'), publicKey, signature),
          false,
        );
      });
    }
  }

  test('RSA keys have the modulus of their type and public exponent 65537', async () => {
    for (const type of ['rsa-2048', 'rsa-3072', 'rsa-4096'] as const) {
      const { publicKey } = await pairs.get(type)!;
      assert.equal(publicKey.asymmetricKeyDetails?.modulusLength, KEY_SPECS[type].modulusLength);
      assert.equal(publicKey.asymmetricKeyDetails?.publicExponent, 65537n);
    }
  });

  test('RSA generation leaves the event loop free', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      await generateKeyPair('rsa-2048');
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks > 0, 'no timer ran while an RSA-2048 key was generated: generation blocked the loop');
  });

  test('two generated keys differ', async () => {
    const a = exportPkcs8Der((await generateKeyPair('ec-p256')).privateKey);
    const b = exportPkcs8Der((await generateKeyPair('ec-p256')).privateKey);
    assert.notDeepEqual(a, b);
  });
});

describe('keyTypeOf rejects what keywright does not support', () => {
  const cases: [string, () => KeyObject][] = [
    ['RSA-1024', () => generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey],
    [
      'RSA-2048 with e=3',
      () => generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).publicKey,
    ],
    ['RSA-PSS', () => generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey],
    ['secp256k1', () => generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey],
    ['P-521', () => generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey],
    ['Ed448', () => generateKeyPairSync('ed448').privateKey],
    ['X448', () => generateKeyPairSync('x448').privateKey],
    ['an AES key', () => createSecretKey(Buffer.alloc(32, 7))],
  ];
  for (const [name, make] of cases) {
    test(name, () => {
      assert.throws(() => keyTypeOf(make()), rejects('KEY_TYPE_UNSUPPORTED'));
    });
  }
});

describe('importPrivateKey', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  const samePublic = (a: KeyObject, b: KeyObject): void =>
    assert.deepEqual(
      createPublicKey(a).export({ type: 'spki', format: 'der' }),
      createPublicKey(b).export({ type: 'spki', format: 'der' }),
    );

  const forms: [string, KeyObject, () => Buffer | string][] = [
    ['PKCS#8 PEM string', ec.privateKey, () => ec.privateKey.export({ type: 'pkcs8', format: 'pem' })],
    ['SEC1 PEM', ec.privateKey, () => Buffer.from(ec.privateKey.export({ type: 'sec1', format: 'pem' }))],
    ['PKCS#1 PEM', rsa.privateKey, () => rsa.privateKey.export({ type: 'pkcs1', format: 'pem' })],
    ['PKCS#8 DER', ed.privateKey, () => ed.privateKey.export({ type: 'pkcs8', format: 'der' })],
    ['SEC1 DER', ec.privateKey, () => ec.privateKey.export({ type: 'sec1', format: 'der' })],
    ['PKCS#1 DER', rsa.privateKey, () => rsa.privateKey.export({ type: 'pkcs1', format: 'der' })],
    [
      'PEM after explanatory text',
      ec.privateKey,
      () =>
        Buffer.from(
          `Key for web.internal\n${ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()}`,
        ),
    ],
  ];
  for (const [name, original, encode] of forms) {
    test(`reads ${name}`, () => {
      const key = importPrivateKey(encode());
      assert.equal(key.type, 'private');
      samePublic(key, original);
    });
  }

  test('an encrypted key is refused with a hint to decrypt it', () => {
    const pem = ec.privateKey.export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'pw',
    });
    assert.throws(
      () => importPrivateKey(pem),
      (err: unknown) => {
        assert.ok(isAppError(err, 'KEY_INVALID'));
        assert.match(err.message, /encrypted/);
        return true;
      },
    );
  });

  test('a public key, a certificate-like block, garbage and empty input are KEY_INVALID', () => {
    const pub = ec.publicKey.export({ type: 'spki', format: 'pem' });
    assert.throws(() => importPrivateKey(pub), rejects('KEY_INVALID'));
    assert.throws(
      () => importPrivateKey(ec.publicKey.export({ type: 'spki', format: 'der' })),
      rejects('KEY_INVALID'),
    );
    assert.throws(
      () => importPrivateKey('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
      rejects('KEY_INVALID'),
    );
    assert.throws(() => importPrivateKey(Buffer.from('not a key at all')), rejects('KEY_INVALID'));
    assert.throws(() => importPrivateKey(Buffer.alloc(0)), rejects('KEY_INVALID'));
    assert.throws(
      () => importPrivateKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'),
      rejects('KEY_INVALID'),
    );
  });

  test('a well-formed key of an unsupported type is KEY_TYPE_UNSUPPORTED', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    assert.throws(
      () => importPrivateKey(small.export({ type: 'pkcs1', format: 'pem' })),
      rejects('KEY_TYPE_UNSUPPORTED'),
    );
  });

  test('error messages never carry the key', () => {
    const pem = ec.privateKey.export({ type: 'sec1', format: 'pem' }).toString();
    const broken = pem.replace(/\n[A-Za-z0-9+/]{20}/, '\n!!!!');
    const body = pem.split('\n')[1]!;
    assert.throws(
      () => importPrivateKey(broken),
      (err: unknown) => {
        assert.ok(isAppError(err, 'KEY_INVALID'));
        assert.ok(!err.message.includes(body.slice(0, 16)));
        assert.ok(!JSON.stringify(err.details).includes(body.slice(0, 16)));
        return true;
      },
    );
  });

  test('exportPkcs8Der refuses a public key', () => {
    assert.throws(() => exportPkcs8Der(ec.publicKey), rejects('KEY_INVALID'));
  });
});

describe('X25519 (RFC 7748 §6.1 test vectors)', () => {
  // RFC 7748 §6.1: Alice's and Bob's private scalars, their public keys X25519(k, 9), and the shared K.
  const alicePrivate = '77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a';
  const alicePublic = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
  const bobPrivate = '5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb';
  const bobPublic = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
  const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
  const hex = (s: string): Buffer => Buffer.from(s, 'hex');

  test('public keys of the RFC private keys', () => {
    assert.equal(x25519RawPublic(x25519PrivateKeyFromRaw(hex(alicePrivate))).toString('hex'), alicePublic);
    assert.equal(x25519RawPublic(x25519PrivateKeyFromRaw(hex(bobPrivate))).toString('hex'), bobPublic);
  });

  test('both sides compute the RFC shared secret', () => {
    const alice = x25519PrivateKeyFromRaw(hex(alicePrivate));
    const bob = x25519PrivateKeyFromRaw(hex(bobPrivate));
    assert.equal(
      diffieHellman({ privateKey: alice, publicKey: createPublicKey(bob) }).toString('hex'),
      shared,
    );
    assert.equal(
      diffieHellman({ privateKey: bob, publicKey: createPublicKey(alice) }).toString('hex'),
      shared,
    );
  });

  test('raw private bytes round-trip unchanged (the scalar is clamped only when used)', () => {
    assert.equal(x25519RawPrivate(x25519PrivateKeyFromRaw(hex(alicePrivate))).toString('hex'), alicePrivate);
  });

  test('the raw public key of a public KeyObject, and base64 as WireGuard shows it', () => {
    const pub = createPublicKey(x25519PrivateKeyFromRaw(hex(alicePrivate)));
    assert.equal(x25519RawPublic(pub).toString('base64'), hex(alicePublic).toString('base64'));
    assert.equal(x25519RawPublic(pub).toString('base64').length, 44);
  });

  test('wrong lengths and wrong key types are KEY_INVALID', async () => {
    assert.throws(() => x25519PrivateKeyFromRaw(Buffer.alloc(31)), rejects('KEY_INVALID'));
    assert.throws(() => x25519PrivateKeyFromRaw(Buffer.alloc(33)), rejects('KEY_INVALID'));
    const ed = await generateKeyPair('ed25519');
    assert.throws(() => x25519RawPrivate(ed.privateKey), rejects('KEY_INVALID'));
    assert.throws(() => x25519RawPublic(ed.publicKey), rejects('KEY_INVALID'));
    const x = await generateKeyPair('x25519');
    assert.throws(() => x25519RawPrivate(x.publicKey), rejects('KEY_INVALID'));
  });
});
