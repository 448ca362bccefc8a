/**
 * Named sweeps on a schedule (renewal, deploy retry, CRL refresh, key destruction, VPN rotation). The
 * scheduler owns only the mechanics: a sweep never overlaps itself (a firing while it runs is skipped and
 * counted), runs once at start to catch up on what came due while the daemon was down, hands its body a
 * concurrency-limited mapLimit and an abort signal, and records lag, last run and last error for
 * /metrics. What a sweep does lives in the sweep's `run`, written by its module; none of it is here.
 */
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';
import { ValidationError, toAppError } from '../core/errors.js';
import { NAME_PATTERN } from '../core/ids.js';
import { mapLimit } from './map-limit.js';
import { defaultTriggers, type Trigger, type TriggerFactory } from './triggers.js';

export type RunReason = 'start' | 'scheduled' | 'manual';

export interface SweepContext {
  readonly sweep: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Aborted when the scheduler stops: finish the item in hand, start no new one. */
  readonly signal: AbortSignal;
  readonly scheduledAt: Date;
  readonly reason: RunReason;
  /** mapLimit with this sweep's concurrency and signal. */
  mapLimit<T, R>(
    items: Iterable<T>,
    fn: (item: T, index: number) => Promise<R>,
  ): Promise<PromiseSettledResult<R>[]>;
}

/** What a run may report back, for status and metrics. */
export interface SweepOutcome {
  readonly processed?: number;
  readonly failed?: number;
}

export interface SweepDefinition {
  /** `renewal`, `deploy-retry`, `key-destruction` … (1-64 of a-z, 0-9, . _ -). */
  readonly name: string;
  /** A node-cron expression (5 fields, or 6 with seconds). Exactly one of cron and everyMs. */
  readonly cron?: string;
  readonly everyMs?: number;
  readonly timezone?: string;
  /** Items in flight at once through ctx.mapLimit (default 4). */
  readonly concurrency?: number;
  /** Run once when the scheduler starts (default true): catches up after downtime. */
  readonly runAtStart?: boolean;
  run(ctx: SweepContext): Promise<SweepOutcome | void>;
}

export interface SweepStats {
  readonly name: string;
  readonly schedule: string;
  readonly running: boolean;
  readonly runs: number;
  readonly failures: number;
  /** Firings dropped because the previous run was still going. */
  readonly skippedOverlaps: number;
  readonly lastStartedAt?: string;
  readonly lastFinishedAt?: string;
  readonly lastDurationMs?: number;
  /** Start minus scheduled time of the last run. */
  readonly lastLagMs?: number;
  readonly maxLagMs: number;
  readonly lastSuccessAt?: string;
  readonly lastError?: { readonly code: string; readonly message: string; readonly at: string };
  readonly lastOutcome?: SweepOutcome;
  readonly nextRunAt?: string;
}

export interface SchedulerOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** How sweeps are fired; node-cron and timers by default, a ManualTrigger in tests. */
  readonly triggers?: TriggerFactory;
  /** Called after every run, e.g. with the metrics' observeSweep(name, lagMs, ok). Must not throw. */
  readonly onRunFinished?: (run: SweepRunReport) => void;
}

export interface SweepRunReport {
  readonly name: string;
  readonly reason: RunReason;
  readonly lagMs: number;
  readonly durationMs: number;
  readonly ok: boolean;
}

interface Sweep {
  readonly def: SweepDefinition;
  readonly trigger: Trigger;
  running?: Promise<void>;
  stats: Omit<SweepStats, 'name' | 'schedule' | 'running' | 'nextRunAt'>;
}

export class Scheduler {
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #triggers: TriggerFactory;
  readonly #onRunFinished: ((run: SweepRunReport) => void) | undefined;
  readonly #sweeps = new Map<string, Sweep>();
  readonly #abort = new AbortController();
  #state: 'idle' | 'started' | 'stopped' = 'idle';

