import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { Config } from '../config/schema.js';
import type { SealedBlob } from '../keys/port.js';
import type { KekSecrets } from '../keys/software/kek.js';
import { rotateKek } from '../keys/software/rotate.js';
import { SEALED_BLOB_PREFIX } from '../store/port.js';
import { openServices, isInitializedStore, notInitialized } from './services.js';

export interface RotateResult {
  readonly previousKekId: string;
  readonly kekId: string;
  readonly rewrapped: number;
}

/**
 * Offline KEK rotation (holds the data-dir lock): every sealed blob's data key is re-wrapped under the new
 * KEK in one store transaction; payloads are untouched. The keys module makes it crash-safe.
 */
export async function rotateMasterKey(options: {
  config: Config;
  secrets: KekSecrets;
  clock?: Clock;
  logger?: Logger;
}): Promise<RotateResult> {
  const { config } = options;
  const services = await openServices(config, options.clock ?? systemClock, options.logger ?? silentLogger);
  try {
    if (!isInitializedStore(services.store)) throw notInitialized(config.dataDir);
    const { store, audit } = services;
    const result = await rotateKek({
      dataDir: config.dataDir,
      source: config.masterKey,
      secrets: options.secrets,
      rewrapAll: async (sealer) => {
        const keys = await store.listBlobs(SEALED_BLOB_PREFIX);
        const rewrapped: Array<[string, Buffer]> = [];
        for (const key of keys) {
          const raw = await store.getBlob(key);
          if (raw === undefined) continue;
          const blob = JSON.parse(raw.toString('utf8')) as SealedBlob;
          const next = await sealer.rewrap(blob);
          if (next !== blob) rewrapped.push([key, Buffer.from(JSON.stringify(next))]);
        }
        await store.tx((tx) => {
          for (const [key, data] of rewrapped) tx.putBlob(key, data);
        });
        return rewrapped.length;
      },
    });
    await audit.append({
      actor: 'cli:keys',
      action: 'kek.rotate',
      subject: `kek:${result.to}`,
      outcome: 'success',
      details: { from: result.from, rewrapped: result.rewrapped },
    });
    return { previousKekId: result.from, kekId: result.to, rewrapped: result.rewrapped };
  } finally {
    await services.close();
  }
}
