import type { Config } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { AppError } from '../core/errors.js';
import { openLowdbStore } from '../store/lowdb/index.js';
import type { ObservableStore } from '../store/index.js';
import { AuditLog } from '../audit/index.js';
import { TokenService } from '../access/token-service.js';
import { loadKeyRing, type KekSecrets } from '../keys/software/kek.js';
import { SoftwareSealer } from '../keys/software/sealer.js';
import { appPaths } from './paths.js';

/** The collection holding one-off facts about the data dir (e.g. that init completed). */
export const META_COLLECTION = 'meta';
export interface InitMarker {
  readonly id: 'init';
  readonly completedAt: string;
  readonly version: string;
}

/** The pieces every in-process command needs, opened in dependency order and closed in reverse. */
export interface Services {
  readonly config: Config;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly store: ObservableStore;
  readonly audit: AuditLog;
  readonly tokens: TokenService;
  close(): Promise<void>;
}

export interface OpenServicesOptions {
  /**
   * Verify the audit chain after start-up (the daemon calls audit.verifyChain() once it listens) instead
   * of before open returns; offline commands keep the default, verifying at open.
   */
  readonly deferAuditVerification?: boolean;
}

export async function openServices(
  config: Config,
  clock: Clock,
  logger: Logger,
  options: OpenServicesOptions = {},
): Promise<Services> {
  const store = await openLowdbStore({ dataDir: config.dataDir, clock, logger });
  let audit: AuditLog;
  try {
    audit = await AuditLog.open({
      path: appPaths(config.dataDir).auditLog,
      clock,
      logger,
      deferVerification: options.deferAuditVerification === true,
      exportDurability: config.audit.exportDurability,
    });
  } catch (err) {
    await store.close();
    throw err;
  }
  return {
    config,
    clock,
    logger,
    store,
    audit,
    tokens: new TokenService({ store, clock }),
    async close() {
      await audit.close().catch((err: unknown) => logger.error({ err }, 'closing the audit log failed'));
      await store.close();
    },
  };
}

export function isInitializedStore(store: ObservableStore): boolean {
  return store.collection<InitMarker>(META_COLLECTION).find('init') !== undefined;
}

export async function openSealer(config: Config, secrets: KekSecrets): Promise<SoftwareSealer> {
  const ring = await loadKeyRing(config.dataDir, config.masterKey, secrets);
  return new SoftwareSealer(ring);
}

export function notInitialized(dataDir: string): AppError {
  return new AppError(
    'DAEMON_NOT_INITIALIZED',
    `${dataDir} is not initialized: run keywright init --data-dir ${dataDir} (or serve --init)`,
    {
      details: { dataDir },
    },
  );
}
