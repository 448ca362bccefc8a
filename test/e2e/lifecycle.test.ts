import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { kw, startServe } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';
import { startNginx } from '../helpers/nginx.js';
import { testCa } from '../unit/deploy/material.js';

/** The serial nginx serves right now, read by a TLS handshake. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false },
      () => {
        const serial = socket.getPeerCertificate().serialNumber.toLowerCase().replace(/^0+/, '');
        socket.end();
        resolve(serial);
      },
    );
    socket.on('error', reject);
  });
}

/** What a timed-out wait saw last, and the daemon's log since the start (it holds no secret). */
function stuck(what: string, seen: { versions: string; served: string }, log: string): string {
  const tail = log.split('\n').slice(-60).join('\n');
  return `${what}\nlast versions: ${seen.versions}\nnginx served serial: ${seen.served}\ndaemon log (last 60 lines):\n${tail}`;
}

async function until<T>(
  what: string | (() => string),
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('a 1-minute certificate renews by itself into nginx (files + reload + verify), a webhook gets a signed body, kill -9 mid-issuance loses nothing', async (t) => {
  const base = await tempDir(t, 'kw-e2e-life-');
  const deployDir = join(base, 'deploy', 'web');
  await mkdir(deployDir, { recursive: true });
  // nginx needs files before it starts: a placeholder the first issuance replaces.
  const placeholder = await (await testCa()).leaf(['localhost'], 0);
  await writeFile(join(deployDir, 'fullchain.pem'), placeholder.fullchainPem);
  await writeFile(join(deployDir, 'privkey.pem'), placeholder.privateKey!.reveal(), { mode: 0o600 });
  const nginx = await startNginx(t, {
    certificate: join(deployDir, 'fullchain.pem'),
    key: join(deployDir, 'privkey.pem'),
  });
  if (!nginx) return;

  const hookSecret = 'test-hook-secret-0123456789';
  const hooks: Array<{ body: string; ok: boolean }> = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const want = `sha256=${createHmac('sha256', hookSecret).update(body).digest('hex')}`;
      const got = String(req.headers['x-keywright-signature'] ?? '');
      hooks.push({
        body,
        ok: got.length === want.length && timingSafeEqual(Buffer.from(got), Buffer.from(want)),
      });
      res.end('ok');
    });
  });
  const hookPort = await freePort();
  await new Promise<void>((r) => receiver.listen(hookPort, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => receiver.close(() => r())));

  const dataDir = join(base, 'data');
  const port = await freePort();
  const config = join(base, 'keywright.yaml');
  await writeFile(
    config,
    JSON.stringify({
      dataDir,
      listen: `127.0.0.1:${port}`,
      scheduler: { renewalInterval: '1s', deployRetryInterval: '1s' },
      deploy: { allowedDirs: [join(base, 'deploy')] },
      certificates: [
        {
          name: 'web',
          sans: ['localhost', '127.0.0.1'],
          lifetime: '1m',
          deploy: [
            { file: { dir: deployDir } },
            { exec: { command: nginx.reload } },
            { webhook: { url: `http://127.0.0.1:${hookPort}/hook`, secret: 'env:HOOK_SECRET' } },
            { verify: { connect: `127.0.0.1:${nginx.port}`, servername: 'localhost', timeout: '10s' } },
          ],
        },
      ],
    }),
  );
  const env = { KEYWRIGHT_CONFIG: config, HOOK_SECRET: hookSecret };
  const init = await kw(['init', '--json'], env);
  assert.equal(init.code, 0, init.stderr);
  const token = init.json<{ adminToken: string }>().adminToken;
  const cli = { ...env, KEYWRIGHT_DATA_DIR: dataDir, KEYWRIGHT_TOKEN: token };
  let daemon = await startServe(t, [], env, `https://127.0.0.1:${port}/healthz`);

  const show = async () =>
    (await kw(['cert', 'show', 'web', '--json'], cli)).json<{
      versions: Array<{ version: number; serial: string; status: string; reason: string }>;
    }>();
  // The active version, once nginx serves it (deployed, reloaded, verified); `seen` keeps what the last
  // poll saw for the message of a timed-out wait.
  let seen = { versions: '', served: '' };
  const servedActive = async (after: number) => {
    seen = { versions: '(cert show failed)', served: '(no TLS answer)' };
    const versions = (await show()).versions;
    seen.versions = JSON.stringify(
      versions.map(({ version, serial, status }) => ({ version, serial, status })),
    );
    const active = versions.find((v) => v.status === 'active');
    seen.served = await servedSerial(nginx.port);
    return active !== undefined && active.version > after && seen.served === active.serial
      ? active
      : undefined;
  };
  // The first version served (version 1 on a quick machine; a loaded one may first see a renewal).
  const first = await until(
    () => stuck('version 1 served by nginx', seen, daemon.output()),
    () => servedActive(0),
    60_000,
  );
  // Renewed by the sweep at 2/3 of its validity (one minute, notBefore backdated one more), with no one
  // touching it: every ~20 s, so the version nginx is seen serving may already be a later one than 2.
  const renewed = await until(
    () => stuck('a renewed version served by nginx', seen, daemon.output()),
    () => servedActive(first.version),
    150_000,
  );
  assert.notEqual(first.serial, renewed.serial);
  const versions = (await show()).versions;
  // Version 1 was issued at start because there was none, and later versions by the renewal sweep.
  assert.equal(versions.find((v) => v.version === 1)?.reason, 'no-current-version');
  assert.equal(versions.find((v) => v.version === renewed.version)?.reason, 'renewal-time');
  assert.equal(versions.find((v) => v.version === 1)?.status, 'superseded');
  // The webhook comes after the reload in the deploy order: wait for the one describing this version.
  await until(
    'the webhook describing the renewed version',
    async () =>
      hooks.some(
        (h) =>
          (JSON.parse(h.body) as { certificate: { serial: string } }).certificate.serial === renewed.serial,
      )
        ? true
        : undefined,
    30_000,
  );
  assert.ok(hooks.length >= 2 && hooks.every((h) => h.ok), 'every webhook body is correctly signed');
  assert.ok(
    hooks.every((h) => !/PRIVATE KEY/.test(h.body)),
    'no key in a webhook',
  );

  // kill -9 in the middle of an issuance: nothing acknowledged is lost, never two active versions.
  void kw(['cert', 'renew', 'web'], cli);
  await new Promise((r) => setTimeout(r, 150));
  daemon.child.kill('SIGKILL');
  await daemon.stop();
  daemon = await startServe(t, [], env, `https://127.0.0.1:${port}/healthz`);
  const after = (await show()).versions;
  assert.equal(after.filter((v) => v.status === 'active').length, 1, JSON.stringify(after));
  assert.deepEqual(
    after.map((v) => v.version).sort((a, b) => a - b),
    after.map((_, i) => i + 1),
    'versions are consecutive',
  );
  assert.ok(after.some((v) => v.serial === renewed.serial));
  assert.equal(await daemon.stop(), 0);
  const verify = await kw(['audit', 'verify', '--data-dir', dataDir]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
});
