import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Low } from 'lowdb';
import { StoreError } from '../../core/errors.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { pathExists, writeFileDurable } from '../../core/fs-durable.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { describe } from '../describe-error.js';
import { acquireDataDirLock, type DataDirLock } from '../lock.js';
import {
  StagedStore,
  type CommitBatch,
  type ObservableStore,
  type Persistence,
  type StagedStoreOptions,
} from '../staging.js';
import { BlobDirectory } from './blob-dir.js';
import {
  DocumentFile,
  corrupt,
  toStoreDocument,
  type DurableWriter,
  type StoreDocument,
} from './document-file.js';
import { MIGRATIONS, migrate, type MigratableDocument, type Migration } from './migrations.js';
import {
  JOURNAL_COMPACTING,
  JOURNAL_FILE,
  JournalWriter,
  encodeJournalEntry,
  readJournal,
  removeJournal,
  type JournalAppend,
  type JournalEntry,
} from './journal.js';
import { DELETED, type Collections } from '../layers.js';
import type { SnapshotCapable, StoreSnapshot, StoredRecord } from '../port.js';

export const DOCUMENT_FILE = 'keywright.json';
export const BLOB_DIR = 'blobs';
/**
 * Blob files written or removed at once by a compaction: no more than libuv's 4 threads, so a flush's
 * journal append never queues behind a long line of blob fsyncs.
 */
const COMPACTION_IO_PARALLELISM = 4;
/** The journal is folded into the document once it is this big, or bigger than the document. */
const COMPACT_AT_BYTES = 8 * 1024 * 1024;
const COMPACTION_RETRY_MS = 10_000;
/** Records encoded per event-loop turn by a compaction whose encodings are not cached yet. */
const ENCODE_SLICE_RECORDS = 500;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
/**
 * After open, every record's encoding is cached in the background (StoreJournal#startWarming) in slices
 * of this many records, one slice per event-loop turn: ~2 ms each (15 ms at most) on the dev box with
 * 10k certificates (30k records, 13 MB), where encoding all of them at once took 150 ms.
 */
const WARM_SLICE_RECORDS = 500;
/** …starting this long after open, so the rest of start-up and the first requests go first. */
const WARM_DELAY_MS = 1_000;

export interface LowdbStoreOptions {
  readonly dataDir: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Defaults to the shipped MIGRATIONS; tests pass their own. */
  readonly migrations?: readonly Migration[];
  /** Defaults to writeFileDurable; fault-injection tests pass one that fails. */
  readonly durableWrite?: DurableWriter;
  /** Defaults to write + fdatasync; fault-injection tests pass one that fails. */
  readonly journalAppend?: JournalAppend;
  /** Journal size that starts a compaction; default 8 MiB or the document's size, whichever is larger. */
  readonly compactAtBytes?: number;
  /** When and how the record encodings are cached after open (tests shorten it and watch it end). */
  readonly warmEncodings?: WarmEncodings;
}

export interface WarmEncodings {
  /** Delay after open; default WARM_DELAY_MS. */
  readonly afterMs?: number;
  /** Records per event-loop turn; default WARM_SLICE_RECORDS. */
  readonly sliceRecords?: number;
  /** Called once every record present at open has been visited. */
  readonly onDone?: (stats: { readonly records: number; readonly slices: number }) => void;
}

/**
 * Opens (creating if needed) the embedded store of a data directory: `keywright.json` holds every record
 * as compact JSON, `blobs/` holds bulky values, `keywright.lock` keeps a second process out. Built on
 * lowdb's Low with an adapter of our own (DocumentFile): never JSONFilePreset, which silently switches
 * to memory under NODE_ENV=test.
 *
 * A flush appends one line to `keywright.journal` (one fdatasync, however many transactions it carries);
 * the document and the blob files are brought up to date by compaction (StoreJournal).
 */
