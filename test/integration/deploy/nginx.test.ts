/**
 * Deploy to a real nginx on 127.0.0.1: files + `nginx -s reload` + verify by TLS handshake, for each new
 * version; a broken reload command, then recovery; a reload nginx refuses (key does not match), rolled
 * back. The served certificate is always checked by a handshake, never assumed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { configSchema } from '../../../src/config/schema.js';
import { systemClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/logger.js';
import { FileTarget } from '../../../src/deploy/file-target.js';
import { makeArtifact, type DeployArtifact } from '../../../src/deploy/port.js';
import { deployAll, type DeployRun } from '../../../src/deploy/run.js';
import { createTargets } from '../../../src/deploy/targets.js';
import { probe } from '../../../src/deploy/verify-target.js';
import { generateKeyPair } from '../../../src/keys/generate.js';
import { startNginx } from '../../helpers/nginx.js';
import { tempDir } from '../../helpers/tmp.js';
import { testCa } from '../../unit/deploy/material.js';

const ctx = { clock: systemClock, logger: silentLogger };

function targetsFor(
  dir: string,
  allowed: string,
  reload: readonly string[],
  port: number,
  extra: object = {},
) {
  const { certificates } = configSchema.parse({
    certificates: [
      {
        name: 'web',
        sans: ['web.test'],
        deploy: [
          { verify: { connect: `127.0.0.1:${port}`, timeout: '10s' } },
          { exec: { command: reload, timeout: '20s' } },
          { file: { dir, rollback: true, ...extra } },
        ],
      },
    ],
  });
  return createTargets(certificates[0]!.deploy, { allowedDirs: [allowed], field: 'certificates[0].deploy' });
}

async function served(port: number): Promise<string> {
  const p = await probe('127.0.0.1', port, 'web.test', 5_000);
  assert.ok('serialHex' in p, `handshake failed: ${JSON.stringify(p)}`);
  return p.serialHex;
}

/**
 * After a reload, nginx's old worker may still take a new connection for a few milliseconds before it
 * handles its QUIT, so a handshake right after verify passed can still meet the old certificate. Wait for
 * the expected one, briefly.
 */
async function servesSoon(port: number, serialHex: string): Promise<string> {
  let last = '';
  for (let i = 0; i < 40; i++) {
    last = await served(port);
    if (last === serialHex) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  return last;
}

const outcomes = (run: DeployRun) => run.reports.map((r) => `${r.kind}:${r.outcome}`);

test('nginx: each new version is written, reloaded and verified by a TLS handshake; failures recover', async (t) => {
  const allowed = await tempDir(t, 'kw-deploy-');
  const dir = join(allowed, 'web');
  const ca = await testCa();
  const [v0, v1, v2, v3] = await Promise.all([0, 1, 2, 3].map((v) => ca.leaf(['web.test'], v)));
  await new FileTarget({ dir, allowedDirs: [allowed] }).deploy(v0!, {
    ...ctx,
    earlierChanged: false,
    files: [],
  });
  const nginx = await startNginx(t, {
    certificate: join(dir, 'fullchain.pem'),
    key: join(dir, 'privkey.pem'),
  });
  if (!nginx) return;
  assert.equal(await served(nginx.port), v0!.serialHex);

  const targets = targetsFor(dir, allowed, nginx.reload, nginx.port);
  const r1 = await deployAll(targets, v1!, ctx);
  assert.equal(r1.ok, true, JSON.stringify(r1.reports));
  assert.deepEqual(outcomes(r1), ['file:deployed', 'exec:deployed', 'verify:deployed']);
  assert.equal(await servesSoon(nginx.port, v1!.serialHex), v1!.serialHex);

  const r2 = await deployAll(targets, v2!, ctx, { previous: r1.states });
  assert.equal(r2.ok, true, JSON.stringify(r2.reports));
  assert.equal(await servesSoon(nginx.port, v2!.serialHex), v2!.serialHex);
  assert.match(r2.reports[2]!.detail, new RegExp(`serves version 2 \\(serial ${v2!.serialHex}\\)`));

  // the same version again: nothing rewritten, nothing reloaded, still verified
  const again = await deployAll(targets, v2!, ctx, { previous: r2.states });
  assert.deepEqual(outcomes(again), ['file:unchanged', 'exec:unchanged', 'verify:deployed']);

  // a broken reload command: the files land, the reload fails, verify is not run, nginx keeps v2
  const broken = targetsFor(dir, allowed, ['/nonexistent/nginx', '-s', 'reload'], nginx.port, {
    rollback: false,
  });
  const r3 = await deployAll(broken, v3!, ctx, { previous: r2.states });
  assert.equal(r3.ok, false);
  assert.deepEqual(outcomes(r3), ['file:deployed', 'exec:failed', 'verify:skipped']);
  assert.match(r3.reports[1]!.detail, /command "\/nonexistent\/nginx" not found/);
  assert.equal(r3.states[1]!.lastError?.code, 'DEPLOY_FAILED');
  assert.equal(await served(nginx.port), v2!.serialHex);

  // the fault removed: the files are already in place, the reload runs because it never delivered v3
  const r4 = await deployAll(targets, v3!, ctx, { previous: r3.states });
  assert.equal(r4.ok, true, JSON.stringify(r4.reports));
  assert.deepEqual(outcomes(r4), ['file:unchanged', 'exec:deployed', 'verify:deployed']);
  assert.equal(r4.states[1]!.attempts, 0);
  assert.equal(r4.states[1]!.lastError, undefined);
  assert.equal(await servesSoon(nginx.port, v3!.serialHex), v3!.serialHex);
});

test('nginx refuses a reload (key does not match the certificate): the files are rolled back', async (t) => {
  const allowed = await tempDir(t, 'kw-deploy-');
  const dir = join(allowed, 'web');
  const ca = await testCa();
  const good = await ca.leaf(['web.test'], 1);
  await new FileTarget({ dir, allowedDirs: [allowed] }).deploy(good, {
    ...ctx,
    earlierChanged: false,
    files: [],
  });
  const nginx = await startNginx(t, {
    certificate: join(dir, 'fullchain.pem'),
    key: join(dir, 'privkey.pem'),
  });
  if (!nginx) return;
  const next = await ca.leaf(['web.test'], 2);
  const mismatched: DeployArtifact = makeArtifact({
    ...next,
    serialHex: next.serialHex,
    privateKey: (await generateKeyPair('ec-p256')).privateKey, // not the certificate's key
  });
  const targets = targetsFor(dir, allowed, nginx.reload, nginx.port);
  const run = await deployAll(targets, mismatched, ctx);
  assert.equal(run.ok, false);
  assert.deepEqual(outcomes(run), ['file:deployed', 'exec:failed', 'verify:skipped']);
  assert.match(run.reports[1]!.detail, /exited with code 1 .*key values mismatch/);
  assert.ok(!run.reports[1]!.detail.includes('PRIVATE KEY'));
  assert.equal(run.rolledBack, true);
  assert.equal(run.reports[0]!.rolledBack, true);
  // the old pair is back on disk: nginx -t accepts it and the served certificate is still the old one
  assert.equal((await new FileTarget({ dir, allowedDirs: [allowed] }).verify(good)).ok, true);
  assert.equal(await served(nginx.port), good.serialHex);
  // and a good version goes through afterwards
  const ok = await deployAll(targets, next, ctx, { previous: run.states });
  assert.equal(ok.ok, true, JSON.stringify(ok.reports));
  assert.equal(await servesSoon(nginx.port, next.serialHex), next.serialHex);
});
