/**
 * keywright's PKCS#12 bundles opened by OpenSSL 3 without -legacy: the MAC and encryption are the modern
 * ones, and extraction yields the same certificate, chain and key. The password goes to openssl on stdin.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../../../src/core/clock.js';
import { buildLeafCertificate } from '../../../src/ca/issue.js';
import { BUILTIN_PROFILES } from '../../../src/ca/profiles.js';
import { parseCertificate } from '../../../src/pki/certificate.js';
import type { CertKeyType } from '../../../src/pki/key-spec.js';
import { decodePemBlocks } from '../../../src/pki/pem.js';
import { buildPkcs12 } from '../../../src/pki/pkcs12.js';
import type { KeyPair } from '../../fixtures/pki-ca.js';
import { buildHierarchy, newKeyPair } from '../../fixtures/pki-ca.js';
import { requirePeer, runPeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';

const TYPES: CertKeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'];
const keys = new Map<CertKeyType, KeyPair>();
const PASSWORD = 'bündle pass 7';

before(async () => {
  await Promise.all(TYPES.map(async (t) => keys.set(t, await newKeyPair(t))));
});

for (const type of TYPES) {
  test(`${type}: openssl pkcs12 opens the bundle and yields the same certificate, chain and key`, async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const dir = await tempDir(t);
    const h = buildHierarchy(systemClock);
    const key = keys.get(type)!;
    const leaf = buildLeafCertificate({
      issuer: h.issuer,
      subjectPublicKey: key.publicKey,
      sans: ['web.internal'],
      profile: BUILTIN_PROFILES.server,
      clock: systemClock,
    });
    const p12 = buildPkcs12({
      privateKey: key.privateKey,
      certificate: leaf.der,
      chain: [h.inter.der],
      password: PASSWORD,
      friendlyName: 'web',
    });
    const file = join(dir, 'bundle.p12');
    await writeFile(file, p12);

    const info = runPeer(
      'openssl',
      ['pkcs12', '-in', file, '-info', '-noout', '-passin', 'stdin'],
      `${PASSWORD}\n`,
    );
    assert.equal(info.status, 0, info.stderr);
    assert.match(info.stderr, /MAC: sha256/);
    assert.match(
      info.stderr,
      /PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration \d+, PRF hmacWithSHA256/,
    );
    assert.match(
      info.stderr,
      /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration \d+, PRF hmacWithSHA256/,
    );

    const out = runPeer('openssl', ['pkcs12', '-in', file, '-nodes', '-passin', 'stdin'], `${PASSWORD}\n`);
    assert.equal(out.status, 0, out.stderr);
    const certs = decodePemBlocks(
      out.stdout.replace(/-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----\n?/, ''),
      'CERTIFICATE',
    );
    assert.deepEqual(
      certs.map((c) => parseCertificate(c).serialHex),
      [leaf.serialHex, parseCertificate(h.inter.der).serialHex],
    );
    assert.match(out.stdout, /friendlyName: web/);
    const pem = /-----BEGIN PRIVATE KEY-----[\s\S]*?-----END PRIVATE KEY-----\n/.exec(out.stdout)?.[0];
    assert.ok(pem, 'a key came out');
    const extracted = createPrivateKey(pem);
    assert.ok(extracted.equals(key.privateKey), 'the same private key');

    const wrong = runPeer(
      'openssl',
      ['pkcs12', '-in', file, '-info', '-noout', '-passin', 'stdin'],
      'wrong\n',
    );
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /Mac verify error/);
  });
}
