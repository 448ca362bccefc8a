/**
 * An intermediate with name constraints: keywright's lint refuses a leaf outside them, and openssl rejects
 * such a leaf when it is built anyway through the pki seam (prepareLeaf + signCertificate, no lint).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { buildLeafCertificate, prepareLeaf } from '../../../src/ca/issue.js';
import { BUILTIN_PROFILES } from '../../../src/ca/profiles.js';
import { certificateToPem, signCertificate } from '../../../src/pki/certificate.js';
import { buildHierarchy, ecKey } from '../../fixtures/pki-ca.js';
import { requirePeer, runPeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';

test('name constraints: inside verifies; outside is refused by lint and rejected by openssl', async (t) => {
  if (!requirePeer(t, 'openssl')) return;
  const dir = await tempDir(t);
  const f = (n: string): string => join(dir, n);
  const h = buildHierarchy(systemClock, {
    nameConstraints: {
      permitted: ['DNS:internal', 'IP:10.0.0.0/8'],
      excluded: ['DNS:secret.internal', 'IP:10.9.0.0/16'],
    },
  });
  await writeFile(f('root.pem'), h.root.pem);
  await writeFile(f('inter.pem'), h.inter.pem);
  const text = runPeer('openssl', ['x509', '-in', f('inter.pem'), '-noout', '-text']);
  assert.match(text.stdout, /X509v3 Name Constraints: critical/);
  assert.match(
    text.stdout,
    /Permitted:\s+DNS:internal\s+IP:10\.0\.0\.0\/255\.0\.0\.0\s+Excluded:\s+DNS:secret\.internal\s+IP:10\.9\.0\.0\/255\.255\.0\.0/,
  );

  const key = ecKey();
  const verify = (name: string) =>
    runPeer('openssl', ['verify', '-CAfile', f('root.pem'), '-untrusted', f('inter.pem'), f(name)]);

  const inside = buildLeafCertificate({
    issuer: h.issuer,
    subjectPublicKey: key.publicKey,
    sans: ['web.internal', '10.1.2.3'],
    profile: BUILTIN_PROFILES.server,
    clock: systemClock,
  });
  await writeFile(f('inside.pem'), inside.pem);
  const ok = verify('inside.pem');
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);

  const outside: Array<[string, RegExp]> = [
    ['web.example.com', /permitted subtree violation/],
    ['db.secret.internal', /excluded subtree violation/],
    ['192.168.1.1', /permitted subtree violation/],
    ['10.9.1.1', /excluded subtree violation/],
  ];
  for (const [san, opensslError] of outside) {
    const req = {
      issuer: h.issuer,
      subjectPublicKey: key.publicKey,
      sans: [san],
      profile: BUILTIN_PROFILES.server,
      clock: systemClock,
    };
    assert.throws(
      () => buildLeafCertificate(req),
      (e) => isAppError(e, 'LINT_FAILED') && e.details.rule === 'name_constraints',
      san,
    );
    // built through the seam, without lint: openssl must reject it too
    const { tbs } = prepareLeaf(req);
    const name = `outside-${san}.pem`;
    await writeFile(f(name), certificateToPem(signCertificate(tbs, h.interKey.privateKey)));
    const bad = verify(name);
    assert.equal(bad.status, 2, `${san}: ${bad.stdout}${bad.stderr}`);
    assert.match(bad.stdout + bad.stderr, opensslError, san);
  }
});
