/**
 * Runs a certificate's targets for one version, in stages: files first, then exec and webhook (in the
 * configured order), then verify. The first failure stops the run (a reload must not run over files that
 * did not land, a verify cannot pass after a failed reload); file targets with rollback then put the
 * previous files back. Returns, never throws: the result is plain data the lifecycle persists per target
 * (what was delivered, the last error, consecutive failures, when to retry). A failed deploy never
 * undoes a good issuance; it is retried by the deploy-retry sweep.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { toAppError } from '../core/errors.js';
import type { DeployArtifact, DeployTarget, DeployTargetKind, DeployedFiles, Undo } from './port.js';

export interface TargetState {
  /** The target's id (`file:/etc/keywright/web`, `exec:nginx` …). */
  readonly target: string;
  readonly kind: DeployTargetKind;
  readonly lastDeliveredFingerprint?: string;
  readonly lastDeliveredVersion?: number;
  readonly lastDeliveredAt?: string;
  readonly lastError?: {
    readonly code: string;
    readonly message: string;
    readonly at: string;
    readonly retryable: boolean;
    /** The version whose deploy failed. */
    readonly version: number;
  };
  /** Consecutive failed attempts since the last success. */
  readonly attempts: number;
  /** When the deploy-retry sweep should try again; absent after success or a terminal failure. */
  readonly nextRetryAt?: string;
}

export type TargetOutcome = 'deployed' | 'unchanged' | 'failed' | 'skipped';

export interface TargetReport {
  readonly target: string;
  readonly kind: DeployTargetKind;
  readonly outcome: TargetOutcome;
  readonly detail: string;
  readonly durationMs: number;
  /** Set when this target's files were put back after a later failure. */
  readonly rolledBack?: boolean;
}

export interface DeployRun {
  readonly certificate: string;
  readonly version: number;
  readonly fingerprint: string;
  readonly ok: boolean;
  readonly reports: readonly TargetReport[];
  /** One per target of this run, in run order: replace the stored states with these. */
  readonly states: readonly TargetState[];
  /** The earliest retry, when the run failed with a retryable error. */
  readonly nextRetryAt?: string;
  readonly rolledBack: boolean;
}

