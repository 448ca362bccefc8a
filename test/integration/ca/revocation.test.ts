/**
 * Revocation checked by openssl: keywright's CRL makes `openssl verify -crl_check` reject a revoked leaf
 * and accept a good one; keywright's OCSP responder answers requests `openssl ocsp -reqout` wrote, and
 * `openssl ocsp -respin` reads good / revoked (with reason) / unknown, verifies the signature and the nonce.
 * openssl ocsp exits 0 whatever the status, so its text is what is checked.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../../../src/core/clock.js';
import { buildCrl } from '../../../src/ca/crl.js';
import { buildLeafCertificate } from '../../../src/ca/issue.js';
import type { OcspResponder, OcspStatus } from '../../../src/ca/ocsp.js';
import { createOcspResponder, createOcspSigner } from '../../../src/ca/ocsp.js';
import { BUILTIN_PROFILES } from '../../../src/ca/profiles.js';
import type { CertKeyType } from '../../../src/pki/key-spec.js';
import type { KeyPair, TestHierarchy } from '../../fixtures/pki-ca.js';
import { buildHierarchy, DAY, newKeyPair } from '../../fixtures/pki-ca.js';
import { requirePeer, runPeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';

const TYPES: CertKeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'];
const keys = new Map<CertKeyType, KeyPair[]>();

before(async () => {
  await Promise.all(
    TYPES.map(async (t) => keys.set(t, await Promise.all([newKeyPair(t), newKeyPair(t), newKeyPair(t)]))),
  );
});

interface Setup {
  dir: string;
  f: (name: string) => string;
  h: TestHierarchy;
  goodSerial: string;
  revokedSerial: string;
  revokedAt: Date;
}

async function setup(t: Parameters<typeof tempDir>[0], type: CertKeyType): Promise<Setup> {
  const [rootKey, interKey, leafKey] = keys.get(type)!;
  const h = buildHierarchy(systemClock, { rootKey: rootKey!, interKey: interKey! });
  const dir = await tempDir(t);
  const f = (n: string): string => join(dir, n);
  const issue = (san: string) =>
    buildLeafCertificate({
      issuer: h.issuer,
      subjectPublicKey: leafKey!.publicKey,
      sans: [san],
      profile: BUILTIN_PROFILES.server,
      clock: systemClock,
      urls: { crl: 'http://127.0.0.1/crl/default.crl', ocsp: 'http://127.0.0.1/ocsp/default' },
    });
  const good = issue('good.internal');
  const revoked = issue('revoked.internal');
  await writeFile(f('root.pem'), h.root.pem);
  await writeFile(f('inter.pem'), h.inter.pem);
  await writeFile(f('good.pem'), good.pem);
  await writeFile(f('revoked.pem'), revoked.pem);
  return {
    dir,
    f,
    h,
    goodSerial: good.serialHex,
    revokedSerial: revoked.serialHex,
    revokedAt: new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000),
  };
}

describe('CRL checked by openssl', () => {
  for (const type of TYPES) {
    test(`${type}: a revoked leaf is rejected with the CRL, a good one accepted`, async (t) => {
      if (!requirePeer(t, 'openssl')) return;
      const s = await setup(t, type);
      const crl = buildCrl({
        issuer: s.h.issuer,
        entries: [
          { serialHex: s.revokedSerial, revokedAt: s.revokedAt, reason: 'keyCompromise' },
          { serialHex: 'abcdef0123456789', revokedAt: s.revokedAt },
        ],
        crlNumber: 17,
        clock: systemClock,
        validityMs: 7 * DAY,
      });
      await writeFile(s.f('inter.crl'), crl.pem);
      await writeFile(s.f('inter.crl.der'), crl.der);

      const text = runPeer('openssl', ['crl', '-in', s.f('inter.crl'), '-noout', '-text']);
      assert.equal(text.status, 0, text.stderr);
      for (const line of [
        'Version 2 (0x1)',
        'X509v3 CRL Number',
        '17',
        'X509v3 Authority Key Identifier',
        `Serial Number: ${s.revokedSerial.toUpperCase()}`,
        'Key Compromise',
        'Next Update',
      ]) {
        assert.ok(text.stdout.includes(line), `crl text lacks "${line}"\n${text.stdout}`);
      }
      // unspecified: the reason code extension is left out, so only one reason appears
      assert.equal(text.stdout.split('X509v3 CRL Reason Code').length - 1, 1);
      const der = runPeer('openssl', [
        'crl',
        '-inform',
        'DER',
        '-in',
        s.f('inter.crl.der'),
        '-noout',
        '-CAfile',
        s.f('inter.pem'),
        '-verify',
      ]);
      assert.equal(der.status, 0, der.stderr);
      assert.match(der.stderr + der.stdout, /verify OK/);

      const check = (leaf: string) =>
        runPeer('openssl', [
          'verify',
          '-crl_check',
          '-CAfile',
          s.f('root.pem'),
          '-untrusted',
          s.f('inter.pem'),
          '-CRLfile',
          s.f('inter.crl'),
          s.f(leaf),
        ]);
      const ok = check('good.pem');
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
      const bad = check('revoked.pem');
      assert.equal(bad.status, 2, bad.stdout + bad.stderr);
      assert.match(bad.stdout + bad.stderr, /certificate revoked/);
    });
  }
});

function statusOf(s: Setup): (serial: string) => OcspStatus {
  return (serial) =>
    serial === s.goodSerial
      ? { status: 'good' }
      : serial === s.revokedSerial
        ? { status: 'revoked', at: s.revokedAt, reason: 'keyCompromise' }
        : { status: 'unknown' };
}

async function answer(responder: OcspResponder, s: Setup, reqArgs: string[], name: string): Promise<void> {
  const req = runPeer('openssl', ['ocsp', ...reqArgs, '-reqout', s.f(`${name}.req`)]);
  assert.equal(req.status, 0, req.stderr);
  await writeFile(s.f(`${name}.resp`), await responder.respond(await readFile(s.f(`${name}.req`))));
}

describe('OCSP answered by keywright, read by openssl', () => {
  for (const type of TYPES) {
    test(`${type}: good, revoked with reason, unknown; signature and nonce verified`, async (t) => {
      if (!requirePeer(t, 'openssl')) return;
      const s = await setup(t, type);
      const responder = createOcspResponder({
        issuer: s.h.issuer,
        lookup: statusOf(s),
        clock: systemClock,
        validityMs: DAY,
      });
      const issuerArgs = ['-issuer', s.f('inter.pem')];

      await answer(responder, s, [...issuerArgs, '-cert', s.f('good.pem')], 'good');
      // -cert/-serial make openssl build a fresh request (new nonce), so statuses are read with -no_nonce …
      const good = runPeer('openssl', [
        'ocsp',
        ...issuerArgs,
        '-cert',
        s.f('good.pem'),
        '-respin',
        s.f('good.resp'),
        '-CAfile',
        s.f('root.pem'),
        '-no_nonce',
      ]);
      assert.equal(good.status, 0, good.stderr);
      assert.match(good.stderr, /Response verify OK/);
      assert.match(good.stdout, /good\.pem: good/);
      // … and the nonce is checked against the request that was actually sent (-reqin)
      const nonce = runPeer('openssl', [
        'ocsp',
        ...issuerArgs,
        '-reqin',
        s.f('good.req'),
        '-respin',
        s.f('good.resp'),
        '-CAfile',
        s.f('root.pem'),
        '-resp_text',
      ]);
      assert.equal(nonce.status, 0, nonce.stderr);
      assert.match(nonce.stderr, /Response verify OK/);
      assert.match(nonce.stdout, /OCSP Nonce/, 'the nonce openssl sent is echoed');
      assert.doesNotMatch(nonce.stderr + nonce.stdout, /no nonce|nonce verify error/i);

      await answer(responder, s, [...issuerArgs, '-cert', s.f('revoked.pem')], 'revoked');
      const revoked = runPeer('openssl', [
        'ocsp',
        ...issuerArgs,
        '-cert',
        s.f('revoked.pem'),
        '-respin',
        s.f('revoked.resp'),
        '-VAfile',
        s.f('inter.pem'),
        '-no_nonce',
      ]);
      assert.equal(revoked.status, 0, 'openssl ocsp exits 0 even for revoked');
      assert.match(revoked.stderr, /Response verify OK/);
      assert.match(revoked.stdout, /revoked\.pem: revoked/);
      assert.match(revoked.stdout, /Reason: keyCompromise/);
      assert.match(revoked.stdout, /Revocation Time: /);

      await answer(responder, s, [...issuerArgs, '-serial', '0x1234567890abcdef'], 'unknown');
      const unknown = runPeer('openssl', [
        'ocsp',
        ...issuerArgs,
        '-serial',
        '0x1234567890abcdef',
        '-respin',
        s.f('unknown.resp'),
        '-VAfile',
        s.f('inter.pem'),
        '-no_nonce',
      ]);
      assert.match(unknown.stdout, /0x1234567890abcdef: unknown/);

      // a request about the root's certificates is not this responder's business
      await answer(responder, s, ['-issuer', s.f('root.pem'), '-cert', s.f('inter.pem')], 'other');
      const other = runPeer('openssl', ['ocsp', '-respin', s.f('other.resp'), '-resp_text', '-noverify']);
      assert.match(other.stdout + other.stderr, /unauthorized \(6\)/);
    });
  }

  test('a delegated OCSP signer: openssl accepts its signature via the chain; SHA-256 CertIDs match', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const s = await setup(t, 'ec-p256');
    const sk = keys.get('ec-p256')![2]!;
    const signer = createOcspSigner({
      issuer: s.h.issuer,
      subjectPublicKey: sk.publicKey,
      lifetimeMs: 7 * DAY,
      clock: systemClock,
    });
    await writeFile(s.f('ocsp-signer.pem'), signer.pem);
    const text = runPeer('openssl', ['x509', '-in', s.f('ocsp-signer.pem'), '-noout', '-text']);
    assert.match(text.stdout, /OCSP Signing/);
    assert.match(text.stdout, /OCSP No Check/);
    const responder = createOcspResponder({
      issuer: s.h.issuer,
      signer: { certificate: signer.der, key: sk.privateKey },
      lookup: statusOf(s),
      clock: systemClock,
      validityMs: DAY,
    });
    await answer(
      responder,
      s,
      ['-issuer', s.f('inter.pem'), '-sha256', '-cert', s.f('revoked.pem')],
      'deleg',
    );
    const r = runPeer('openssl', [
      'ocsp',
      '-issuer',
      s.f('inter.pem'),
      '-sha256',
      '-cert',
      s.f('revoked.pem'),
      '-respin',
      s.f('deleg.resp'),
      '-CAfile',
      s.f('root.pem'),
      '-resp_text',
      '-no_nonce',
    ]);
    assert.match(r.stderr, /Response verify OK/);
    assert.match(r.stdout, /Hash Algorithm: sha256/);
    assert.match(r.stdout, /revoked\.pem: revoked/);
    assert.match(r.stdout, /Responder Id: [0-9A-F]{40}/);
  });
});
