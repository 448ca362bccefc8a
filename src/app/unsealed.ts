import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Config } from '../config/schema.js';
import type { Store } from '../store/port.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { SoftwareSealer } from '../keys/software/sealer.js';
import { IssuerRegistry } from '../issuer/registry.js';
import { CAS_COLLECTION, type CaRecord } from '../ca/authority.js';
import { InternalCaIssuer } from '../ca/internal-issuer.js';
import { CertificateService } from '../lifecycle/certificate-service.js';
import { VpnService } from '../vpn/service.js';

/** Everything that needs the KEK: built once the daemon is unsealed, in one place. */
export interface UnsealedServices {
  readonly issuers: IssuerRegistry;
  readonly internalCas: ReadonlyMap<string, InternalCaIssuer>;
  readonly certificates: CertificateService;
  readonly vpn: VpnService;
}

export function buildUnsealedServices(deps: {
  config: Config;
  store: Store;
  sealer: SoftwareSealer;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
}): UnsealedServices {
  const { config, store, sealer, audit, clock, logger } = deps;
  const issuers = new IssuerRegistry();
  const internalCas = new Map<string, InternalCaIssuer>();
  for (const ca of store.collection<CaRecord>(CAS_COLLECTION).list((c) => c.keyBlob !== undefined)) {
    const issuer = new InternalCaIssuer({
      name: ca.id,
      store,
      sealer,
      clock,
      ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}),
    });
    internalCas.set(ca.id, issuer);
    issuers.register(issuer);
  }
  const certificates = new CertificateService({
    store,
    sealer,
    audit,
    clock,
    logger: logger.child({ component: 'lifecycle' }),
    resolveIssuer: (ref) => issuers.resolve(ref),
  });
  const vpn = new VpnService({ store, sealer, audit, clock });
  return { issuers, internalCas, certificates, vpn };
}
