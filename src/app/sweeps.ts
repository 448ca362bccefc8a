import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Config } from '../config/schema.js';
import type { Store } from '../store/port.js';
import type { AuditLog } from '../audit/audit-log.js';
import { Scheduler } from '../scheduler/index.js';
import type { Metrics } from '../api/metrics.js';
import { renewalSweep, deployRetrySweep, keyDestructionSweep, type SweepDeps } from '../lifecycle/sweeps.js';
import { DEFAULT_KEY_DESTRUCTION } from '../lifecycle/key-destruction.js';
import { createAlertSink } from '../lifecycle/alerts.js';
import type { UnsealedServices } from './unsealed.js';

/** The daemon's sweeps, wired in one place: the scheduler fires them, the modules do the work. */
export function buildScheduler(deps: {
  config: Config;
  store: Store;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
  unsealed: UnsealedServices;
}): Scheduler {
  const { config, unsealed, clock, logger } = deps;
  const s = config.scheduler;
  const scheduler = new Scheduler({
    clock,
    logger,
    ...(deps.metrics ? { onRunFinished: (r) => deps.metrics!.observeSweep(r.name, r.lagMs, r.ok) } : {}),
  });
  const lifecycle: SweepDeps = {
    store: deps.store,
    audit: deps.audit,
    certificates: unsealed.certificates,
    deployer: unsealed.deployer,
    clock,
    logger: logger.child({ component: 'lifecycle' }),
    alerts: createAlertSink({
      config: config.alerts,
      clock,
      logger: logger.child({ component: 'alerts' }),
      notify: (certificate, alert) => {
        deps.metrics?.observeExpiryAlert(certificate, alert.level);
        unsealed.events.publish({
          type: 'expiry-alert',
          resource: { kind: 'cert', name: certificate },
          at: clock.now().toISOString(),
          details: { level: alert.level, remainingSeconds: Math.round(alert.remainingMs / 1000) },
        });
      },
    }),
  };
  scheduler.add({
    name: 'renewal',
    everyMs: s.renewalInterval,
    concurrency: s.concurrency,
    run: (ctx) => renewalSweep(lifecycle, (i, f) => ctx.mapLimit(i, f)),
  });
  scheduler.add({
    name: 'deploy-retry',
    everyMs: s.deployRetryInterval,
    concurrency: s.concurrency,
    run: (ctx) => deployRetrySweep(lifecycle, (i, f) => ctx.mapLimit(i, f)),
  });
  scheduler.add({
    name: 'key-destruction',
    everyMs: s.keyDestructionInterval,
    run: async () => {
      const certs = await keyDestructionSweep(lifecycle, {
        ...DEFAULT_KEY_DESTRUCTION,
        waitingPeriodMs: s.keyDestructionWaitingPeriod,
      });
      const vpn = await unsealed.vpn.destroyExpiredVpnKeys(clock.now());
      return { processed: certs.processed + vpn.destroyed };
    },
  });
  scheduler.add({
    name: 'vpn-rotation',
    everyMs: s.vpnRotationInterval,
    run: async () => ({ processed: (await unsealed.vpn.rotateDue(clock.now())).length }),
  });
  scheduler.add({
    name: 'crl-refresh',
    everyMs: s.crlRefreshInterval,
    run: () => unsealed.cas.refreshCrls(clock.now()),
  });
  return scheduler;
}
