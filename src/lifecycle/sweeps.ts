/**
 * What the lifecycle's scheduled sweeps do (the scheduler only fires them): renew what the check chain
 * says is due, retry failed deploys, move superseded keys through their states, and raise expiry alerts.
 * Each takes `now` and a mapLimit, so it is driven the same way by the scheduler and by tests.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Store } from '../store/port.js';
import type { AuditRecorder } from '../audit/audit-log.js';
import type { CertificateService } from './certificate-service.js';
import type { CertificateDeployer } from './deployer.js';
import { decideReissue } from './reissue-policy.js';
import { expiryAlert } from './backoff.js';
import type { AlertSink } from './alerts.js';
import { planKeyTransitions, type KeyDestructionPolicy } from './key-destruction.js';
import {
  CERTIFICATES_COLLECTION,
  VERSIONS_COLLECTION,
  versionId,
  type CertificateRecord,
  type VersionRecord,
} from './records.js';

export type MapLimit = <T, R>(
  items: Iterable<T>,
  fn: (item: T, index: number) => Promise<R>,
) => Promise<PromiseSettledResult<R>[]>;

export interface SweepDeps {
  readonly store: Store;
  readonly audit: AuditRecorder;
  readonly certificates: CertificateService;
  readonly deployer: CertificateDeployer;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Where expiry alerts go (de-duplicated there); without one they are only logged. */
  readonly alerts?: AlertSink;
}

function currentVersion(store: Store, c: CertificateRecord): VersionRecord | undefined {
  return c.currentVersion === undefined
    ? undefined
    : store.collection<VersionRecord>(VERSIONS_COLLECTION).find(versionId(c.id, c.currentVersion));
}

/** Renews every certificate whose first firing check says so (respecting back-off), then deploys it. */
export async function renewalSweep(
  deps: SweepDeps,
  mapLimit: MapLimit,
): Promise<{ processed: number; failed: number }> {
  const now = deps.clock.now();
  const due: Array<{ name: string; reason: string }> = [];
  for (const c of deps.store.collection<CertificateRecord>(CERTIFICATES_COLLECTION).list((r) => !r.retired)) {
    const current = currentVersion(deps.store, c);
    if (c.nextAttemptAt !== undefined && Date.parse(c.nextAttemptAt) > now.getTime()) {
      alertIfExpiring(deps, c, current, now);
      continue;
    }
    const renewalWindow =
      current && c.issuer.startsWith('acme:') ? await advisedWindow(deps, c.id) : undefined;
    const decision = decideReissue({
      certificate: c,
      ...(current ? { current } : {}),
      ...(renewalWindow ? { renewalWindow, ariJitter: stableJitter(current!.serialHex) } : {}),
      now,
    });
    if (decision) due.push({ name: c.id, reason: decision.reason });
    else alertIfExpiring(deps, c, current, now);
  }
  const results = await mapLimit(due, async ({ name, reason }) => {
    deps.logger.info({ certificate: name, reason }, 'renewing');
    await deps.certificates.issue(
      name,
      { clock: deps.clock, logger: deps.logger, actor: 'system' },
      { reason },
    );
    await deps.deployer.deploy(name);
  });
  const failed = results.filter((r) => r.status === 'rejected');
  for (const [i, r] of results.entries()) {
    if (r.status === 'rejected') {
      const c = deps.certificates.get(due[i]!.name);
      deps.logger.warn(
        { certificate: c.id, code: c.lastError?.code, nextAttemptAt: c.nextAttemptAt },
        'renewal failed',
      );
      alertIfExpiring(deps, c, currentVersion(deps.store, c), now);
    }
  }
  return { processed: due.length, failed: failed.length };
}

/** ARI window for a certificate; a failure to ask is logged and treated as no advice. */
async function advisedWindow(deps: SweepDeps, name: string): Promise<{ start: Date; end: Date } | undefined> {
  try {
    return await deps.certificates.renewalWindow(name, {
      clock: deps.clock,
      logger: deps.logger,
      actor: 'system',
    });
  } catch (err) {
    deps.logger.warn({ certificate: name, err }, 'could not fetch the renewal window (ARI)');
    return undefined;
  }
}

/** Where in the ARI window this version renews: random per version, stable across restarts (RFC 9773 §4.2). */
function stableJitter(serialHex: string): number {
  return createHash('sha256').update(serialHex).digest().readUInt32BE(0) / 2 ** 32;
}

function alertIfExpiring(
  deps: SweepDeps,
  c: CertificateRecord,
  current: VersionRecord | undefined,
  now: Date,
): void {
  if (current === undefined) return;
  const alert = expiryAlert({
    notBefore: new Date(current.notBefore),
    notAfter: new Date(current.notAfter),
    now,
    renewalFailing:
      c.lastError !== undefined && (c.lastIssuedAt === undefined || c.lastError.at > c.lastIssuedAt),
    ...(c.renewAt ? { renewAt: new Date(c.renewAt) } : {}),
    ...(deps.alerts ? { threshold: deps.alerts.threshold } : {}),
  });
  if (alert === undefined) return;
  if (deps.alerts) deps.alerts.raise(c.id, alert);
  else
    deps.logger.warn(
      { certificate: c.id, remainingMs: alert.remainingMs, alert: alert.level },
      alert.message,
    );
}

/** Retries deploys whose targets are due. */
export async function deployRetrySweep(
  deps: SweepDeps,
  mapLimit: MapLimit,
): Promise<{ processed: number; failed: number }> {
  const due = deps.deployer.dueForRetry(deps.clock.nowMs());
  const results = await mapLimit(due, (name) => deps.deployer.deploy(name));
  return {
    processed: due.length,
    failed: results.filter((r) => r.status === 'rejected' || r.value?.ok === false).length,
  };
}

/**
 * Key states (DESIGN §1): superseded keys are disabled, then scheduled for destruction, then erased after
 * the waiting period. Each change is audited before it is committed; erasing deletes the sealed blob.
 */
export async function keyDestructionSweep(
  deps: SweepDeps,
  policy?: KeyDestructionPolicy,
): Promise<{ processed: number }> {
  const versions = deps.store
    .collection<VersionRecord>(VERSIONS_COLLECTION)
    .list((v) => v.keyBlob !== undefined && v.keyState !== 'destroyed');
  const plan = planKeyTransitions(versions, deps.clock.now(), policy);
  for (const t of plan) {
    await deps.audit.append({
      actor: 'system',
      action: t.to === 'destroyed' ? 'key.destroy' : 'key.state',
      subject: `cert:${t.certificate}`,
      outcome: 'success',
      details: { version: t.version, from: t.from, to: t.to, reason: t.reason },
    });
    await deps.store.tx((tx) => {
      tx.collection<VersionRecord>(VERSIONS_COLLECTION).update(t.versionId, (v) => {
        const { destroyAfter: _d, ...rest } = v;
        return { ...rest, keyState: t.to, ...(t.destroyAfter ? { destroyAfter: t.destroyAfter } : {}) };
      });
      if (t.eraseBlob) tx.deleteBlob(t.eraseBlob);
    });
  }
  return { processed: plan.length };
}
