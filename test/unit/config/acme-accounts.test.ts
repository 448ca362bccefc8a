import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/load.js';
import { isAppError } from '../../../src/core/errors.js';
import { tempDir } from '../../helpers/tmp.js';

/** The CONFIG_INVALID issues of a YAML `acme.accounts` list, as { path: message }. */
async function issuesOf(t: TestContext, yaml: string): Promise<Record<string, string>> {
  const file = join(await tempDir(t), 'kw.yaml');
  await writeFile(file, `acme:\n  accounts:\n${yaml}`);
  try {
    await loadConfig({ file, env: {} });
  } catch (err) {
    assert.ok(isAppError(err, 'CONFIG_INVALID'), String(err));
    const issues = err.details.issues as Array<{ path: string; message: string }>;
    return Object.fromEntries(issues.map((i) => [i.path, i.message]));
  }
  return {};
}

describe('config: acme.accounts', () => {
  test('a full entry parses; email, eab and caFile are optional', async (t) => {
    const file = join(await tempDir(t), 'kw.yaml');
    await writeFile(
      file,
      [
        'acme:',
        '  accounts:',
        '    - name: le',
        '      directory: letsencrypt-staging',
        '      email: ops@example.com',
        '      termsOfServiceAgreed: true',
        '      eab: { kid: kid-1, hmac: env:ZEROSSL_EAB_HMAC }',
        '      caFile: /etc/keywright/acme-ca.pem',
        '    - name: private',
        '      directory: https://acme.internal:14000/dir',
        '      termsOfServiceAgreed: true',
      ].join('\n'),
    );
    const c = await loadConfig({ file, env: {} });
    assert.deepEqual(c.acme.accounts[0], {
      name: 'le',
      directory: 'letsencrypt-staging',
      email: 'ops@example.com',
      termsOfServiceAgreed: true,
      eab: { kid: 'kid-1', hmac: 'env:ZEROSSL_EAB_HMAC' },
      caFile: '/etc/keywright/acme-ca.pem',
    });
    assert.deepEqual(c.acme.accounts[1], {
      name: 'private',
      directory: 'https://acme.internal:14000/dir',
      termsOfServiceAgreed: true,
    });
    assert.deepEqual((await loadConfig({ env: {} })).acme.accounts, []);
  });

  test('termsOfServiceAgreed must be exactly true, absent or false is refused by name', async (t) => {
    const issues = await issuesOf(
      t,
      [
        '    - { name: a, directory: letsencrypt }',
        '    - { name: b, directory: letsencrypt, termsOfServiceAgreed: false }',
        "    - { name: c, directory: letsencrypt, termsOfServiceAgreed: 'yes' }",
      ].join('\n'),
    );
    assert.deepEqual(Object.keys(issues).sort(), [
      'acme.accounts[0].termsOfServiceAgreed',
      'acme.accounts[1].termsOfServiceAgreed',
      'acme.accounts[2].termsOfServiceAgreed',
    ]);
    assert.match(issues['acme.accounts[1].termsOfServiceAgreed']!, /set termsOfServiceAgreed: true/);
  });

  test('names are unique: the duplicate is named with the entry it repeats', async (t) => {
    const issues = await issuesOf(
      t,
      [
        '    - { name: le, directory: letsencrypt, termsOfServiceAgreed: true }',
        '    - { name: other, directory: zerossl, termsOfServiceAgreed: true }',
        '    - { name: le, directory: letsencrypt-staging, termsOfServiceAgreed: true }',
      ].join('\n'),
    );
    assert.deepEqual(Object.keys(issues), ['acme.accounts[2].name']);
    const withOtherErrors = await issuesOf(
      t,
      [
        '    - { name: le, directory: letsencrypt, termsOfServiceAgreed: false }',
        '    - { name: le, directory: letsencrypt-staging, termsOfServiceAgreed: true }',
      ].join('\n'),
    );
    assert.deepEqual(
      Object.keys(withOtherErrors).sort(),
      ['acme.accounts[0].termsOfServiceAgreed', 'acme.accounts[1].name'],
      'a duplicate is reported with the other problems, not after they are fixed',
    );
    assert.match(
      issues['acme.accounts[2].name']!,
      /duplicate account name "le" \(also acme\.accounts\[0\]\.name\)/,
    );
  });

  test('an inline EAB HMAC key is refused, and never echoed', async (t) => {
    const secret = 'c2VjcmV0LWhtYWMta2V5LW5ldmVyLWlubGluZQ';
    const issues = await issuesOf(
      t,
      `    - { name: z, directory: zerossl, termsOfServiceAgreed: true, eab: { kid: k, hmac: ${secret} } }\n`,
    );
    assert.deepEqual(Object.keys(issues), ['acme.accounts[0].eab.hmac']);
    assert.match(
      issues['acme.accounts[0].eab.hmac']!,
      /never written in the configuration: use env:VARIABLE or file:/,
    );
    assert.ok(!JSON.stringify(issues).includes(secret), 'the HMAC key is not in the error');
    const relative = await issuesOf(
      t,
      '    - { name: z, directory: zerossl, termsOfServiceAgreed: true, eab: { kid: k, hmac: "file:hmac.txt" } }\n',
    );
    assert.deepEqual(Object.keys(relative), ['acme.accounts[0].eab.hmac'], 'file: needs an absolute path');
  });

  test('directory is an https URL or an alias; email is an address; unknown keys are named', async (t) => {
    const issues = await issuesOf(
      t,
      [
        '    - { name: a, directory: "http://acme.internal/dir", termsOfServiceAgreed: true }',
        '    - { name: b, directory: letsencrypt, termsOfServiceAgreed: true, email: not-an-address }',
        '    - { name: c, directory: letsencrypt, termsOfServiceAgreed: true, agreeTos: true }',
      ].join('\n'),
    );
    assert.deepEqual(Object.keys(issues).sort(), [
      'acme.accounts[0].directory',
      'acme.accounts[1].email',
      'acme.accounts[2].agreeTos',
    ]);
  });
});
