/**
 * The Store port. Records are plain JSON objects with a string `id`, grouped in named collections.
 * Bulky values (PEM chains, sealed keys) live in the blob area, out of the hot document.
 *
 * Reads see committed state. Writes happen only inside `tx()`: changes are staged, applied when the
 * function returns, and `tx()` resolves only once they are durable on disk. A throw inside the function
 * discards everything it staged. Transactions are serialized; concurrent ones share one flush (group
 * commit). Nothing here is lowdb-specific, so a PostgreSQL backend can implement the same port.
 *
 * Records handed out are frozen: change them by returning a new object from `update()`. Records handed
 * in are copied, and must be plain JSON (no Date, Map, Buffer, NaN): anything else is refused with
 * INVALID_ARGUMENT instead of coming back different after a restart. Reads outside a transaction see
 * only durable state; reads inside one see its own staged changes and those of transactions committed
 * before it. Never call `store.tx()` from inside `work`: transactions are serialized, so it would wait
 * for itself.
 */

export interface StoredRecord {
  readonly id: string;
}

export interface CollectionReader<T extends StoredRecord> {
  /** Throws StoreError STORE_NOT_FOUND. */
  get(id: string): T;
  find(id: string): T | undefined;
  list(filter?: (record: T) => boolean): T[];
  count(): number;
}

export interface CollectionWriter<T extends StoredRecord> extends CollectionReader<T> {
  /** Throws StoreError STORE_CONFLICT when the id exists. */
  insert(record: T): void;
  /** Insert or replace. */
  put(record: T): void;
  /** Throws STORE_NOT_FOUND when absent. `change` gets the frozen current record and returns the new one (same id). */
  update(id: string, change: (current: T) => T): T;
  /** Throws STORE_NOT_FOUND when absent. */
  delete(id: string): void;
}

export interface StoreTx {
  collection<T extends StoredRecord>(name: string): CollectionWriter<T>;
  /** Stage a blob; written durably before the document that refers to it. */
  putBlob(key: string, data: Uint8Array): void;
  /** Stage a blob removal; done after the document no longer needs it. */
  deleteBlob(key: string): void;
}

export interface Store {
  /** Reads durable state; collection names match COLLECTION_NAME_PATTERN. */
  collection<T extends StoredRecord>(name: string): CollectionReader<T>;
  /**
   * Runs `work` alone, then resolves with its result once its changes are durable. A throw in `work`
   * rejects with that error and applies nothing. A failed flush rejects with STORE_IO every transaction
   * not yet durable, and the store is back at its last durable state.
   */
  tx<R>(work: (tx: StoreTx) => R | Promise<R>): Promise<R>;
  getBlob(key: string): Promise<Buffer | undefined>;
  /**
   * Keys of the stored blobs that start with `prefix` (whole segments and a partial last one, e.g.
   * `sealed/` or `cert/web/`), sorted. Walks the blob area: meant for rare sweeps such as KEK rotation,
   * not for request paths.
   */
  listBlobs(prefix: string): Promise<string[]>;
  readonly schemaVersion: number;
  /** Waits for queued transactions and their flush, then releases the data directory. Idempotent; every other call afterwards throws STORE_CLOSED. */
  close(): Promise<void>;
}

/**
 * An optional ability of a store: a consistent copy of its state as of one commit, for backups
 * (`keywright backup create`). Taking one waits for the transactions already queued to be durable and
 * holds later ones back only while the records are copied; reading the copy does not block writers.
 */
export interface SnapshotCapable {
  snapshot(): Promise<StoreSnapshot>;
}

export interface StoreSnapshot {
  readonly schemaVersion: number;
  readonly records: number;
  readonly blobs: number;
  /** The paths `files()` yields, in its order. */
  readonly paths: readonly string[];
  /**
   * The files a data directory needs to hold exactly this state, paths relative to it with `/`: the
   * document first, then one file per blob in key order. Blob bytes are read as the iteration goes.
   * Sealed blobs stay sealed: a snapshot never holds plaintext key material.
   */
  files(): AsyncIterable<StoreSnapshotFile>;
  /** Lets the store fold its journal again; call it once the files have been read. Idempotent. */
  release(): void;
}

export interface StoreSnapshotFile {
  readonly path: string;
  readonly mode: number;
  readonly data: Buffer;
}

export function canSnapshot<S extends Store>(store: S): store is S & SnapshotCapable {
  return typeof (store as Partial<SnapshotCapable>).snapshot === 'function';
}

/**
 * Blob keys: lowercase path-safe segments, e.g. `cert/web/3/chain`. A key names immutable content (a
 * version's chain, a sealed key): to change content, write a new key and delete the old one. Putting an
 * existing key replaces it before the document flush, so a flush that then fails cannot restore the old
 * bytes.
 */
export const BLOB_KEY_PATTERN = /^[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*$/;

/**
 * Every sealed blob (a SealedBlob as JSON) is stored under this prefix, e.g. `sealed/cert/web/3/key`,
 * so a KEK rotation can find them all with `listBlobs(SEALED_BLOB_PREFIX)` and nothing else is touched.
 */
export const SEALED_BLOB_PREFIX = 'sealed/';

/** Collection names: short identifiers, e.g. `certificates`, `acmeAccounts`. */
export const COLLECTION_NAME_PATTERN = /^[a-z][a-zA-Z0-9_-]{0,63}$/;
