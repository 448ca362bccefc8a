import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const run = promisify(execFile);
const REPO = resolve(import.meta.dirname, '../../..');

/** The CommonJS modules a fresh process has loaded after running `script` (ESM, in the repo). */
async function loadedAfter(script: string): Promise<string[]> {
  const probe = `${script}
const { createRequire } = await import('node:module');
console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], {
    cwd: REPO,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as string[];
}

const heavy = (files: string[]) =>
  files.filter((f) => /node_modules\/(acme-client|@peculiar\/x509|reflect-metadata|axios)\//.test(f));

test('the daemon loads acme-client (axios, @peculiar/x509) only when an ACME call needs it', async () => {
  const app = pathToFileURL(resolve(REPO, 'src/app/index.ts')).href;
  const atStart = await loadedAfter(`await import(${JSON.stringify(app)});`);
  assert.ok(atStart.length > 0, 'the probe sees CommonJS modules at all');
  assert.deepEqual(heavy(atStart), [], 'nothing of acme-client is loaded by importing the app layer');

  const loader = pathToFileURL(resolve(REPO, 'src/acme/acme-client.ts')).href;
  const onUse = await loadedAfter(
    `const { loadAcmeClient } = await import(${JSON.stringify(loader)});
const [a, b] = await Promise.all([loadAcmeClient(), loadAcmeClient()]);
if (a !== b || typeof a.Client !== 'function' || typeof a.crypto.createAlpnCertificate !== 'function') throw new Error('not the module');`,
  );
  assert.ok(
    heavy(onUse).some((f) => f.includes('/acme-client/')),
    'loaded on first use',
  );
});
