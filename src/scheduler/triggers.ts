/**
 * What fires a sweep: a cron expression (node-cron, the only importer of it) or a fixed interval. A
 * trigger only says "now, for this scheduled time"; overlap, lag and errors are the Scheduler's. Tests
 * hand the Scheduler a manual trigger and fire it by hand.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { ValidationError } from '../core/errors.js';
import { formatDuration } from '../core/duration.js';

export interface Trigger {
  /** `cron 0 * * * *` or `every 5m`, for status and logs. */
  readonly schedule: string;
  start(fire: (scheduledAt: Date) => void): void;
  stop(): void;
  nextRunAt(): Date | undefined;
}

export interface TriggerSpec {
  readonly name: string;
  readonly cron?: string;
  readonly everyMs?: number;
  readonly timezone?: string;
}

export type TriggerFactory = (spec: TriggerSpec) => Trigger;

/** The shortest interval accepted: a sweep reads the store, so sub-second loops are a bug. */
export const MIN_INTERVAL_MS = 10;

export function defaultTriggers(clock: Clock, logger: Logger): TriggerFactory {
  return (spec) => {
    if (spec.cron !== undefined && spec.everyMs === undefined) return cronTrigger(spec, logger);
    if (spec.everyMs !== undefined && spec.cron === undefined) return intervalTrigger(spec.everyMs, clock);
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `sweep "${spec.name}": give exactly one of cron or everyMs`,
      {
        details: { field: `sweeps.${spec.name}` },
      },
    );
  };
}

export function cronTrigger(spec: TriggerSpec, logger: Logger): Trigger {
  const expression = spec.cron ?? '';
  if (!cron.validate(expression)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `sweep "${spec.name}": "${expression}" is not a cron expression`,
      {
        details: { field: `sweeps.${spec.name}.cron`, value: expression },
      },
    );
  }
  let task: ScheduledTask | undefined;
  const log = logger.child({ sweep: spec.name });
  return {
    schedule: `cron ${expression}`,
    start(fire) {
      task = cron.createTask(expression, (ctx) => fire(ctx.date), {
        name: spec.name,
        unref: true,
        ...(spec.timezone !== undefined ? { timezone: spec.timezone } : {}),
        logger: {
          info: (m) => log.debug({}, m),
          warn: (m) => log.warn({}, m),
          error: (m) => log.error({}, String(m)),
          debug: (m) => log.debug({}, String(m)),
        },
      });
      void Promise.resolve(task.start()).catch((err: unknown) =>
        log.error({ err }, 'cron task did not start'),
      );
    },
    stop() {
      const t = task;
      task = undefined;
      if (t) void Promise.resolve(t.destroy()).catch(() => undefined);
    },
    nextRunAt() {
      return task?.getNextRun() ?? undefined;
    },
  };
}

/** Every `everyMs`, on a fixed grid from the start: a slow run delays, but does not shift, the next. */
export function intervalTrigger(everyMs: number, clock: Clock): Trigger {
  if (!Number.isFinite(everyMs) || everyMs < MIN_INTERVAL_MS) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `everyMs must be at least ${MIN_INTERVAL_MS} ms, got ${everyMs}`,
      {
        details: { field: 'everyMs', value: everyMs },
      },
    );
  }
  let timer: NodeJS.Timeout | undefined;
  let next: number | undefined;
  return {
    schedule: `every ${formatDuration(everyMs)}`,
    start(fire) {
      next = clock.nowMs() + everyMs;
      const arm = (): void => {
        timer = setTimeout(
          () => {
            const scheduled = next ?? clock.nowMs();
            // skip grid points that passed while the process was stalled: one run, its lag recorded
            const now = clock.nowMs();
            next = scheduled + everyMs * Math.max(1, Math.ceil((now - scheduled + 1) / everyMs));
            fire(new Date(scheduled));
            arm();
          },
          Math.max(0, (next ?? 0) - clock.nowMs()),
        );
        timer.unref();
      };
      arm();
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      next = undefined;
    },
    nextRunAt() {
      return next === undefined ? undefined : new Date(next);
    },
  };
}

/** A trigger fired by hand (tests, `deploy retry`). */
export class ManualTrigger implements Trigger {
  readonly schedule = 'manual';
  #fire: ((scheduledAt: Date) => void) | undefined;
  start(fire: (scheduledAt: Date) => void): void {
    this.#fire = fire;
  }
  stop(): void {
    this.#fire = undefined;
  }
  nextRunAt(): undefined {
    return undefined;
  }
  get started(): boolean {
    return this.#fire !== undefined;
  }
  /** Fires as the real trigger would; false when stopped. */
  fire(scheduledAt: Date): boolean {
    if (!this.#fire) return false;
    this.#fire(scheduledAt);
    return true;
  }
}
