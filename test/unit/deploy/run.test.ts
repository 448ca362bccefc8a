import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeClock } from '../../../src/core/clock.js';
import { DeployError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { FileTarget } from '../../../src/deploy/file-target.js';
import type {
  DeployArtifact,
  DeployContext,
  DeployResult,
  DeployTarget,
  DeployTargetKind,
} from '../../../src/deploy/port.js';
import { pemFingerprint } from '../../../src/deploy/port.js';
import { defaultRetryDelayMs, deployAll, orderTargets } from '../../../src/deploy/run.js';
import { tempDir } from '../../helpers/tmp.js';
import { testCa, type TestCa } from './material.js';

const T0 = Date.UTC(2026, 0, 1);

/** A target that records its calls and does what it is told. */
class Scripted implements DeployTarget {
  readonly calls: DeployContext[] = [];
  constructor(
    readonly kind: DeployTargetKind,
    readonly id: string,
    private readonly behave: (ctx: DeployContext) => DeployResult | Error = () => ({
      outcome: 'deployed',
      detail: 'ok',
    }),
  ) {}
  async deploy(_a: DeployArtifact, ctx: DeployContext): Promise<DeployResult> {
    this.calls.push(ctx);
    const r = this.behave(ctx);
    if (r instanceof Error) throw r;
    return r;
  }
}

const failing =
  (retryable: boolean, message = 'reload failed') =>
  () =>
    new DeployError('DEPLOY_FAILED', message, { retryable });

describe('deployAll', () => {
  let ca: TestCa;
  let artifact: DeployArtifact;
  before(async () => {
    ca = await testCa();
    artifact = await ca.leaf(['web.test'], 4);
  });
  const run = (targets: DeployTarget[], options = {}, clock = new FakeClock(T0)) =>
    deployAll(targets, artifact, { clock, logger: silentLogger }, options);

  test('orders by stage (file, then exec and webhook as configured, then verify), stably', () => {
    const kinds = orderTargets([
      { kind: 'verify' as const, n: 1 },
      { kind: 'webhook' as const, n: 2 },
      { kind: 'exec' as const, n: 3 },
      { kind: 'file' as const, n: 4 },
      { kind: 'exec' as const, n: 5 },
      { kind: 'file' as const, n: 6 },
    ]).map((t) => t.n);
    assert.deepEqual(kinds, [4, 6, 2, 3, 5, 1]);
  });

  test('all succeed: states record the delivered fingerprint and reset failures', async () => {
    const targets = [
      new Scripted('verify', 'verify:a'),
      new Scripted('exec', 'exec:x'),
      new Scripted('file', 'file:/d'),
    ];
    const result = await run(targets, {
      previous: [
        {
          target: 'exec:x',
          kind: 'exec',
          attempts: 3,
          lastError: { code: 'DEPLOY_FAILED', message: 'x', at: 'then', retryable: true, version: 3 },
          nextRetryAt: 'soon',
        },
      ],
    });
    assert.equal(result.ok, true);
    assert.deepEqual(
      result.reports.map((r) => [r.target, r.outcome]),
      [
        ['file:/d', 'deployed'],
        ['exec:x', 'deployed'],
        ['verify:a', 'deployed'],
      ],
    );
    const exec = result.states[1]!;
    assert.deepEqual(exec, {
      target: 'exec:x',
      kind: 'exec',
      lastDeliveredFingerprint: artifact.fingerprint,
      lastDeliveredVersion: 4,
      lastDeliveredAt: new Date(T0).toISOString(),
      attempts: 0,
    });
    assert.equal(result.nextRetryAt, undefined);
  });

  test('each target learns what it delivered before and whether an earlier one changed something', async () => {
    const file = new Scripted('file', 'file:/d', () => ({ outcome: 'unchanged', detail: 'same' }));
    const exec = new Scripted('exec', 'exec:x');
    await run([exec, file], {
      previous: [{ target: 'exec:x', kind: 'exec', attempts: 0, lastDeliveredFingerprint: 'abc' }],
    });
    assert.equal(exec.calls[0]!.earlierChanged, false);
    assert.equal(exec.calls[0]!.lastDeliveredFingerprint, 'abc');
    assert.equal(file.calls[0]!.lastDeliveredFingerprint, undefined);
  });

  test('the first failure stops the run; later targets are skipped and keep their state', async () => {
    const verify = new Scripted('verify', 'verify:a');
    const result = await run(
      [new Scripted('file', 'file:/d'), new Scripted('exec', 'exec:x', failing(true)), verify],
      {
        previous: [{ target: 'verify:a', kind: 'verify', attempts: 0, lastDeliveredFingerprint: 'old' }],
      },
    );
    assert.equal(result.ok, false);
    assert.deepEqual(
      result.reports.map((r) => r.outcome),
      ['deployed', 'failed', 'skipped'],
    );
    assert.equal(verify.calls.length, 0);
    assert.deepEqual(result.states[2], {
      target: 'verify:a',
      kind: 'verify',
      attempts: 0,
      lastDeliveredFingerprint: 'old',
    });
    const failed = result.states[1]!;
    assert.equal(failed.attempts, 1);
    assert.deepEqual(failed.lastError, {
      code: 'DEPLOY_FAILED',
      message: 'reload failed',
      at: new Date(T0).toISOString(),
      retryable: true,
      version: 4,
    });
    assert.equal(failed.nextRetryAt, new Date(T0 + 30_000).toISOString());
    assert.equal(result.nextRetryAt, failed.nextRetryAt);
  });

  test('consecutive failures grow the delay through the given policy; a terminal failure schedules no retry', async () => {
    const seen: number[] = [];
    const result = await run([new Scripted('webhook', 'webhook:h', failing(true))], {
      previous: [
        {
          target: 'webhook:h',
          kind: 'webhook',
          attempts: 4,
          lastDeliveredFingerprint: 'old',
          nextRetryAt: 'x',
        },
      ],
      retryDelayMs: (attempts: number) => {
        seen.push(attempts);
        return 1000 * attempts;
      },
    });
    assert.deepEqual(seen, [5]);
    assert.equal(result.states[0]!.nextRetryAt, new Date(T0 + 5000).toISOString());
    assert.equal(result.states[0]!.lastDeliveredFingerprint, 'old', 'what it delivered before stays known');

    const terminal = await run([new Scripted('webhook', 'webhook:h', failing(false, 'answered 404'))]);
    assert.equal(terminal.states[0]!.nextRetryAt, undefined);
    assert.equal(terminal.nextRetryAt, undefined);
    assert.equal(terminal.states[0]!.lastError?.retryable, false);
  });

  test('never throws: an unexpected exception is reported as internal without its message', async () => {
    const result = await run([new Scripted('exec', 'exec:x', () => new TypeError('secret-ish internals'))]);
    assert.equal(result.ok, false);
    assert.equal(result.states[0]!.lastError?.code, 'INTERNAL');
    assert.ok(!result.reports[0]!.detail.includes('secret-ish'));
  });

  test('two targets with the same id keep separate states', async () => {
    const result = await run([new Scripted('exec', 'exec:nginx'), new Scripted('exec', 'exec:nginx')]);
    assert.deepEqual(
      result.states.map((s) => s.target),
      ['exec:nginx', 'exec:nginx#2'],
    );
  });

  test('default retry delay: 30 s doubling up to 1 h', () => {
    assert.deepEqual(
      [1, 2, 3, 8, 20, 1000].map(defaultRetryDelayMs),
      [30_000, 60_000, 120_000, 3_600_000, 3_600_000, 3_600_000],
    );
  });

  test('a failed reload rolls the files back (file rollback: true); the next run rewrites them', async (t) => {
    const dir = await tempDir(t);
    const previous = await ca.leaf(['web.test'], 3);
    const file = new FileTarget({ dir, allowedDirs: [dir], rollback: true });
    await deployAll([file], previous, { clock: new FakeClock(T0), logger: silentLogger });
    const result = await run([file, new Scripted('exec', 'exec:reload', failing(true))]);
    assert.equal(result.rolledBack, true);
    assert.equal(result.reports[0]!.rolledBack, true);
    assert.match(result.reports[0]!.detail, /rolled back after exec:reload failed/);
    assert.equal(pemFingerprint(await readFile(join(dir, 'cert.pem'), 'utf8')), previous.fingerprint);
    assert.equal(result.states[0]!.lastDeliveredFingerprint, undefined);

    const retry = await run([file, new Scripted('exec', 'exec:reload')], { previous: result.states });
    assert.equal(retry.reports[0]!.outcome, 'deployed');
    assert.equal(pemFingerprint(await readFile(join(dir, 'cert.pem'), 'utf8')), artifact.fingerprint);
  });

  test('without rollback the new files stay after a failed reload', async (t) => {
    const dir = await tempDir(t);
    const result = await run([
      new FileTarget({ dir, allowedDirs: [dir] }),
      new Scripted('exec', 'exec:reload', failing(true)),
    ]);
    assert.equal(result.rolledBack, false);
    assert.equal(pemFingerprint(await readFile(join(dir, 'cert.pem'), 'utf8')), artifact.fingerprint);
  });
});
