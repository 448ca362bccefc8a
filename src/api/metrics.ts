/**
 * Prometheus metrics (prom-client lives here only), named in cert-manager's spirit. Certificate gauges
 * are computed from the store at scrape time, so they are never stale; counters are fed by observers.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Store } from '../store/port.js';
import type { StoreStats } from '../store/index.js';
import type { AuditStats } from '../audit/audit-log.js';
import {
  CERTIFICATES_COLLECTION,
  VERSIONS_COLLECTION,
  versionId,
  type CertificateRecord,
  type VersionRecord,
} from '../lifecycle/records.js';
import type { IssuanceOutcome } from '../lifecycle/certificate-service.js';

export interface MetricsSources {
  readonly store: Store & { stats?(): StoreStats };
  readonly audit: { readonly stats: AuditStats };
  readonly nowMs: () => number;
}

export interface Metrics {
  readonly registry: Registry;
  observeIssuance(outcome: IssuanceOutcome): void;
  /** An expiry alert raised (after de-duplication). */
  observeExpiryAlert(certificate: string, level: 'warning' | 'critical'): void;
  /** Sweep lag and outcomes, fed by the scheduler. */
  observeSweep(name: string, lagMs: number, ok: boolean): void;
}

export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'keywright_' });
  const certs = () =>
    sources.store.collection<CertificateRecord>(CERTIFICATES_COLLECTION).list((c) => c.retired !== true);
  const current = (c: CertificateRecord) =>
    c.currentVersion === undefined
      ? undefined
      : sources.store.collection<VersionRecord>(VERSIONS_COLLECTION).find(versionId(c.id, c.currentVersion));

  new Gauge({
    name: 'keywright_certificate_expiration_timestamp_seconds',
    help: 'The notAfter of the current version of each managed certificate.',
    labelNames: ['name', 'issuer'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of certs()) {
        const v = current(c);
        if (v) this.set({ name: c.id, issuer: c.issuer }, Date.parse(v.notAfter) / 1000);
      }
    },
  });
  new Gauge({
    name: 'keywright_certificate_renewal_timestamp_seconds',
    help: 'When the daemon will renew each managed certificate.',
    labelNames: ['name', 'issuer'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of certs())
        if (c.renewAt) this.set({ name: c.id, issuer: c.issuer }, Date.parse(c.renewAt) / 1000);
    },
  });
  new Gauge({
    name: 'keywright_certificate_ready_status',
    help: 'Whether each managed certificate has a valid, unrevoked current version (condition True/False).',
    labelNames: ['name', 'issuer', 'condition'],
    registers: [registry],
    collect() {
      this.reset();
      const now = sources.nowMs();
      for (const c of certs()) {
        const v = current(c);
        const ready = v !== undefined && v.status === 'active' && Date.parse(v.notAfter) > now;
        this.set({ name: c.id, issuer: c.issuer, condition: 'True' }, ready ? 1 : 0);
        this.set({ name: c.id, issuer: c.issuer, condition: 'False' }, ready ? 0 : 1);
      }
    },
  });
  const issuances = new Counter({
    name: 'keywright_issuances_total',
    help: 'Issuance attempts by issuer and outcome (success, or the error code).',
    labelNames: ['issuer', 'outcome'],
    registers: [registry],
  });
  const issuanceSeconds = new Histogram({
    name: 'keywright_issuance_duration_seconds',
    help: 'Time from key generation to the version being durable.',
    labelNames: ['issuer'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
    registers: [registry],
  });
  new Gauge({
    name: 'keywright_store_commits_total',
    help: 'Store transactions made durable.',
    registers: [registry],
    collect() {
      this.set(sources.store.stats?.().commits ?? 0);
    },
  });
  new Gauge({
    name: 'keywright_store_flushes_total',
    help: 'Durable store flushes (group commits).',
    registers: [registry],
    collect() {
      this.set(sources.store.stats?.().flushes ?? 0);
    },
  });
  new Gauge({
    name: 'keywright_audit_entries_appended_total',
    help: 'Audit entries appended since start.',
    registers: [registry],
    collect() {
      this.set(sources.audit.stats.appended);
    },
  });
  const sweepLag = new Gauge({
    name: 'keywright_scheduler_lag_seconds',
    help: 'How late the last run of each sweep started.',
    labelNames: ['sweep'],
    registers: [registry],
  });
  const sweeps = new Counter({
    name: 'keywright_scheduler_runs_total',
    help: 'Sweep runs by outcome.',
    labelNames: ['sweep', 'outcome'],
    registers: [registry],
  });

  const alerts = new Counter({
    name: 'keywright_certificate_expiry_alerts_total',
    help: 'Expiry alerts raised: within the threshold of expiry while renewal fails or is overdue.',
    labelNames: ['name', 'level'],
    registers: [registry],
  });

  return {
    registry,
    observeExpiryAlert(certificate, level) {
      alerts.inc({ name: certificate, level });
    },
    observeIssuance(o) {
      issuances.inc({ issuer: o.issuer, outcome: o.ok ? 'success' : (o.code ?? 'error') });
      if (o.ok) issuanceSeconds.observe({ issuer: o.issuer }, o.durationMs / 1000);
    },
    observeSweep(name, lagMs, ok) {
      sweepLag.set({ sweep: name }, lagMs / 1000);
      sweeps.inc({ sweep: name, outcome: ok ? 'success' : 'failure' });
    },
  };
}
