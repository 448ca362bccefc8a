/**
 * CSRs across the seam with openssl: keywright parses and verifies what `openssl req` makes for every
 * key type and signs it into a chain openssl verifies; openssl verifies the CSRs keywright builds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { buildLeafFromCsr } from '../../../src/ca/issue.js';
import { BUILTIN_PROFILES } from '../../../src/ca/profiles.js';
import { buildCsr, csrToPem, parseCsr } from '../../../src/pki/csr.js';
import { decodePem } from '../../../src/pki/pem.js';
import { buildHierarchy, ecKey } from '../../fixtures/pki-ca.js';
import { requirePeer, runPeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';

const NEWKEY: Record<string, string[]> = {
  'ec-p256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'ec-p384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  'rsa-2048': ['-newkey', 'rsa:2048'],
  ed25519: ['-newkey', 'ed25519'],
};

test('openssl req CSRs of every key type are verified, vetted and signed into chains openssl accepts', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const dir = await tempDir(t);
  const f = (n: string): string => join(dir, n);
  const h = buildHierarchy(systemClock);
  await writeFile(f('root.pem'), h.root.pem);
  await writeFile(f('inter.pem'), h.inter.pem);
  for (const [type, newkey] of Object.entries(NEWKEY)) {
    const gen = runPeer('openssl', [
      'req',
      '-new',
      ...newkey,
      '-nodes',
      '-keyout',
      f(`${type}.key`),
      '-out',
      f(`${type}.csr`),
      '-subj',
      `/CN=${type}.internal/O=Requester`,
      '-addext',
      `subjectAltName=DNS:${type}.internal,IP:10.0.0.9`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
    ]);
    assert.equal(gen.status, 0, gen.stderr);
    const pem = await readFile(f(`${type}.csr`), 'utf8');
    const csr = parseCsr(pem);
    assert.deepEqual(csr.requestedNames, [
      { type: 'dns', value: `${type}.internal` },
      { type: 'ip', value: '10.0.0.9' },
    ]);
    assert.ok(csr.requestedExtensions.some((e) => e.kind === 'basicConstraints' && e.ca));
    const leaf = buildLeafFromCsr({
      issuer: h.issuer,
      csr: pem,
      profile: BUILTIN_PROFILES.server,
      clock: systemClock,
    });
    await writeFile(f(`${type}.pem`), leaf.pem);
    const v = runPeer('openssl', [
      'verify',
      '-CAfile',
      f('root.pem'),
      '-untrusted',
      f('inter.pem'),
      f(`${type}.pem`),
    ]);
    assert.equal(v.status, 0, `${type}: ${v.stdout}${v.stderr}`);
    const text = runPeer('openssl', ['x509', '-in', f(`${type}.pem`), '-noout', '-text']).stdout;
    assert.match(text, /CA:FALSE/, 'the requested CA:TRUE was not copied');
    assert.doesNotMatch(text, /Requester/, 'the requested O was not copied');
    // the certified key is the one openssl generated
    const certKey = runPeer('openssl', ['x509', '-in', f(`${type}.pem`), '-noout', '-pubkey']).stdout;
    const fromKey = runPeer('openssl', ['pkey', '-in', f(`${type}.key`), '-pubout']).stdout;
    assert.equal(certKey, fromKey);
  }

  // a CSR whose body was altered after signing
  const raw = decodePem(await readFile(f('ec-p256.csr'), 'utf8'), 'CERTIFICATE REQUEST');
  raw[raw.indexOf(Buffer.from('ec-p256.internal'))] = 'x'.charCodeAt(0);
  assert.throws(
    () => parseCsr(raw),
    (e) => isAppError(e, 'CSR_INVALID'),
  );
});

test('openssl req -verify accepts the CSRs keywright builds', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const dir = await tempDir(t);
  const key = ecKey();
  const csr = buildCsr({
    subject: { commonName: 'web.internal' },
    sans: [
      { type: 'dns', value: 'web.internal' },
      { type: 'ip', value: 'fd00::1' },
    ],
    privateKey: key.privateKey,
  });
  await writeFile(join(dir, 'k.csr'), csrToPem(csr));
  const r = runPeer('openssl', ['req', '-in', join(dir, 'k.csr'), '-verify', '-noout', '-text']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr + r.stdout, /verify OK|Certificate request self-signature verify OK/);
  assert.match(r.stdout, /DNS:web\.internal, IP Address:FD00:0:0:0:0:0:0:1/);
});