export async function openLowdbStore(options: LowdbStoreOptions): Promise<ObservableStore> {
  const { dataDir } = options;
  const logger = (options.logger ?? silentLogger).child({ component: 'store', dataDir });
  const write = options.durableWrite ?? writeFileDurable;
  const lock = await acquireDataDirLock(dataDir, { logger });
  try {
    await removeTempLeftovers(dataDir, logger);
    const file = new DocumentFile(join(dataDir, DOCUMENT_FILE), write);
    const blobs = new BlobDirectory(join(dataDir, BLOB_DIR), write);
    const journal = new StoreJournal({
      dataDir,
      file,
      blobs,
      logger,
      ...(options.journalAppend ? { append: options.journalAppend } : {}),
      ...(options.compactAtBytes !== undefined ? { compactAtBytes: options.compactAtBytes } : {}),
      ...(options.warmEncodings !== undefined ? { warm: options.warmEncodings } : {}),
    });
    const doc = await journal.load(options.migrations ?? MIGRATIONS);
    return new LowdbStore(
      {
        schemaVersion: doc.schemaVersion,
        base: doc.collections,
        clock: options.clock ?? systemClock,
        logger,
        persistence: journal.persistence(lock),
      },
      journal,
    );
  } catch (err) {
    await lock.release();
    throw err;
  }
}

/** The staged store over the document and journal, able to hand out snapshots for backups. */
class LowdbStore extends StagedStore implements SnapshotCapable {
  readonly #journal: StoreJournal;

  constructor(options: StagedStoreOptions, journal: StoreJournal) {
    super(options);
    this.#journal = journal;
  }

  async snapshot(): Promise<StoreSnapshot> {
    const captured = await this.atCommitBoundary((durable) =>
      this.#journal.capture(this.schemaVersion, durable),
    );
    try {
      return await this.#journal.snapshotOf(captured);
    } catch (cause) {
      captured.release();
      throw new StoreError('STORE_IO', `taking a store snapshot failed: ${describe(cause)}`, { cause });
    }
  }
}

/**
 * The document plus the journal (journal.ts): a flush appends one line; the journal is folded into the
 * document (compaction) once it outgrows COMPACT_AT_BYTES or the document, in the background while new
 * flushes go to a fresh segment, and always at close. Blobs a flush adds live in memory (they are in
 * the journal) until compaction writes them to their files.
 */
class StoreJournal {
  readonly #dataDir: string;
  readonly #file: DocumentFile;
  readonly #blobs: BlobDirectory;
  readonly #logger: Logger;
  readonly #append: JournalAppend | undefined;
  readonly #compactAtBytes: number | undefined;
  readonly #warm: WarmEncodings;
  /** Cancels the background warm-up of the record encodings (at close). */
  #stopWarming: (() => void) | undefined;
  #doc!: StoreDocument;
  #writer: JournalWriter | undefined;
  /** Blob values logged in the journal and not yet in their files; null = deleted. */
  readonly #pendingBlobs = new Map<string, Buffer | null>();
  #compaction: Promise<void> | undefined;
  /** A failed background compaction leaves its segment; the next try waits until this time. */
  #retryCompactionAt = 0;
  #documentBytes = 0;
  /** Snapshots being read: no compaction starts meanwhile, so the blob files they read stay put. */
  #snapshots = 0;
  #snapshotsDone: (() => void) | undefined;
  #allSnapshotsDone: Promise<void> | undefined;

  constructor(o: {
    dataDir: string;
    file: DocumentFile;
    blobs: BlobDirectory;
    logger: Logger;
    append?: JournalAppend;
    compactAtBytes?: number;
    warm?: WarmEncodings;
  }) {
    this.#dataDir = o.dataDir;
    this.#file = o.file;
    this.#blobs = o.blobs;
    this.#logger = o.logger;
    this.#append = o.append;
    this.#compactAtBytes = o.compactAtBytes;
    this.#warm = o.warm ?? {};
  }

  get #activePath(): string {
    return join(this.#dataDir, JOURNAL_FILE);
  }

  get #compactingPath(): string {
    return join(this.#dataDir, JOURNAL_COMPACTING);
  }

