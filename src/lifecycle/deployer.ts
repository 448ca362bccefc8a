import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Store } from '../store/port.js';
import type { AuditRecorder } from '../audit/audit-log.js';
import { SecretPem, createTargets, deployAll, makeArtifact, type DeployRun } from '../deploy/index.js';
import type { CertificateService } from './certificate-service.js';
import { CERTIFICATES_COLLECTION, type CertificateRecord } from './records.js';

export interface DeployerOptions {
  readonly store: Store;
  readonly audit: AuditRecorder;
  readonly certificates: CertificateService;
  readonly clock: Clock;
  readonly logger: Logger;
  /** deploy.allowedDirs: file targets must write below one of these. */
  readonly allowedDirs: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly onDeployed?: (run: DeployRun) => void;
}

/**
 * Pushes a certificate's current version to its deploy targets and stores each target's state on the
 * certificate record. Never throws for a failing target: a deploy failure never undoes a good issuance;
 * the deploy-retry sweep tries again when a target's nextRetryAt is due.
 */
export class CertificateDeployer {
  readonly #o: DeployerOptions;

  constructor(options: DeployerOptions) {
    this.#o = options;
  }

  /** Deploys the current version of `name`; undefined when it has no targets or no version yet. */
  async deploy(name: string, actor = 'system', signal?: AbortSignal): Promise<DeployRun | undefined> {
    const { certificates, store, clock, logger, audit } = this.#o;
    const cert = certificates.get(name);
    if (!cert.deploy?.length || cert.currentVersion === undefined || cert.retired) return undefined;
    const targets = createTargets(cert.deploy, {
      allowedDirs: this.#o.allowedDirs,
      field: `certificates.${name}.deploy`,
      ...(this.#o.env ? { env: this.#o.env } : {}),
    });
    const wantsKey = cert.deploy.some((t) => 'file' in t && t.file.includeKey !== false);
    const material = await certificates.bundle(
      name,
      wantsKey && certificates.current(name).keyBlob !== undefined,
    );
    const artifact = makeArtifact({
      certificate: name,
      version: material.version.version,
      issuer: material.version.issuer,
      serialHex: material.version.serialHex,
      certificatePem: material.certificatePem,
      chainPem: material.chainPem,
      ...(material.privateKeyPem ? { privateKey: new SecretPem(material.privateKeyPem) } : {}),
      domains: cert.sans,
      notBefore: material.version.notBefore,
      notAfter: material.version.notAfter,
    });
    try {
      const run = await deployAll(
        targets,
        artifact,
        { clock, logger, ...(signal ? { signal } : {}) },
        { ...(cert.deployState ? { previous: cert.deployState } : {}) },
      );
      await audit.append({
        actor,
        action: 'cert.deploy',
        subject: `cert:${name}`,
        outcome: run.ok ? 'success' : 'failure',
        details: {
          version: run.version,
          targets: run.reports.map((r) => `${r.target}=${r.outcome}`).join(' '),
          delivered: artifact.privateKey ? 'certificate+privatekey' : 'certificate',
        },
      });
      await store.tx((tx) =>
        tx
          .collection<CertificateRecord>(CERTIFICATES_COLLECTION)
          .update(name, (c) => ({ ...c, deployState: run.states })),
      );
      this.#o.onDeployed?.(run);
      return run;
    } finally {
      artifact.privateKey?.dispose();
    }
  }

  /** Certificates with a target whose retry is due. */
  dueForRetry(nowMs: number): string[] {
    return this.#o.store
      .collection<CertificateRecord>(CERTIFICATES_COLLECTION)
      .list(
        (c) =>
          !c.retired &&
          (c.deployState ?? []).some(
            (s) => s.nextRetryAt !== undefined && Date.parse(s.nextRetryAt) <= nowMs,
          ),
      )
      .map((c) => c.id);
  }
}
