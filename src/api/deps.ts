import type { Clock } from '../core/clock.js';
import type { Store } from '../store/port.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { TokenService } from '../access/token-service.js';
import type { AcmeService } from '../acme/index.js';
import type { VpnService } from '../vpn/service.js';
import type { CertificateService } from '../lifecycle/certificate-service.js';
import type { CaService } from '../ca/service.js';
import type { EventBus } from '../lifecycle/event-bus.js';
import type { Metrics } from './metrics.js';
import type { CertificateDeployer } from '../lifecycle/deployer.js';

/** What the API needs from the rest of the daemon, wired by app/. */
export interface ApiDeps {
  readonly clock: Clock;
  readonly store: Store;
  readonly audit: AuditLog;
  readonly tokens: TokenService;
  readonly version: string;
  /** The ACME client (accounts, issuers); absent while sealed. */
  readonly acme?: AcmeService | undefined;
  /** Prometheus metrics; none in tests that do not ask for them. */
  readonly metrics?: Metrics;
  /** Pushes versions to deploy targets; undefined while sealed. */
  readonly deployer?: CertificateDeployer;
  /** Managed certificates; undefined while sealed (it needs the sealer). */
  readonly certificates?: CertificateService;
  /** Internal CAs (management, CRL, OCSP); undefined while sealed (they sign). */
  readonly cas?: CaService;
  /** WireGuard networks; undefined while sealed (it needs the sealer). */
  readonly vpn?: VpnService;
  /** Distribution events (SSE, long-poll wake-ups); undefined while sealed. */
  readonly events?: EventBus;
  /** Re-read the configuration and reconcile its certificates (POST /v1/reload); absent in tests. */
  readonly reload?: (actor: string) => Promise<unknown>;
  /**
   * A consistent backup of the data directory as gzip bytes (GET /v1/backup), its `backup.create` audit
   * entry already written; absent where nothing wires it (the route then answers 503).
   */
  readonly backup?: (by: {
    readonly actor: string;
    readonly requestId: string;
  }) => Promise<{ readonly filename: string; readonly body: NodeJS.ReadableStream }>;
  /** Sealed: the KEK is not loaded, only health answers. */
  isSealed(): boolean;
  /** Extra readiness checks (store open, KEK loaded); a string names what is not ready. */
  notReadyReason(): string | undefined;
}
