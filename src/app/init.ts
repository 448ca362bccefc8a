import { writeFileDurable } from '../core/fs-durable.js';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { AppError } from '../core/errors.js';
import type { Config } from '../config/schema.js';
import { initKek, loadKeyRing, type KekSecrets } from '../keys/software/kek.js';
import { readKekState } from '../keys/software/kek-state.js';
import { SoftwareSealer } from '../keys/software/sealer.js';
import { ensureCaHierarchy } from '../ca/authority.js';
import { openServices, isInitializedStore, META_COLLECTION, type InitMarker } from './services.js';
import { appPaths } from './paths.js';
import { VERSION } from './version.js';

export interface InitResult {
  readonly dataDir: string;
  /** Shown once: the only copy. */
  readonly adminToken: string;
  readonly adminTokenId: string;
  readonly kekId: string;
  readonly masterKeySource: string;
  readonly caChain: readonly string[];
  readonly rootCertificateFile: string;
}

export async function isInitialized(dataDir: string): Promise<boolean> {
  return (await readKekState(dataDir)) !== undefined;
}

/**
 * Creates a data directory: KEK, store, audit log, the default root and intermediate CA and one admin
 * token. Holds the data-dir lock throughout. A crashed init is resumed by running it again: each step
 * checks what exists; only a completed init is refused.
 */
export async function initDataDir(options: {
  config: Config;
  secrets: KekSecrets;
  clock?: Clock;
  logger?: Logger;
}): Promise<InitResult> {
  const { config } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const services = await openServices(config, clock, logger);
  try {
    const { store, audit, tokens } = services;
    if (isInitializedStore(store)) {
      throw new AppError(
        'DAEMON_ALREADY_INITIALIZED',
        `${config.dataDir} is already initialized; to start over, use a new --data-dir`,
        {
          details: { dataDir: config.dataDir },
        },
      );
    }
    const actor = 'cli:init';
    const resumed = (await readKekState(config.dataDir)) !== undefined;
    const ring = resumed
      ? await loadKeyRing(config.dataDir, config.masterKey, options.secrets)
      : await initKek(config.dataDir, config.masterKey, options.secrets);
    if (!resumed) {
      await audit.append({
        actor,
        action: 'kek.create',
        subject: `kek:${ring.primaryId}`,
        outcome: 'success',
        details: { source: config.masterKey.source },
      });
    }
    const sealer = new SoftwareSealer(ring);
    const hierarchy = await ensureCaHierarchy({ store, sealer, audit, clock, config: config.ca, actor });
    await writeFileDurable(appPaths(config.dataDir).rootCertificate, hierarchy.root.certificatePem, 0o644);

    const prepared = tokens.prepare({
      role: 'admin',
      description: 'initial admin token (keywright init)',
      createdBy: actor,
    });
    await audit.append({
      actor,
      action: 'token.create',
      subject: `token:${prepared.record.id}`,
      outcome: 'success',
      details: { role: 'admin' },
    });
    await tokens.commit(prepared);
    await store.tx((tx) =>
      tx
        .collection<InitMarker>(META_COLLECTION)
        .put({ id: 'init', completedAt: clock.now().toISOString(), version: VERSION }),
    );
    return {
      dataDir: config.dataDir,
      adminToken: prepared.token,
      adminTokenId: prepared.record.id,
      kekId: ring.primaryId,
      masterKeySource: config.masterKey.source,
      caChain: [hierarchy.intermediate.id, hierarchy.root.id],
      rootCertificateFile: appPaths(config.dataDir).rootCertificate,
    };
  } finally {
    await services.close();
  }
}
