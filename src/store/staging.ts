import { StoreError, ValidationError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { CollectionReader, CollectionWriter, Store, StoredRecord, StoreTx } from './port.js';
import { cloneFrozenRecord } from './json-record.js';
import { assertBlobKey, assertBlobPrefix, assertCollectionName } from './names.js';
import { describe } from './describe-error.js';
import {
  DELETED,
  LayeredView,
  applyChanges,
  mergeChanges,
  setChange,
  type Collections,
  type Deleted,
  type RecordChanges,
} from './layers.js';

/**
 * The one transaction implementation, shared by every backend. A backend supplies the committed records
 * (the base, which it may serialize) and a Persistence that makes a batch durable; this class does the
 * rest: staging, serialization of transactions, group commit, rollback to the durable state.
 *
 * Life of a transaction: `work` runs alone (a promise-chain mutex) against its own staging overlay. When
 * it returns, its changes join the pending batch and the mutex passes on, so the next transaction sees
 * them. A flush starts once the event loop has run everything ready (setImmediate), taking the whole
 * pending batch: it applies the batch to the base, keeps an undo log so readers outside a transaction
 * still see durable state, and awaits the backend. Transactions that finish meanwhile form the next
 * batch, written by the next single flush. A failed flush restores the base from the undo log and rejects
 * that batch and the one queued behind it (which may have read it).
 */

/** What a flush must make durable, besides the base itself. */
export interface CommitBatch {
  /** The batch's record changes (already applied to the base), for backends that log them. */
  readonly records: RecordChanges;
  /** Final content per blob key, to be durable before the document that refers to it. */
  readonly blobPuts: ReadonlyMap<string, Uint8Array>;
  /** Blobs to remove once the document no longer refers to them. */
  readonly blobDeletes: ReadonlySet<string>;
  /** How many transactions this flush commits. */
  readonly transactions: number;
}

export interface Persistence {
  /**
   * Makes the base (which already includes the batch's record changes and stays unchanged until this
   * settles) durable together with the batch's blobs. Reject if anything did not reach disk.
   */
  persist(batch: CommitBatch): Promise<void>;
  readBlob(key: string): Promise<Buffer | undefined>;
  /** Durable blob keys starting with `prefix` (validated), sorted. */
  listBlobs(prefix: string): Promise<string[]>;
  /** Called once, after the last flush. */
  close(): Promise<void>;
}

export interface StoreStats {
  /** Transactions made durable. */
  readonly commits: number;
  /** Flushes that succeeded. */
  readonly flushes: number;
  readonly failedFlushes: number;
  readonly lastFlushMs: number | undefined;
}

/** A Store that also reports its commit counters (for /metrics and benchmarks). */
export interface ObservableStore extends Store {
  stats(): StoreStats;
}

export interface StagedStoreOptions {
  readonly schemaVersion: number;
  /** The committed records; owned by the store from now on. */
  readonly base: Collections;
  readonly persistence: Persistence;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Flushes slower than this log a warning (the store is getting too big for one document). */
  readonly slowFlushMs?: number;
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // The owner awaits it; this only keeps an early rejection from counting as unhandled.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

class Batch {
  readonly records: RecordChanges = new Map();
  readonly blobs = new Map<string, Uint8Array | Deleted>();
  readonly waiters: Deferred[] = [];
  changed = false;

  toCommit(): CommitBatch {
    const blobPuts = new Map<string, Uint8Array>();
    const blobDeletes = new Set<string>();
    for (const [key, value] of this.blobs) {
      if (value === DELETED) blobDeletes.add(key);
      else blobPuts.set(key, value);
    }
    return { records: this.records, blobPuts, blobDeletes, transactions: this.waiters.length };
  }
}

export class StagedStore implements ObservableStore {
  readonly schemaVersion: number;
  readonly #base: Collections;
  readonly #persistence: Persistence;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #slowFlushMs: number;

  #mutexTail: Promise<unknown> = Promise.resolve();
  #pending = new Batch();
  /** Set while a flush is in progress: restores the base for outside readers, and on failure. */
  #undo: RecordChanges | undefined;
  #flushRun: Promise<void> | undefined;
  /** Bumped by every failed flush; a transaction that straddles one may have read discarded state. */
  #epoch = 0;
  #closing: Promise<void> | undefined;
  #stats = { commits: 0, flushes: 0, failedFlushes: 0, lastFlushMs: undefined as number | undefined };

  constructor(options: StagedStoreOptions) {
    this.schemaVersion = options.schemaVersion;
    this.#base = options.base;
    this.#persistence = options.persistence;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#slowFlushMs = options.slowFlushMs ?? 1000;
  }

  collection<T extends StoredRecord>(name: string): CollectionReader<T> {
    assertCollectionName(name);
    const view = () => {
      this.#assertOpen();
      return new LayeredView(this.#base, this.#undo === undefined ? [] : [this.#undo]);
    };
    return readerOf<T>(name, view);
  }

  async tx<R>(work: (tx: StoreTx) => R | Promise<R>): Promise<R> {
    this.#assertOpen();
    const turn = this.#mutexTail.then(() => this.#runExclusive(work));
    this.#mutexTail = turn.catch(() => undefined);
    const { result, durable } = await turn;
    await durable;
    return result;
  }

  async getBlob(key: string): Promise<Buffer | undefined> {
    this.#assertOpen();
    assertBlobKey(key);
    try {
      return await this.#persistence.readBlob(key);
    } catch (cause) {
      throw new StoreError('STORE_IO', `reading blob ${key} failed: ${describe(cause)}`, {
        cause,
        details: { blobKey: key },
      });
    }
  }

  async listBlobs(prefix: string): Promise<string[]> {
    this.#assertOpen();
    assertBlobPrefix(prefix);
    try {
      return await this.#persistence.listBlobs(prefix);
    } catch (cause) {
      throw new StoreError('STORE_IO', `listing blobs under ${prefix} failed: ${describe(cause)}`, {
        cause,
        details: { blobPrefix: prefix },
      });
    }
  }

  stats(): StoreStats {
    return { ...this.#stats };
  }

  /**
   * Runs `capture` between two commits: after every transaction queued before it is durable (or rolled
   * back), before any later one starts. `capture` sees the durable records and must not keep a reference
   * to the maps it is given (copy what it needs; the records themselves are frozen and may be kept).
   */
  atCommitBoundary<R>(capture: (durable: Collections) => R): Promise<R> {
    this.#assertOpen();
    const turn = this.#mutexTail.then(async () => {
      while (this.#flushRun !== undefined) await this.#flushRun;
      return capture(this.#base);
    });
    this.#mutexTail = turn.catch(() => undefined);
    return turn;
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    await this.#mutexTail;
    while (this.#flushRun !== undefined) await this.#flushRun;
    await this.#persistence.close();
  }

  #assertOpen(): void {
    if (this.#closing !== undefined) throw new StoreError('STORE_CLOSED', 'the store is closed');
  }

  async #runExclusive<R>(
    work: (tx: StoreTx) => R | Promise<R>,
  ): Promise<{ result: R; durable: Promise<void> }> {
    const epoch = this.#epoch;
    const tx: TxStaging = new TxStaging(
      (): LayeredView => new LayeredView(this.#base, [tx.records, this.#pending.records]),
    );
    let result: R;
    try {
      result = await work(tx);
    } finally {
      tx.end();
    }
    if (epoch !== this.#epoch) {
      throw new StoreError(
        'STORE_IO',
        'a transaction committed before this one failed to reach disk, so this one was not applied; retry it',
      );
    }
    const waiter = deferred();
    if (tx.records.size === 0 && tx.blobs.size === 0 && this.#undo === undefined && !this.#pending.changed) {
      waiter.resolve(); // read-only, and everything it read is durable
    } else {
      mergeChanges(this.#pending.records, tx.records);
      for (const [key, value] of tx.blobs) this.#pending.blobs.set(key, value);
      this.#pending.changed ||= tx.records.size > 0 || tx.blobs.size > 0;
      this.#pending.waiters.push(waiter);
      this.#scheduleFlush();
    }
    return { result, durable: waiter.promise };
  }

  #scheduleFlush(): void {
    if (this.#flushRun !== undefined) return;
    this.#flushRun = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#flushAll())
      // #flush settles every waiter itself; anything reaching here is a bug, not an I/O failure.
      .catch((err: unknown) => this.#logger.error({ err: describe(err) }, 'store flush loop failed'))
      .finally(() => {
        this.#flushRun = undefined;
        if (this.#pending.waiters.length > 0) this.#scheduleFlush();
      });
  }

  async #flushAll(): Promise<void> {
    while (this.#pending.waiters.length > 0) {
      const batch = this.#pending;
      this.#pending = new Batch();
      if (!batch.changed) {
        for (const w of batch.waiters) w.resolve();
        continue;
      }
      await this.#flush(batch);
    }
  }

  async #flush(batch: Batch): Promise<void> {
    const started = this.#clock.nowMs();
    this.#undo = applyChanges(this.#base, batch.records);
    try {
      await this.#persistence.persist(batch.toCommit());
    } catch (cause) {
      applyChanges(this.#base, this.#undo);
      this.#undo = undefined;
      this.#epoch++;
      this.#stats.failedFlushes++;
      const queued = this.#pending;
      this.#pending = new Batch();
      this.#logger.error(
        { err: describe(cause), transactions: batch.waiters.length, queuedBehind: queued.waiters.length },
        'store flush failed; rolled back to the last durable state',
      );
      const message = `writing the store failed (${describe(cause)}); the transaction was not applied, retry it`;
      for (const w of [...batch.waiters, ...queued.waiters])
        w.reject(new StoreError('STORE_IO', message, { cause }));
      return;
    }
    this.#undo = undefined;
    const took = this.#clock.nowMs() - started;
    this.#stats.flushes++;
    this.#stats.commits += batch.waiters.length;
    this.#stats.lastFlushMs = took;
    if (took > this.#slowFlushMs) {
      this.#logger.warn({ flushMs: took, transactions: batch.waiters.length }, 'slow store flush');
    }
    for (const w of batch.waiters) w.resolve();
  }
}

/** The StoreTx handed to `work`: stages everything, reads through its own changes. */
class TxStaging implements StoreTx {
  readonly records: RecordChanges = new Map();
  readonly blobs = new Map<string, Uint8Array | Deleted>();
  readonly #view: () => LayeredView;
  #ended = false;

  constructor(view: () => LayeredView) {
    this.#view = view;
  }

  end(): void {
    this.#ended = true;
  }

  collection<T extends StoredRecord>(name: string): CollectionWriter<T> {
    assertCollectionName(name);
    const view = () => {
      this.#assertActive();
      return this.#view();
    };
    const reader = readerOf<T>(name, view);
    const stage = (record: T) => setChange(this.records, name, record.id, record);
    return {
      ...reader,
      insert: (record) => {
        const copy = cloneFrozenRecord(record, name);
        if (view().find(name, copy.id) !== undefined) {
          throw new StoreError('STORE_CONFLICT', `a ${name} record with id ${copy.id} exists already`, {
            details: { collection: name, id: copy.id },
          });
        }
        stage(copy);
      },
      put: (record) => {
        this.#assertActive();
        stage(cloneFrozenRecord(record, name));
      },
      update: (id, change) => {
        const next = cloneFrozenRecord(change(reader.get(id)), name);
        if (next.id !== id) {
          throw new ValidationError(
            'INVALID_ARGUMENT',
            `update of ${name} ${id} returned a record with id ${next.id}`,
            {
              details: { collection: name, id },
            },
          );
        }
        stage(next);
        return next;
      },
      delete: (id) => {
        reader.get(id);
        setChange(this.records, name, id, DELETED);
      },
    };
  }

  putBlob(key: string, data: Uint8Array): void {
    this.#assertActive();
    assertBlobKey(key);
    // Copied: the caller may reuse or zero its buffer before the flush.
    this.blobs.set(key, Buffer.from(data));
  }

  deleteBlob(key: string): void {
    this.#assertActive();
    assertBlobKey(key);
    this.blobs.set(key, DELETED);
  }

  #assertActive(): void {
    if (this.#ended) {
      throw new StoreError(
        'STORE_CLOSED',
        'this transaction has ended; a StoreTx is valid only inside its tx() call',
      );
    }
  }
}

function readerOf<T extends StoredRecord>(name: string, view: () => LayeredView): CollectionReader<T> {
  const find = (id: string) => view().find(name, id) as T | undefined;
  return {
    get: (id) => {
      const record = find(id);
      if (record === undefined) {
        throw new StoreError('STORE_NOT_FOUND', `no ${name} record has id ${id}`, {
          details: { collection: name, id },
        });
      }
      return record;
    },
    find,
    list: (filter) => {
      const all = view().list(name) as T[];
      return filter === undefined ? all : all.filter((r) => filter(r));
    },
    count: () => view().count(name),
  };
}
