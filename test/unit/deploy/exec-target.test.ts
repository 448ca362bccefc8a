import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError, type AppError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { ExecTarget } from '../../../src/deploy/exec-target.js';
import type { DeployArtifact, DeployContext, DeployedFiles } from '../../../src/deploy/port.js';
import { runProcess } from '../../../src/deploy/process.js';
import { tempDir } from '../../helpers/tmp.js';
import { testCa } from './material.js';

const NODE = process.execPath;
const ctx = (over: Partial<DeployContext> = {}): DeployContext => ({
  clock: new FakeClock(),
  logger: silentLogger,
  earlierChanged: true,
  files: [],
  ...over,
});

async function deployError(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    assert.ok(isAppError(err, 'DEPLOY_FAILED'), String(err));
    return err;
  }
  assert.fail('expected DEPLOY_FAILED');
}

/** Running, not a zombie (an orphan whose reaper, PID 1 of a container, may never wait for it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}

describe('exec target', () => {
  let artifact: DeployArtifact;
  before(async () => {
    artifact = await (await testCa()).leaf(['web.test', 'www.web.test', '10.0.0.5'], 3);
  });

  test('the hook sees the name, paths, domains and certbot variables; never the key or the daemon env', async (t) => {
    const dir = await tempDir(t);
    const out = join(dir, 'env.json');
    const files: DeployedFiles = {
      dir: '/etc/keywright/web',
      cert: '/etc/keywright/web/cert.pem',
      chain: '/etc/keywright/web/chain.pem',
      fullchain: '/etc/keywright/web/fullchain.pem',
      privkey: '/etc/keywright/web/privkey.pem',
    };
    const target = new ExecTarget({
      command: [NODE, '-e', 'require("fs").writeFileSync(process.argv[1], JSON.stringify(process.env))', out],
      env: { EXTRA: 'yes', KEYWRIGHT_CERT_NAME: 'spoofed' },
      baseEnv: {
        PATH: process.env.PATH,
        HOME: '/root',
        KEYWRIGHT_MASTER_KEY: 'kek-material',
        AWS_SECRET_ACCESS_KEY: 's',
      },
    });
    const result = await target.deploy(artifact, ctx({ files: [files] }));
    assert.equal(result.outcome, 'deployed');
    const env = JSON.parse(await readFile(out, 'utf8')) as Record<string, string>;
    assert.equal(env.KEYWRIGHT_CERT_NAME, 'web', 'configured env cannot override keywright variables');
    assert.equal(env.KEYWRIGHT_CERT_VERSION, '3');
    assert.equal(env.KEYWRIGHT_CERT_FINGERPRINT, artifact.fingerprint);
    assert.equal(env.KEYWRIGHT_CERT_SERIAL, artifact.serialHex);
    assert.equal(env.KEYWRIGHT_DOMAINS, 'web.test www.web.test 10.0.0.5');
    assert.equal(env.RENEWED_DOMAINS, 'web.test www.web.test 10.0.0.5');
    assert.equal(env.RENEWED_LINEAGE, '/etc/keywright/web');
    assert.equal(env.KEYWRIGHT_KEY_PATH, '/etc/keywright/web/privkey.pem');
    assert.equal(env.KEYWRIGHT_FULLCHAIN_PATH, '/etc/keywright/web/fullchain.pem');
    assert.equal(env.EXTRA, 'yes');
    assert.equal(env.HOME, '/root');
    assert.equal(env.KEYWRIGHT_MASTER_KEY, undefined);
    assert.equal(env.AWS_SECRET_ACCESS_KEY, undefined);
    const key = artifact.privateKey!.reveal().toString();
    const body = key.split('\n')[1]!;
    for (const value of Object.values(env)) {
      assert.ok(
        !value.includes('PRIVATE KEY') && !value.includes(body),
        'no key material in the environment',
      );
    }
  });

  test('a non-zero exit is DEPLOY_FAILED, retryable, with the exit code and the last stderr lines', async () => {
    const script = 'for i in 1 2 3 4 5 6 7; do echo "line $i" >&2; done; exit 3';
    const err = await deployError(
      new ExecTarget({ command: ['/bin/sh', '-c', script] }).deploy(artifact, ctx()),
    );
    assert.equal(err.retryable, true);
    assert.match(err.message, /exited with code 3 after \d+ ms/);
    assert.match(err.message, /line 3 \| line 4 \| line 5 \| line 6 \| line 7$/);
    assert.ok(!err.message.includes('line 2'), 'only the last lines');
    assert.equal(err.details.exitCode, 3);
  });

  test('a command that does not exist is DEPLOY_FAILED, not retried, saying so', async () => {
    const err = await deployError(
      new ExecTarget({ command: ['/nonexistent/reload-it', '--now'] }).deploy(artifact, ctx()),
    );
    assert.equal(err.retryable, false);
    assert.match(err.message, /command "\/nonexistent\/reload-it" not found/);
    assert.equal(err.details.errno, 'ENOENT');
  });

  test('a hanging command is killed with its whole process group at the timeout', async (t) => {
    const dir = await tempDir(t);
    const pidFile = join(dir, 'child.pid');
    // the shell starts a grandchild that would outlive a kill of the shell alone
    const script = `sleep 30 & echo $! > ${pidFile}; wait`;
    const started = performance.now();
    const err = await deployError(
      new ExecTarget({ command: ['/bin/sh', '-c', script], timeoutMs: 300 }).deploy(artifact, ctx()),
    );
    const took = performance.now() - started;
    assert.match(err.message, /timed out after 300ms; its process group was killed/);
    assert.equal(err.retryable, true);
    assert.ok(took < 3_000, `returned after ${Math.round(took)} ms`);
    const grandchild = Number((await readFile(pidFile, 'utf8')).trim());
    for (let i = 0; i < 50 && alive(grandchild); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(grandchild), false, 'the grandchild was killed too');
  });

  test('megabytes of output cost a bounded amount of memory and a short message', async () => {
    const flood =
      'const b = Buffer.alloc(65536, 120); for (let i = 0; i < 160; i++) { process.stdout.write(b); process.stderr.write(b); } process.stderr.write("\\nthe real error\\n"); process.exitCode = 1;';
    const err = await deployError(
      new ExecTarget({ command: [NODE, '-e', flood], timeoutMs: 30_000 }).deploy(artifact, ctx()),
    );
    assert.ok(err.message.length < 2_000, `message is ${err.message.length} chars`);
    assert.match(err.message, /the real error$/);
    assert.equal(err.details.stdoutBytes, 160 * 65536);

    const r = await runProcess([NODE, '-e', flood], {
      env: { PATH: process.env.PATH },
      timeoutMs: 30_000,
      maxOutputBytes: 4096,
    });
    assert.equal(r.stderrBytes, 160 * 65536 + '\nthe real error\n'.length);
    assert.equal(Buffer.byteLength(r.stderr), 4096, 'only the tail is kept');
    assert.ok(r.stderr.endsWith('the real error\n'));
  });

  test('unchanged when this version was delivered and nothing before it changed', async () => {
    const target = new ExecTarget({ command: ['/bin/false'] });
    const same = await target.deploy(
      artifact,
      ctx({ earlierChanged: false, lastDeliveredFingerprint: artifact.fingerprint }),
    );
    assert.equal(same.outcome, 'unchanged');
    await deployError(
      target.deploy(artifact, ctx({ earlierChanged: true, lastDeliveredFingerprint: artifact.fingerprint })),
    );
    await deployError(
      target.deploy(artifact, ctx({ earlierChanged: false, lastDeliveredFingerprint: 'older' })),
    );
  });

  test('cancelling the run kills the hook', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100).unref();
    const err = await deployError(
      new ExecTarget({ command: ['/bin/sleep', '30'], timeoutMs: 30_000 }).deploy(
        artifact,
        ctx({ signal: controller.signal }),
      ),
    );
    assert.match(err.message, /was cancelled/);
  });

  test('an empty command is refused when the target is built', () => {
    assert.throws(
      () => new ExecTarget({ command: [], field: 'certificates[1].deploy[2].exec' }),
      (err: unknown) =>
        isAppError(err, 'DEPLOY_TARGET_INVALID') &&
        err.details.field === 'certificates[1].deploy[2].exec.command',
    );
  });
});
