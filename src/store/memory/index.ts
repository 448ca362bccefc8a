import { systemClock, type Clock } from '../../core/clock.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import type { Collections } from '../layers.js';
import { StagedStore, type CommitBatch, type ObservableStore } from '../staging.js';
import { LATEST_SCHEMA_VERSION } from '../lowdb/migrations.js';

export interface MemoryStoreOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly schemaVersion?: number;
  /**
   * Runs at every flush, standing in for the disk: throw (or reject) to simulate a durable write that
   * failed, so tests can check rollback without files.
   */
  readonly beforeFlush?: (batch: CommitBatch) => void | Promise<void>;
}

/**
 * The Store with nothing on disk, for unit tests of code that uses the port. Same staging, isolation,
 * group commit and rollback as the lowdb store, because both run the same StagedStore.
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): ObservableStore {
  const base: Collections = new Map();
  const blobs = new Map<string, Buffer>();
  return new StagedStore({
    schemaVersion: options.schemaVersion ?? LATEST_SCHEMA_VERSION,
    base,
    clock: options.clock ?? systemClock,
    logger: options.logger ?? silentLogger,
    persistence: {
      async persist(batch) {
        await options.beforeFlush?.(batch);
        for (const [key, bytes] of batch.blobPuts) blobs.set(key, Buffer.from(bytes));
        for (const key of batch.blobDeletes) blobs.delete(key);
      },
      readBlob(key) {
        const bytes = blobs.get(key);
        return Promise.resolve(bytes === undefined ? undefined : Buffer.from(bytes));
      },
      listBlobs: (prefix) => Promise.resolve([...blobs.keys()].filter((k) => k.startsWith(prefix)).sort()),
      close: () => Promise.resolve(),
    },
  });
}