  /** Reads the document, replays the journal onto it, migrates; folds at once after a migration or crash mid-compaction. */
  async load(migrations: readonly Migration[]): Promise<StoreDocument> {
    const db = new Low<MigratableDocument>(this.#file, { schemaVersion: 0 });
    await db.read();
    const fresh = db.data.schemaVersion === 0;
    const compacting = await readJournal(this.#compactingPath, this.#logger);
    const active = await readJournal(this.#activePath, this.#logger);
    if (fresh) {
      await assertNoOrphanBlobs(this.#file.path);
      if (compacting.entries.length + active.entries.length > 0)
        throw corrupt(this.#file.path, `it is missing while ${JOURNAL_FILE} holds commits`);
    }
    for (const entry of [...compacting.entries, ...active.entries]) this.#replay(db.data, entry);
    const from = db.data.schemaVersion;
    const ran = migrate(db.data, migrations, this.#file.path);
    let doc: StoreDocument;
    try {
      doc = toStoreDocument(db.data, this.#file.path);
    } catch (err) {
      if (ran === 0) throw err;
      throw new StoreError(
        'STORE_MIGRATION',
        `migrating ${this.#file.path} produced a malformed document; the file was left unchanged`,
        { cause: err, details: { file: this.#file.path, from } },
      );
    }
    this.#doc = doc;
    const foldNow = ran > 0 || compacting.size > 0;
    if (!foldNow) {
      // The file's size, not an encode: encoding 10k records here cost 0.3–0.45 s of every start.
      this.#documentBytes = (await stat(this.#file.path)).size;
    }
    if (foldNow) {
      try {
        await this.#fold();
      } catch (cause) {
        throw new StoreError('STORE_IO', `cannot write ${this.#file.path}: ${describe(cause)}`, {
          cause,
          details: { file: this.#file.path },
        });
      }
      if (ran > 0) {
        this.#logger.info(
          { from, to: doc.schemaVersion },
          fresh ? 'created the store document' : 'migrated the store document',
        );
      }
    }
    this.#writer = await JournalWriter.open(this.#activePath, foldNow ? 0 : active.size, this.#append);
    if (active.entries.length > 0 && !foldNow)
      this.#logger.info({ commits: active.entries.length }, 'replayed the store journal');
    if (!foldNow) this.#startWarming(); // the last step: nothing of open waits behind it
    return doc;
  }

  /**
   * Caches every record's encoding in the background, a slice per event-loop turn, so the first
   * compaction (or the close) only concatenates instead of stalling the loop for the whole document.
   * A fold at open encodes everything anyway, so this runs only when open did not fold.
   */
  #startWarming(): void {
    const sliceRecords = this.#warm.sliceRecords ?? WARM_SLICE_RECORDS;
    const records = recordsOf(this.#doc);
    let visited = 0;
    let slices = 0;
    let timer: NodeJS.Timeout | undefined;
    let immediate: NodeJS.Immediate | undefined;
    const slice = () => {
      timer = immediate = undefined;
      const taken = this.#file.warm(records, sliceRecords);
      visited += taken;
      slices += 1;
      if (taken === sliceRecords) immediate = setImmediate(slice).unref();
      else {
        this.#stopWarming = undefined;
        this.#logger.debug({ records: visited, slices }, 'store record encodings cached');
        this.#warm.onDone?.({ records: visited, slices });
      }
    };
    timer = setTimeout(slice, this.#warm.afterMs ?? WARM_DELAY_MS).unref();
    this.#stopWarming = () => {
      clearTimeout(timer);
      clearImmediate(immediate);
      this.#stopWarming = undefined;
    };
  }

  #replay(doc: MigratableDocument, entry: JournalEntry): void {
    if (entry.schemaVersion < doc.schemaVersion) return; // folded by the migration that followed it
    if (entry.schemaVersion > doc.schemaVersion) {
      throw new StoreError(
        'STORE_MIGRATION',
        `${JOURNAL_FILE} holds commits of schema version ${entry.schemaVersion}, newer than its document (${doc.schemaVersion}); run the keywright that wrote them or restore a backup`,
        { details: { file: this.#activePath, schemaVersion: entry.schemaVersion } },
      );
    }
    const collections = (doc.collections ??= {}) as Record<string, Record<string, unknown>>;
    for (const [collection, id, record] of entry.records) {
      const byId = (collections[collection] ??= {});
      if (record === null) delete byId[id];
      else byId[id] = record;
    }
    for (const [key, bytes] of entry.blobs) this.#pendingBlobs.set(key, bytes);
  }

  /**
   * Copies the durable state; called between two commits (StagedStore.atCommitBoundary), so it must not
   * wait. Records are immutable, so copying the maps is enough; the journaled blobs are copied the same
   * way. Blob files change only by compaction: none starts until the snapshot is released, and one
   * already running writes what the journaled copy holds and removes only files of blobs deleted before.
   */
  capture(schemaVersion: number, durable: Collections): CapturedState {
    const doc: StoreDocument = {
      schemaVersion,
      collections: new Map([...durable].map(([name, byId]) => [name, new Map(byId)])),
    };
    const journaled = new Map(this.#pendingBlobs);
    this.#snapshots += 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--this.#snapshots === 0) this.#snapshotsDone?.();
    };
    return { doc, journaled, release };
  }

  /** The snapshot of a captured state: which blobs it holds (files plus journal), read lazily. */
  async snapshotOf(captured: CapturedState): Promise<StoreSnapshot> {
    const { doc, journaled } = captured;
    const keys = new Set(await this.#blobs.list(''));
    for (const [key, bytes] of journaled) {
      if (bytes === null) keys.delete(key);
      else keys.add(key);
    }
    const blobKeys = [...keys].sort();
    const file = this.#file;
    const blobs = this.#blobs;
    return {
      schemaVersion: doc.schemaVersion,
      records: [...doc.collections.values()].reduce((n, byId) => n + byId.size, 0),
      blobs: blobKeys.length,
      paths: [DOCUMENT_FILE, ...blobKeys.map((key) => `${BLOB_DIR}/${key}`)],
      release: captured.release,
      async *files() {
        yield { path: DOCUMENT_FILE, mode: 0o600, data: file.encode(doc) };
        for (const key of blobKeys) {
          const data = journaled.get(key) ?? (await blobs.read(key));
          if (data === undefined || data === null) {
            throw new StoreError(
              'STORE_IO',
              `blob ${key} vanished from ${blobs.root} while a snapshot was being read; take the backup again`,
              { details: { blobKey: key } },
            );
          }
          yield { path: `${BLOB_DIR}/${key}`, mode: 0o600, data };
        }
      },
    };
  }

  /** Resolves once no snapshot is being read (close must not fold under a reader). */
  #snapshotsReleased(): Promise<void> {
    if (this.#snapshots === 0) return Promise.resolve();
    this.#allSnapshotsDone ??= new Promise<void>((resolve) => {
      this.#snapshotsDone = () => {
        this.#snapshotsDone = undefined;
        this.#allSnapshotsDone = undefined;
        resolve();
      };
    });
    return this.#allSnapshotsDone;
  }

  persistence(lock: DataDirLock): Persistence {
    return {
      persist: (batch) => this.#persist(batch),
      readBlob: async (key) => {
        const pending = this.#pendingBlobs.get(key);
        if (pending !== undefined) return pending === null ? undefined : Buffer.from(pending);
        return this.#blobs.read(key);
      },
      listBlobs: async (prefix) => {
        const keys = new Set(await this.#blobs.list(prefix));
        for (const [key, bytes] of this.#pendingBlobs) {
          if (!key.startsWith(prefix)) continue;
          if (bytes === null) keys.delete(key);
          else keys.add(key);
        }
        return [...keys].sort();
      },
      close: async () => {
        this.#stopWarming?.();
        try {
          await this.#snapshotsReleased();
          await this.#compaction;
          if (await pathExists(this.#dataDir)) await this.#fold();
          else {
            // removed under us (a test's temp dir, an operator's rm -rf): nothing left to fold into
            await this.#writer?.close().catch(() => undefined);
            this.#logger.warn({}, 'the data directory was removed while the store was open');
          }
        } finally {
          await lock.release();
        }
      },
    };
  }

  async #persist(batch: CommitBatch): Promise<void> {
    const records: [string, string, StoredRecord | null][] = [];
    for (const [collection, byId] of batch.records) {
      for (const [id, value] of byId) records.push([collection, id, value === DELETED ? null : value]);
    }
    const blobs: [string, Buffer | null][] = [
      // a view, not a copy: staging already copied the caller's bytes, and the store owns them
      ...[...batch.blobPuts].map(([key, bytes]): [string, Buffer] => [
        key,
        Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      ]),
      ...[...batch.blobDeletes].map((key): [string, null] => [key, null]),
    ];
    const line = encodeJournalEntry({ schemaVersion: this.#doc.schemaVersion, records, blobs });
    await this.#writer!.append(line);
    for (const [key, bytes] of blobs) this.#pendingBlobs.set(key, bytes);
    const threshold = this.#compactAtBytes ?? Math.max(COMPACT_AT_BYTES, this.#documentBytes);
    if (this.#writer!.size >= threshold) await this.#startCompaction();
  }

  /**
   * Retires the active segment (the next flush starts a new one) and folds a snapshot of the state at
   * this flush into the document in the background. Runs inside a flush, so no append interleaves.
   */
  async #startCompaction(): Promise<void> {
    if (this.#compaction !== undefined || this.#snapshots > 0 || Date.now() < this.#retryCompactionAt) return;
    if (!(await pathExists(this.#compactingPath))) {
      await this.#writer!.retire(this.#compactingPath);
      this.#writer = await JournalWriter.open(this.#activePath, 0, this.#append);
    }
    // Records are immutable and replaced, never mutated: copying the maps is a consistent snapshot.
    const snapshot: StoreDocument = {
      schemaVersion: this.#doc.schemaVersion,
      collections: new Map([...this.#doc.collections].map(([name, byId]) => [name, new Map(byId)])),
    };
    const blobs = new Map(this.#pendingBlobs);
    const started = Date.now();
    this.#compaction = this.#writeSnapshot(snapshot, blobs)
      .then(() => removeJournal(this.#compactingPath))
      .then(() => this.#dropWritten(blobs))
      .then(
        () => this.#logger.debug({ ms: Date.now() - started }, 'store journal folded into the document'),
        (err: unknown) => {
          this.#retryCompactionAt = Date.now() + COMPACTION_RETRY_MS;
          this.#logger.error(
            { err: describe(err) },
            'folding the store journal into the document failed; commits continue in the journal, retrying later',
          );
        },
      )
      .finally(() => {
        this.#compaction = undefined;
      });
  }

  /**
   * Folds everything into the document now and removes the journal (at open after a migration or a
   * crash mid-compaction, and at close). The caller opens a new segment if it goes on.
   */
  async #fold(): Promise<void> {
    const blobs = new Map(this.#pendingBlobs);
    await this.#writeSnapshot(this.#doc, blobs);
    await removeJournal(this.#compactingPath);
    await (this.#writer?.discard() ?? removeJournal(this.#activePath));
    this.#writer = undefined;
    await this.#dropWritten(blobs);
  }

  /** Blob files first (the document may refer to them), then the document. */
  async #writeSnapshot(doc: StoreDocument, blobs: ReadonlyMap<string, Buffer | null>): Promise<void> {
    const puts = [...blobs].filter((e): e is [string, Buffer] => e[1] !== null);
    const written = await forEachLimited(puts, COMPACTION_IO_PARALLELISM, ([key, bytes]) =>
      this.#blobs.write(key, bytes),
    );
    const failed = written.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    // Records not encoded yet (a cold cache: soon after open, or many new records) a slice per turn,
    // so a big store's first compaction does not stall the event loop (50k records: ~0.5 s at once).
    for (const records of doc.collections.values()) {
      const pending = records.values();
      while (this.#file.warm(pending, ENCODE_SLICE_RECORDS) === ENCODE_SLICE_RECORDS) await nextTurn();
    }
    const parts = this.#file.encodeParts(doc);
    await this.#file.writeEncoded(parts);
    this.#documentBytes = parts.reduce((n, part) => n + part.length, 0);
  }

  /** After the document is durable: remove deleted blobs' files, forget what is now in files. */
  async #dropWritten(blobs: ReadonlyMap<string, Buffer | null>): Promise<void> {
    const deletes = [...blobs].filter(([, bytes]) => bytes === null).map(([key]) => key);
    const removed = await forEachLimited(deletes, COMPACTION_IO_PARALLELISM, (key) =>
      this.#blobs.remove(key),
    );
    const failed = removed.filter((r) => r.status === 'rejected').length;
    if (failed > 0)
      this.#logger.warn({ blobs: failed }, 'could not remove deleted blobs; they are orphaned on disk');
    for (const [key, bytes] of blobs) {
      if (this.#pendingBlobs.get(key) === bytes) this.#pendingBlobs.delete(key);
    }
  }
}

/** A snapshot's copy of the state, before its blob list is known. */
interface CapturedState {
  readonly doc: StoreDocument;
  /** Journaled blob values at the snapshot; null = deleted. */
  readonly journaled: ReadonlyMap<string, Buffer | null>;
  readonly release: () => void;
}

/**
 * Every committed record, read from the live maps as the iteration goes: a record replaced meanwhile is
 * skipped (its successor is visited if not yet passed), so no time goes into encodings nobody will use.
 */
function* recordsOf(doc: StoreDocument): Generator<StoredRecord> {
  for (const byId of doc.collections.values()) yield* byId.values();
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

/**
 * Runs `fn` over `items`, at most BLOB_IO_PARALLELISM at a time (a KEK rotation may put every sealed blob
 * in one transaction: unbounded, that would be thousands of open files), and waits for all of them.
 */
async function forEachLimited<T>(
  items: readonly T[],
  parallelism: number,
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
  await Promise.all(Array.from({ length: Math.min(parallelism, items.length) }, worker));
  return results;
}