export interface DeployRunContext {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

export interface DeployAllOptions {
  /** The states stored after the previous run (matched by target id). */
  readonly previous?: readonly TargetState[];
  /** Delay before the retry that follows failure number `attempts` (1 = the first failure). */
  readonly retryDelayMs?: (attempts: number, artifact: DeployArtifact) => number;
}

const STAGE: Readonly<Record<DeployTargetKind, number>> = { file: 0, exec: 1, webhook: 1, verify: 2 };

/** Stable order by stage; configured order within a stage. */
export function orderTargets<T extends Pick<DeployTarget, 'kind'>>(targets: readonly T[]): T[] {
  return targets
    .map((t, i) => ({ t, i }))
    .sort((a, b) => STAGE[a.t.kind] - STAGE[b.t.kind] || a.i - b.i)
    .map(({ t }) => t);
}

/** 30 s, doubling, at most 1 h: a safe default when the caller brings no policy of its own. */
export function defaultRetryDelayMs(attempts: number): number {
  return Math.min(30_000 * 2 ** Math.min(Math.max(attempts - 1, 0), 20), 3_600_000);
}

export async function deployAll(
  targets: readonly DeployTarget[],
  artifact: DeployArtifact,
  ctx: DeployRunContext,
  options: DeployAllOptions = {},
): Promise<DeployRun> {
  const log = ctx.logger.child({ certificate: artifact.certificate, version: artifact.version });
  const previous = new Map((options.previous ?? []).map((s) => [s.target, s]));
  const retryDelay = options.retryDelayMs ?? defaultRetryDelayMs;
  const ordered = withUniqueIds(orderTargets(targets));
  const reports: TargetReport[] = [];
  const states: TargetState[] = [];
  const files: DeployedFiles[] = [];
  const undos: { index: number; undo: Undo }[] = [];
  let earlierChanged = false;
  let failed: { index: number; retryAt?: string } | undefined;

  for (const [index, { target, id }] of ordered.entries()) {
    const before = previous.get(id);
    if (failed) {
      reports.push({
        target: id,
        kind: target.kind,
        outcome: 'skipped',
        detail: 'not run: an earlier target failed',
        durationMs: 0,
      });
      states.push(before ?? { target: id, kind: target.kind, attempts: 0 });
      continue;
    }
    const started = performance.now();
    try {
      const result = await target.deploy(artifact, {
        clock: ctx.clock,
        logger: log,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        ...(before?.lastDeliveredFingerprint !== undefined
          ? { lastDeliveredFingerprint: before.lastDeliveredFingerprint }
          : {}),
        earlierChanged,
        files,
      });
      const durationMs = Math.round(performance.now() - started);
      if (result.files) files.push(result.files);
      if (result.undo) undos.push({ index, undo: result.undo });
      if (result.outcome === 'deployed') earlierChanged = true;
      reports.push({
        target: id,
        kind: target.kind,
        outcome: result.outcome,
        detail: result.detail,
        durationMs,
      });
      states.push({
        target: id,
        kind: target.kind,
        lastDeliveredFingerprint: artifact.fingerprint,
        lastDeliveredVersion: artifact.version,
        lastDeliveredAt:
          result.outcome === 'deployed' || before?.lastDeliveredAt === undefined
            ? ctx.clock.now().toISOString()
            : before.lastDeliveredAt,
        attempts: 0,
      });
      log.info({ target: id, outcome: result.outcome, durationMs }, result.detail);
    } catch (err) {
      const durationMs = Math.round(performance.now() - started);
      const e = toAppError(err);
      const message = e.category === 'internal' ? 'internal error (see the daemon log)' : e.message;
      const attempts = (before?.attempts ?? 0) + 1;
      const now = ctx.clock.nowMs();
      const retryAt = e.retryable ? new Date(now + retryDelay(attempts, artifact)).toISOString() : undefined;
      const { nextRetryAt: _old, ...kept } = before ?? { target: id, kind: target.kind, attempts: 0 };
      states.push({
        ...kept,
        target: id,
        kind: target.kind,
        lastError: {
          code: e.code,
          message,
          at: new Date(now).toISOString(),
          retryable: e.retryable,
          version: artifact.version,
        },
        attempts,
        ...(retryAt !== undefined ? { nextRetryAt: retryAt } : {}),
      });
      reports.push({ target: id, kind: target.kind, outcome: 'failed', detail: message, durationMs });
      log.warn(
        {
          target: id,
          code: e.code,
          retryable: e.retryable,
          attempts,
          nextRetryAt: retryAt,
          err: e.category === 'internal' ? err : undefined,
        },
        `deploy target failed: ${message}`,
      );
      failed = { index, ...(retryAt !== undefined ? { retryAt } : {}) };
    }
  }

  let rolledBack = false;
  for (const { index, undo } of undos.reverse()) {
    if (!failed) {
      undo.discard();
      continue;
    }
    try {
      await undo.restore();
      rolledBack = true;
      const report = reports[index]!;
      reports[index] = {
        ...report,
        rolledBack: true,
        detail: `${report.detail}; rolled back after ${reports[failed.index]!.target} failed`,
      };
      // the files on disk are the previous version again: the next run must rewrite them
      const { lastDeliveredFingerprint: _f, lastDeliveredVersion: _v, ...rest } = states[index]!;
      states[index] = rest;
      log.warn({ target: reports[index].target }, 'restored the previous files');
    } catch (err) {
      log.error(
        { err, target: reports[index]!.target },
        'rolling back the files failed; they hold the new version',
      );
    }
  }

  return {
    certificate: artifact.certificate,
    version: artifact.version,
    fingerprint: artifact.fingerprint,
    ok: failed === undefined,
    reports,
    states,
    ...(failed?.retryAt !== undefined ? { nextRetryAt: failed.retryAt } : {}),
    rolledBack,
  };
}

/** Two targets with the same id (two exec of one program) get `#2`, `#3` … so their states stay apart. */
function withUniqueIds(targets: readonly DeployTarget[]): { target: DeployTarget; id: string }[] {
  const seen = new Map<string, number>();
  return targets.map((target) => {
    const n = (seen.get(target.id) ?? 0) + 1;
    seen.set(target.id, n);
    return { target, id: n === 1 ? target.id : `${target.id}#${n}` };
  });
}
