import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kw, startServe } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';

interface Listed {
  certificates: Array<{ name: string; currentVersion: number | null; retired: boolean; source: string }>;
}

test('SIGHUP and POST /v1/reload reconcile the configured certificates: added issued, removed retired (never deleted)', async (t) => {
  const base = await tempDir(t, 'kw-e2e-reload-');
  const dataDir = join(base, 'data');
  const port = await freePort();
  const config = join(base, 'kw.yaml');
  const write = (names: string[]) =>
    writeFile(
      config,
      JSON.stringify({
        dataDir,
        listen: `127.0.0.1:${port}`,
        scheduler: { renewalInterval: '1s' },
        certificates: names.map((n) => ({ name: n, sans: [`${n}.internal`] })),
      }),
    );
  await write(['alpha']);
  const init = await kw(['init', '--json'], { KEYWRIGHT_CONFIG: config });
  assert.equal(init.code, 0, init.stderr);
  const env = {
    KEYWRIGHT_CONFIG: config,
    KEYWRIGHT_DATA_DIR: dataDir,
    KEYWRIGHT_TOKEN: init.json<{ adminToken: string }>().adminToken,
  };
  const daemon = await startServe(t, [], { KEYWRIGHT_CONFIG: config }, `https://127.0.0.1:${port}/healthz`);
  const list = async () => (await kw(['cert', 'list', '--json'], env)).json<Listed>().certificates;
  const until = async (what: string, ok: (c: Listed['certificates']) => boolean) => {
    for (let i = 0; i < 80; i++) {
      if (ok(await list())) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.fail(`timed out: ${what}: ${JSON.stringify(await list())}\n${daemon.output().slice(-2000)}`);
  };
  await until('alpha issued at start', (c) => c.some((x) => x.name === 'alpha' && x.currentVersion === 1));

  await write(['beta']);
  daemon.child.kill('SIGHUP');
  await until(
    'beta issued, alpha retired after SIGHUP',
    (c) =>
      c.some((x) => x.name === 'beta' && x.currentVersion === 1) &&
      c.some((x) => x.name === 'alpha' && x.retired),
  );

  await write(['alpha', 'beta', 'gamma']);
  const { request } = await import('node:https');
  const { readFile } = await import('node:fs/promises');
  const ca = await readFile(join(dataDir, 'ca.pem'), 'utf8');
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      `https://127.0.0.1:${port}/v1/reload`,
      { method: 'POST', ca, headers: { authorization: `Bearer ${env.KEYWRIGHT_TOKEN}` } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 200);
  await until(
    'gamma issued and alpha back after POST /v1/reload',
    (c) =>
      c.some((x) => x.name === 'gamma' && x.currentVersion === 1) &&
      c.some((x) => x.name === 'alpha' && !x.retired),
  );
  assert.equal(await daemon.stop(), 0);
});
