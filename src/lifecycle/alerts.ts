import { createHmac } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Config } from '../config/schema.js';
import type { ExpiryAlert } from './backoff.js';
import type { RenewBefore } from './records.js';
import { parseSecretRef, resolveSecret } from '../deploy/secret-ref.js';

export interface AlertSink {
  readonly threshold: RenewBefore;
  /** Called by the renewal sweep for every certificate that is alerting now. */
  raise(certificate: string, alert: ExpiryAlert): void;
}

/** The configured threshold as the policy's shape. */
export function alertThreshold(config: Config['alerts']): RenewBefore {
  return typeof config.threshold === 'string'
    ? { percent: Number(config.threshold.slice(0, -1)) }
    : { ms: config.threshold };
}

/**
 * Expiry alerts, de-duplicated: an alert for a certificate is passed on when it is new, when its level
 * rises, or once `repeat` has passed; each goes to the log, the event stream (`notify`) and, when
 * configured, a webhook POSTing signed JSON. A failing webhook is logged, never fatal.
 */
export function createAlertSink(options: {
  config: Config['alerts'];
  clock: Clock;
  logger: Logger;
  notify: (certificate: string, alert: ExpiryAlert) => void;
  env?: NodeJS.ProcessEnv;
}): AlertSink {
  const { config, clock, logger } = options;
  const sent = new Map<string, { level: ExpiryAlert['level']; at: number }>();
  const deliver = async (certificate: string, alert: ExpiryAlert): Promise<void> => {
    const hook = config.webhook;
    if (hook === undefined) return;
    const body = Buffer.from(
      JSON.stringify({
        type: 'expiry-alert',
        certificate,
        level: alert.level,
        remainingSeconds: Math.round(alert.remainingMs / 1000),
        message: alert.message,
        at: clock.now().toISOString(),
      }),
    );
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (hook.secret !== undefined) {
      const secret = await resolveSecret(
        parseSecretRef(hook.secret, 'alerts.webhook.secret'),
        options.env ?? process.env,
      );
      headers['x-keywright-signature'] = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    }
    const res = await fetch(hook.url, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(hook.timeout),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`the alert webhook answered HTTP ${res.status}`);
  };
  return {
    threshold: alertThreshold(config),
    raise(certificate, alert) {
      const now = clock.nowMs();
      const last = sent.get(certificate);
      const escalated = last !== undefined && last.level === 'warning' && alert.level === 'critical';
      if (last !== undefined && !escalated && now - last.at < config.repeat) return;
      sent.set(certificate, { level: alert.level, at: now });
      logger[alert.level === 'critical' ? 'error' : 'warn'](
        { certificate, remainingMs: alert.remainingMs, alert: alert.level },
        alert.message,
      );
      options.notify(certificate, alert);
      deliver(certificate, alert).catch((err: unknown) =>
        logger.error(
          { certificate, err: { message: (err as Error).message } },
          'the expiry-alert webhook failed',
        ),
      );
    },
  };
}
