import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Low } from 'lowdb';
import { StoreError } from '../../core/errors.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { writeFileDurable } from '../../core/fs-durable.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { describe } from '../describe-error.js';
import { acquireDataDirLock, type DataDirLock } from '../lock.js';
import { StagedStore, type CommitBatch, type ObservableStore, type Persistence } from '../staging.js';
import { BlobDirectory } from './blob-dir.js';
import {
  DocumentFile,
  corrupt,
  toStoreDocument,
  type DurableWriter,
  type StoreDocument,
} from './document-file.js';
import { MIGRATIONS, migrate, type MigratableDocument, type Migration } from './migrations.js';

export const DOCUMENT_FILE = 'keywright.json';
export const BLOB_DIR = 'blobs';
/** Blob files written or removed at once by one flush. */
const BLOB_IO_PARALLELISM = 16;

export interface LowdbStoreOptions {
  readonly dataDir: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Defaults to the shipped MIGRATIONS; tests pass their own. */
  readonly migrations?: readonly Migration[];
  /** Defaults to writeFileDurable; fault-injection tests pass one that fails. */
  readonly durableWrite?: DurableWriter;
}

/**
 * Opens (creating if needed) the embedded store of a data directory: `keywright.json` holds every record
 * as compact JSON, `blobs/` holds bulky values, `keywright.lock` keeps a second process out. Built on
 * lowdb's Low with an adapter of our own (DocumentFile): never JSONFilePreset, which silently switches
 * to memory under NODE_ENV=test.
 *
 * A flush writes the blobs it adds, then the whole document (one durable write, however many
 * transactions it carries), then removes the blobs it deleted.
 */
export async function openLowdbStore(options: LowdbStoreOptions): Promise<ObservableStore> {
  const { dataDir } = options;
  const logger = (options.logger ?? silentLogger).child({ component: 'store', dataDir });
  const write = options.durableWrite ?? writeFileDurable;
  const lock = await acquireDataDirLock(dataDir, { logger });
  try {
    await removeTempLeftovers(dataDir, logger);
    const file = new DocumentFile(join(dataDir, DOCUMENT_FILE), write);
    const { db, doc } = await loadDocument(file, options.migrations ?? MIGRATIONS, logger);
    const blobs = new BlobDirectory(join(dataDir, BLOB_DIR), write);
    return new StagedStore({
      schemaVersion: doc.schemaVersion,
      base: doc.collections,
      clock: options.clock ?? systemClock,
      logger,
      persistence: lowdbPersistence(db, blobs, lock, logger),
    });
  } catch (err) {
    await lock.release();
    throw err;
  }
}

async function loadDocument(
  file: DocumentFile,
  migrations: readonly Migration[],
  logger: Logger,
): Promise<{ db: Low<MigratableDocument>; doc: StoreDocument }> {
  const db = new Low<MigratableDocument>(file, { schemaVersion: 0 });
  await db.read();
  const fresh = db.data.schemaVersion === 0;
  if (fresh) await assertNoOrphanBlobs(file.path);
  const from = db.data.schemaVersion;
  const ran = migrate(db.data, migrations, file.path);
  let doc: StoreDocument;
  try {
    doc = toStoreDocument(db.data, file.path);
  } catch (err) {
    if (ran === 0) throw err;
    throw new StoreError(
      'STORE_MIGRATION',
      `migrating ${file.path} produced a malformed document; the file was left unchanged`,
      {
        cause: err,
        details: { file: file.path, from },
      },
    );
  }
  // From here on the engine owns doc.collections and mutates it in place; every flush writes db.data.
  db.data = doc;
  if (ran === 0) file.encode(doc); // warm the per-record encodings now, not during the first write
  if (ran > 0) {
    try {
      await db.write();
    } catch (cause) {
      throw new StoreError('STORE_IO', `cannot write ${file.path}: ${describe(cause)}`, {
        cause,
        details: { file: file.path },
      });
    }
    logger.info(
      { from, to: doc.schemaVersion },
      fresh ? 'created the store document' : 'migrated the store document',
    );
  }
  return { db, doc };
}

/**
 * No document but blobs present means the document was lost (deleted, or a botched restore): starting
 * empty would orphan every sealed key, so refuse instead.
 */
async function assertNoOrphanBlobs(documentPath: string): Promise<void> {
  const blobRoot = join(documentPath, '..', BLOB_DIR);
  const entries = await readdir(blobRoot).catch(() => [] as string[]);
  if (entries.some((name) => !name.startsWith('.'))) {
    throw corrupt(documentPath, `it is missing while ${blobRoot} holds data`);
  }
}

/**
 * The document's temp files are left behind only by a crash, and we hold the lock, so nobody else is
 * writing one. (The lock's own temp files are left alone: a process racing us for the lock may be
 * between creating and linking one.)
 */
async function removeTempLeftovers(dataDir: string, logger: Logger): Promise<void> {
  const names = await readdir(dataDir);
  const leftovers = names.filter((n) => n.startsWith(`.${DOCUMENT_FILE}.`) && n.endsWith('.tmp'));
  for (const name of leftovers) await rm(join(dataDir, name), { force: true });
  if (leftovers.length > 0) logger.warn({ files: leftovers.length }, 'removed temp files left by a crash');
}

function lowdbPersistence(
  db: Low<MigratableDocument>,
  blobs: BlobDirectory,
  lock: DataDirLock,
  logger: Logger,
): Persistence {
  return {
    async persist(batch: CommitBatch) {
      const written = await forEachLimited([...batch.blobPuts], ([key, bytes]) => blobs.write(key, bytes));
      const failedWrite = written.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failedWrite !== undefined) throw failedWrite.reason;
      await db.write();
      // The document no longer refers to these, so failing to remove one only leaves an orphan file.
      const removed = await forEachLimited([...batch.blobDeletes], (key) => blobs.remove(key));
      const failed = removed.filter((r) => r.status === 'rejected').length;
      if (failed > 0)
        logger.warn({ blobs: failed }, 'could not remove deleted blobs; they are orphaned on disk');
    },
    readBlob: (key) => blobs.read(key),
    listBlobs: (prefix) => blobs.list(prefix),
    close: () => lock.release(),
  };
}

/**
 * Runs `fn` over `items`, at most BLOB_IO_PARALLELISM at a time (a KEK rotation may put every sealed blob
 * in one transaction: unbounded, that would be thousands of open files), and waits for all of them.
 */
async function forEachLimited<T>(
  items: readonly T[],
  fn: (item: T) => Promise<void>,
): Promise<PromiseSettledResult<void>[]> {
  const results: PromiseSettledResult<void>[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!);
        results[i] = { status: 'fulfilled', value: undefined };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(BLOB_IO_PARALLELISM, items.length) }, worker));
  return results;
}
