/**
 * The Store port. Records are plain JSON objects with a string `id`, grouped in named collections.
 * Bulky values (PEM chains, sealed keys) live in the blob area, out of the hot document.
 *
 * Reads see committed state. Writes happen only inside `tx()`: changes are staged, applied when the
 * function returns, and `tx()` resolves only once they are durable on disk. A throw inside the function
 * discards everything it staged. Transactions are serialized; concurrent ones share one flush (group
 * commit). Nothing here is lowdb-specific, so a PostgreSQL backend can implement the same port.
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
  /** Throws STORE_NOT_FOUND when absent. */
  update(id: string, change: (current: T) => T): T;
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
  collection<T extends StoredRecord>(name: string): CollectionReader<T>;
  tx<R>(work: (tx: StoreTx) => R | Promise<R>): Promise<R>;
  getBlob(key: string): Promise<Buffer | undefined>;
  readonly schemaVersion: number;
  close(): Promise<void>;
}

/** Blob keys: lowercase path-safe segments, e.g. `cert/web/3/chain`. */
export const BLOB_KEY_PATTERN = /^[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*$/;
