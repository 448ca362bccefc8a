/** The scheduler: named, non-overlapping sweeps on cron or interval triggers. No business logic. */
export {
  Scheduler,
  type RunReason,
  type SchedulerOptions,
  type SweepContext,
  type SweepDefinition,
  type SweepOutcome,
  type SweepRunReport,
  type SweepStats,
} from './scheduler.js';
export { mapLimit } from './map-limit.js';
export {
  cronTrigger,
  defaultTriggers,
  intervalTrigger,
  ManualTrigger,
  MIN_INTERVAL_MS,
  type Trigger,
  type TriggerFactory,
  type TriggerSpec,
} from './triggers.js';
