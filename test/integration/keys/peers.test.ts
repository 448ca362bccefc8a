import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAppError } from '../../../src/core/errors.js';
import {
  exportPkcs8Der,
  generateKeyPair,
  importPrivateKey,
  keyTypeOf,
  x25519PrivateKeyFromRaw,
  x25519RawPrivate,
  x25519RawPublic,
} from '../../../src/keys/generate.js';
import type { KeyType } from '../../../src/pki/key-spec.js';
import { requirePeer, runPeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';

describe('WireGuard keys agree with wg(8)', () => {
  test('a key from `wg genkey` has the public key `wg pubkey` prints', (t) => {
    const wg = requirePeer(t, 'wg', 'wireguard-tools');
    if (!wg) return;
    for (let i = 0; i < 5; i++) {
      const priv = runPeer(wg, ['genkey']).stdout.trim();
      const pub = runPeer(wg, ['pubkey'], `${priv}\n`).stdout.trim();
      const key = x25519PrivateKeyFromRaw(Buffer.from(priv, 'base64'));
      assert.equal(x25519RawPublic(key).toString('base64'), pub);
      assert.equal(x25519RawPrivate(key).toString('base64'), priv);
    }
  });

  test('`wg pubkey` of a key keywright generated is keywright’s public key', async (t) => {
    const wg = requirePeer(t, 'wg', 'wireguard-tools');
    if (!wg) return;
    for (let i = 0; i < 5; i++) {
      const { privateKey, publicKey } = await generateKeyPair('x25519');
      const res = runPeer(wg, ['pubkey'], `${x25519RawPrivate(privateKey).toString('base64')}\n`);
      assert.equal(res.status, 0, res.stderr);
      assert.equal(res.stdout.trim(), x25519RawPublic(publicKey).toString('base64'));
    }
  });
});

/** openssl arguments with the output file: in place of OUT (genrsa wants the size last), or at the end. */
function withOut(args: readonly string[], out: string): string[] {
  return args.includes('OUT') ? args.map((a) => (a === 'OUT' ? out : a)) : [...args, '-out', out];
}

describe('private keys interoperate with openssl', () => {
  const made: [string, KeyType, string[]][] = [
    [
      'genpkey EC P-256 (PKCS#8 PEM)',
      'ec-p256',
      ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    ],
    ['ecparam P-384 (SEC1 PEM)', 'ec-p384', ['ecparam', '-name', 'secp384r1', '-genkey', '-noout']],
    ['genrsa -traditional 2048 (PKCS#1 PEM)', 'rsa-2048', ['genrsa', '-traditional', '-out', 'OUT', '2048']],
    ['genpkey Ed25519 (PKCS#8 DER)', 'ed25519', ['genpkey', '-algorithm', 'ed25519', '-outform', 'DER']],
    ['genpkey X25519 (PKCS#8 PEM)', 'x25519', ['genpkey', '-algorithm', 'X25519']],
    [
      'ecparam P-256 (SEC1 DER)',
      'ec-p256',
      ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-outform', 'DER'],
    ],
  ];
  for (const [name, type, args] of made) {
    test(`imports openssl ${name}`, async (t) => {
      const openssl = requirePeer(t, 'openssl');
      if (!openssl) return;
      const out = join(await tempDir(t), 'key');
      const res = runPeer(openssl, withOut(args, out));
      assert.equal(res.status, 0, res.stderr);
      const key = importPrivateKey(await readFile(out));
      assert.equal(keyTypeOf(key), type);
      // openssl's own idea of the public key must match ours.
      const pub = runPeer(openssl, [
        'pkey',
        '-in',
        out,
        ...(args.includes('DER') ? ['-inform', 'DER'] : []),
        '-pubout',
      ]);
      assert.equal(pub.status, 0, pub.stderr);
      assert.equal(pub.stdout, createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString());
    });
  }

  for (const [name, args] of [
    ['RSA-1024', ['genrsa', '-traditional', '-out', 'OUT', '1024']],
    ['secp256k1', ['ecparam', '-name', 'secp256k1', '-genkey', '-noout']],
  ] as const) {
    test(`refuses openssl ${name} as KEY_TYPE_UNSUPPORTED`, async (t) => {
      const openssl = requirePeer(t, 'openssl');
      if (!openssl) return;
      const out = join(await tempDir(t), 'key');
      assert.equal(runPeer(openssl, withOut(args, out)).status, 0);
      const bytes = await readFile(out);
      assert.throws(
        () => importPrivateKey(bytes),
        (e: unknown) => isAppError(e, 'KEY_TYPE_UNSUPPORTED'),
      );
    });
  }

  for (const type of ['ec-p256', 'rsa-2048', 'ed25519', 'x25519'] as const) {
    test(`openssl reads keywright's PKCS#8 DER of ${type}`, async (t) => {
      const openssl = requirePeer(t, 'openssl');
      if (!openssl) return;
      const { privateKey, publicKey } = await generateKeyPair(type);
      const path = join(await tempDir(t), 'key.der');
      const der = exportPkcs8Der(privateKey);
      await writeFile(path, der, { mode: 0o600 });
      der.fill(0);
      const res = runPeer(openssl, ['pkey', '-inform', 'DER', '-in', path, '-pubout']);
      assert.equal(res.status, 0, res.stderr);
      assert.equal(res.stdout, publicKey.export({ type: 'spki', format: 'pem' }).toString());
    });
  }
});
