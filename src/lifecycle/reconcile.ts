import { isDeepStrictEqual } from 'node:util';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Store } from '../store/port.js';
import type { AuditRecorder } from '../audit/audit-log.js';
import type { ManagedCertificateConfig } from '../config/schema.js';
import type { IssuerRef } from '../issuer/port.js';
import { CERTIFICATES_COLLECTION, type CertificateRecord, type CertificateSpec } from './records.js';

export interface ReconcileReport {
  readonly created: string[];
  readonly updated: string[];
  readonly retired: string[];
  readonly unchanged: string[];
  /** Names declared in config that clash with a certificate created over the API. */
  readonly conflicts: string[];
}

/** A config entry as the spec keywright stores. */
export function specFromConfig(c: ManagedCertificateConfig): CertificateSpec {
  return {
    issuer: c.issuer as IssuerRef,
    ...(c.profile !== undefined ? { profile: c.profile } : {}),
    sans: c.sans,
    keyType: c.key,
    lifetimeMs: c.lifetime,
    ...(c.renewBefore !== undefined
      ? {
          renewBefore:
            typeof c.renewBefore === 'string'
              ? { percent: Number(c.renewBefore.slice(0, -1)) }
              : { ms: c.renewBefore },
        }
      : {}),
    keyRotation: c.keyRotation,
  };
}

const SPEC_KEYS = [
  'issuer',
  'profile',
  'sans',
  'keyType',
  'lifetimeMs',
  'renewBefore',
  'keyRotation',
  'deploy',
] as const;

/**
 * Makes the store's config-declared certificates match the config: new ones are declared (the renewal
 * sweep issues them), changed ones get the new spec (the sweep's spec-changed check re-issues), removed
 * ones are retired — never deleted. Certificates created over the API are left alone. One transaction.
 */
export async function reconcileDeclared(deps: {
  store: Store;
  audit: AuditRecorder;
  clock: Clock;
  logger: Logger;
  declared: readonly ManagedCertificateConfig[];
  actor?: string;
}): Promise<ReconcileReport> {
  const report: ReconcileReport = { created: [], updated: [], retired: [], unchanged: [], conflicts: [] };
  const now = deps.clock.now().toISOString();
  const actor = deps.actor ?? 'system';
  const wanted = new Map(deps.declared.map((c) => [c.name, c]));
  const existing = deps.store.collection<CertificateRecord>(CERTIFICATES_COLLECTION);
  const changes: CertificateRecord[] = [];
  for (const [name, c] of wanted) {
    const spec = { ...specFromConfig(c), deploy: c.deploy };
    const current = existing.find(name);
    if (current === undefined) {
      changes.push({
        id: name,
        ...spec,
        source: 'config',
        createdAt: now,
        createdBy: actor,
        updatedAt: now,
        nextVersion: 1,
      });
      report.created.push(name);
    } else if (current.source !== 'config') {
      report.conflicts.push(name);
    } else if (current.retired || SPEC_KEYS.some((k) => !isDeepStrictEqual(current[k], spec[k]))) {
      const { retired: _r, renewBefore: _b, profile: _p, ...rest } = current;
      changes.push({ ...rest, ...spec, updatedAt: now });
      report.updated.push(name);
    } else {
      report.unchanged.push(name);
    }
  }
  for (const current of existing.list((r) => r.source === 'config' && !r.retired && !wanted.has(r.id))) {
    changes.push({ ...current, retired: true, updatedAt: now });
    report.retired.push(current.id);
  }
  for (const name of report.conflicts) {
    deps.logger.error(
      { certificate: name },
      `config declares "${name}", which exists as an API-created certificate; rename one of them`,
    );
  }
  if (changes.length === 0) return report;
  await deps.audit.append({
    actor,
    action: 'cert.reconcile',
    subject: 'config:certificates',
    outcome: 'success',
    details: {
      created: report.created.join(','),
      updated: report.updated.join(','),
      retired: report.retired.join(','),
    },
  });
  await deps.store.tx((tx) => {
    const certs = tx.collection<CertificateRecord>(CERTIFICATES_COLLECTION);
    for (const record of changes) certs.put(record);
  });
  return report;
}
