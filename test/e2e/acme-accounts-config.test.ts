import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kw } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

test('keywright serve refuses a bad acme.accounts entry, naming each field, never echoing an inline EAB key', async (t) => {
  const dir = await tempDir(t, 'kw-e2e-acme-accounts-');
  const config = join(dir, 'kw.yaml');
  const secret = 'aW5saW5lLWhtYWMta2V5LXRoYXQtbXVzdC1ub3QtbGVhaw';
  await writeFile(
    config,
    [
      `dataDir: ${join(dir, 'data')}`,
      'acme:',
      '  accounts:',
      '    - { name: le, directory: letsencrypt, termsOfServiceAgreed: false }',
      `    - { name: zero, directory: zerossl, termsOfServiceAgreed: true, eab: { kid: k, hmac: ${secret} } }`,
      '    - { name: le, directory: letsencrypt-staging, termsOfServiceAgreed: true }',
    ].join('\n'),
  );
  const r = await kw(['serve'], { KEYWRIGHT_CONFIG: config });
  assert.notEqual(r.code, 0);
  const out = r.stdout + r.stderr;
  assert.match(out, /acme\.accounts\[0\]\.termsOfServiceAgreed/);
  assert.match(out, /acme\.accounts\[1\]\.eab\.hmac: the EAB HMAC key is never written in the configuration/);
  assert.match(out, /acme\.accounts\[2\]\.name: duplicate account name "le"/);
  assert.ok(!out.includes(secret), 'the inline HMAC key is not echoed');
});
