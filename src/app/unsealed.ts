import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Config } from '../config/schema.js';
import type { Store } from '../store/port.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { SoftwareSealer } from '../keys/software/sealer.js';
import { IssuerRegistry } from '../issuer/registry.js';
import type { InternalCaIssuer } from '../ca/internal-issuer.js';
import { CaService } from '../ca/service.js';
import { CertificateService, type IssuanceOutcome } from '../lifecycle/certificate-service.js';
import { CertificateDeployer } from '../lifecycle/deployer.js';
import type { Metrics } from '../api/metrics.js';
import { VpnService } from '../vpn/service.js';
import { EventBus } from '../lifecycle/event-bus.js';

/** Everything that needs the KEK: built once the daemon is unsealed, in one place. */
export interface UnsealedServices {
  readonly issuers: IssuerRegistry;
  /** Live: CAs created or imported later appear here (and in `issuers`) at once. */
  readonly internalCas: ReadonlyMap<string, InternalCaIssuer>;
  readonly cas: CaService;
  readonly certificates: CertificateService;
  readonly vpn: VpnService;
  readonly deployer: CertificateDeployer;
  /** Issued, renewed, revoked, deployed and rotated events, for /v1/events and the long polls. */
  readonly events: EventBus;
}

export function buildUnsealedServices(deps: {
  config: Config;
  store: Store;
  sealer: SoftwareSealer;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
  metrics?: Metrics;
}): UnsealedServices {
  const { config, store, sealer, audit, clock, logger, metrics } = deps;
  const events = new EventBus({
    firstId: clock.nowMs() * 1000,
    onListenerError: (err) => logger.error({ err }, 'an event subscriber failed'),
  });
  const issuers = new IssuerRegistry();
  const cas = new CaService({
    store,
    sealer,
    audit,
    clock,
    logger: logger.child({ component: 'ca' }),
    registry: issuers,
    ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}),
    profiles: config.ca.profiles,
    crlValidityMs: config.ca.crl.validity,
    crlOfflineValidityMs: config.ca.crl.offlineValidity,
    ocspValidityMs: config.ca.ocsp.validity,
  });
  const certificates = new CertificateService({
    store,
    sealer,
    audit,
    clock,
    logger: logger.child({ component: 'lifecycle' }),
    resolveIssuer: (ref) => issuers.resolve(ref),
    onEvent: (e) =>
      events.publish({
        type: e.type,
        resource: { kind: 'cert', name: e.certificate },
        at: e.at,
        details: { version: e.version, serial: e.serialHex },
      }),
    ...(metrics ? { observe: (o: IssuanceOutcome) => metrics.observeIssuance(o) } : {}),
  });
  const vpn = new VpnService({
    store,
    sealer,
    audit,
    clock,
    onEvent: (e) => {
      if (e.type !== 'rotated') return;
      events.publish({
        type: 'rotated',
        resource: { kind: 'vpn', name: e.network },
        at: clock.now().toISOString(),
        details: { generation: e.generation, peers: e.peers },
      });
    },
  });
  const deployer = new CertificateDeployer({
    store,
    audit,
    certificates,
    clock,
    logger: logger.child({ component: 'deploy' }),
    allowedDirs: config.deploy.allowedDirs,
    onDeployed: (run) =>
      events.publish({
        type: 'deployed',
        resource: { kind: 'cert', name: run.certificate },
        at: clock.now().toISOString(),
        details: { version: run.version, ok: run.ok },
      }),
  });
  return { issuers, internalCas: cas.issuers, cas, certificates, vpn, events, deployer };
}