  constructor(options: SchedulerOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'scheduler' });
    this.#triggers = options.triggers ?? defaultTriggers(this.#clock, this.#logger);
    this.#onRunFinished = options.onRunFinished;
  }

  /** Registers a sweep; when the scheduler already runs, it starts (and catches up) at once. */
  add(def: SweepDefinition): void {
    if (!NAME_PATTERN.test(def.name)) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `sweep name "${def.name}": use 1-64 of a-z, 0-9, ".", "_", "-"`,
        {
          details: { field: 'name', value: def.name },
        },
      );
    }
    if (this.#sweeps.has(def.name)) {
      throw new ValidationError('INVALID_ARGUMENT', `a sweep named "${def.name}" is registered already`, {
        details: { field: 'name', value: def.name },
      });
    }
    if (this.#state === 'stopped') throw new ValidationError('INVALID_ARGUMENT', 'the scheduler is stopped');
    const trigger = this.#triggers({
      name: def.name,
      ...(def.cron !== undefined ? { cron: def.cron } : {}),
      ...(def.everyMs !== undefined ? { everyMs: def.everyMs } : {}),
      ...(def.timezone !== undefined ? { timezone: def.timezone } : {}),
    });
    const sweep: Sweep = { def, trigger, stats: { runs: 0, failures: 0, skippedOverlaps: 0, maxLagMs: 0 } };
    this.#sweeps.set(def.name, sweep);
    if (this.#state === 'started') this.#startSweep(sweep);
  }

  /** Starts every trigger and runs each sweep once now (unless runAtStart is false). */
  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'started';
    for (const sweep of this.#sweeps.values()) this.#startSweep(sweep);
    this.#logger.info({ sweeps: [...this.#sweeps.keys()] }, 'scheduler started');
  }

  /**
   * Runs a sweep now (`deploy retry`, an API call). If it is running already, waits for that run instead
   * of starting a second one. Resolves with its stats; never rejects for a failing run.
   */
  async runNow(name: string): Promise<SweepStats> {
    const sweep = this.#sweeps.get(name);
    if (!sweep) {
      throw new ValidationError('INVALID_ARGUMENT', `no sweep named "${name}"`, {
        details: { field: 'name', value: name },
      });
    }
    if (this.#state === 'stopped') throw new ValidationError('INVALID_ARGUMENT', 'the scheduler is stopped');
    await (sweep.running ?? this.#run(sweep, this.#clock.now(), 'manual'));
    return this.#statsOf(sweep);
  }

  stats(): SweepStats[] {
    return [...this.#sweeps.values()].map((s) => this.#statsOf(s));
  }

  /** Stops the triggers, signals running sweeps to wind down and waits for them. Idempotent. */
  async stop(): Promise<void> {
    if (this.#state !== 'stopped') {
      this.#state = 'stopped';
      for (const sweep of this.#sweeps.values()) sweep.trigger.stop();
      this.#abort.abort(); // an AbortError DOMException as the reason
    }
    await Promise.allSettled([...this.#sweeps.values()].flatMap((s) => (s.running ? [s.running] : [])));
    this.#logger.info({}, 'scheduler stopped');
  }

  #startSweep(sweep: Sweep): void {
    sweep.trigger.start((scheduledAt) => this.#fire(sweep, scheduledAt, 'scheduled'));
    if (sweep.def.runAtStart !== false) this.#fire(sweep, this.#clock.now(), 'start');
  }

  #fire(sweep: Sweep, scheduledAt: Date, reason: RunReason): void {
    if (this.#state !== 'started') return;
    if (sweep.running) {
      sweep.stats = { ...sweep.stats, skippedOverlaps: sweep.stats.skippedOverlaps + 1 };
      this.#logger.debug({ sweep: sweep.def.name }, 'sweep still running: this firing is skipped');
      return;
    }
    void this.#run(sweep, scheduledAt, reason);
  }

  /** Runs once; records the result; never rejects. */
  #run(sweep: Sweep, scheduledAt: Date, reason: RunReason): Promise<void> {
    const { def } = sweep;
    const log = this.#logger.child({ sweep: def.name });
    const startedMs = this.#clock.nowMs();
    const lagMs = Math.max(0, startedMs - scheduledAt.getTime());
    sweep.stats = {
      ...sweep.stats,
      lastStartedAt: new Date(startedMs).toISOString(),
      lastLagMs: lagMs,
      maxLagMs: Math.max(sweep.stats.maxLagMs, lagMs),
    };
    const signal = this.#abort.signal;
    const limit = def.concurrency ?? 4;
    const ctx: SweepContext = {
      sweep: def.name,
      clock: this.#clock,
      logger: log,
      signal,
      scheduledAt,
      reason,
      mapLimit: (items, fn) => mapLimit(items, limit, fn, signal),
    };
    const work = (async () => {
      try {
        const outcome = await def.run(ctx);
        const finished = this.#clock.nowMs();
        const { lastError: _cleared, ...rest } = sweep.stats;
        sweep.stats = {
          ...rest,
          runs: rest.runs + 1,
          lastFinishedAt: new Date(finished).toISOString(),
          lastDurationMs: finished - startedMs,
          lastSuccessAt: new Date(finished).toISOString(),
          ...(outcome ? { lastOutcome: outcome } : {}),
        };
        log.debug({ reason, lagMs, durationMs: finished - startedMs, ...outcome }, 'sweep finished');
      } catch (err) {
        const finished = this.#clock.nowMs();
        const e = toAppError(err);
        sweep.stats = {
          ...sweep.stats,
          runs: sweep.stats.runs + 1,
          failures: sweep.stats.failures + 1,
          lastFinishedAt: new Date(finished).toISOString(),
          lastDurationMs: finished - startedMs,
          lastError: {
            code: e.code,
            message: e.category === 'internal' ? 'internal error (see the daemon log)' : e.message,
            at: new Date(finished).toISOString(),
          },
        };
        log.error({ err, reason }, 'sweep failed');
      }
      try {
        this.#onRunFinished?.({
          name: def.name,
          reason,
          lagMs,
          durationMs: sweep.stats.lastDurationMs ?? 0,
          ok: sweep.stats.lastError === undefined,
        });
      } catch (err) {
        log.error({ err }, 'onRunFinished hook threw');
      }
    })();
    const running = work.finally(() => {
      if (sweep.running === running) delete sweep.running;
    });
    sweep.running = running;
    return running;
  }

  #statsOf(sweep: Sweep): SweepStats {
    const next = sweep.trigger.nextRunAt();
    return {
      name: sweep.def.name,
      schedule: sweep.trigger.schedule,
      running: sweep.running !== undefined,
      ...sweep.stats,
      ...(next ? { nextRunAt: next.toISOString() } : {}),
    };
  }
}
