import type { StoredRecord } from './port.js';
import { frozen } from './json-record.js';

/**
 * Committed records live in one set of maps (the base). Everything not yet in the base is an
 * overlay on top of it: a transaction's own staging, the batch waiting for the next flush, or, while a
 * flush runs, the undo log that lets readers outside a transaction keep seeing the durable state.
 */

/** Marks a record (or blob) as absent in an overlay. */
export const DELETED: unique symbol = Symbol('deleted');
export type Deleted = typeof DELETED;

/** collection → id → record. Maps: any id is an ordinary key, and size and iteration cost no key sort. */
export type Collections = Map<string, Map<string, StoredRecord>>;

/** collection → id → new record, or DELETED. */
export type RecordChanges = Map<string, Map<string, StoredRecord | Deleted>>;

/** Stages one change in an overlay. */
export function setChange(
  changes: RecordChanges,
  collection: string,
  id: string,
  value: StoredRecord | Deleted,
) {
  let byId = changes.get(collection);
  if (byId === undefined) {
    byId = new Map();
    changes.set(collection, byId);
  }
  byId.set(id, value);
}

/** Copies `from` over `into`, later changes winning. */
export function mergeChanges(into: RecordChanges, from: RecordChanges): void {
  for (const [collection, byId] of from) {
    for (const [id, value] of byId) setChange(into, collection, id, value);
  }
}

/**
 * Applies `changes` to the base in place and returns the undo log: applying the undo log restores the
 * base exactly (the log is itself a RecordChanges).
 */
export function applyChanges(base: Collections, changes: RecordChanges): RecordChanges {
  const undo: RecordChanges = new Map();
  for (const [collection, byId] of changes) {
    let records = base.get(collection);
    if (records === undefined) {
      records = new Map();
      base.set(collection, records);
    }
    for (const [id, value] of byId) {
      setChange(undo, collection, id, records.get(id) ?? DELETED);
      if (value === DELETED) records.delete(id);
      else records.set(id, value);
    }
  }
  return undo;
}

/** A read-only view of the base seen through overlays, topmost first. Records come out frozen. */
export class LayeredView {
  readonly #base: Collections;
  readonly #overlays: readonly RecordChanges[];

  constructor(base: Collections, overlays: readonly RecordChanges[]) {
    this.#base = base;
    this.#overlays = overlays;
  }

  find(collection: string, id: string): StoredRecord | undefined {
    for (const overlay of this.#overlays) {
      const value = overlay.get(collection)?.get(id);
      if (value !== undefined) return value === DELETED ? undefined : frozen(value);
    }
    const record = this.#base.get(collection)?.get(id);
    return record === undefined ? undefined : frozen(record);
  }

  list(collection: string): StoredRecord[] {
    const records = this.#base.get(collection);
    const touching = this.#overlays.filter((o) => o.has(collection));
    if (touching.length === 0) return records === undefined ? [] : Array.from(records.values(), frozen);
    const merged = new Map<string, StoredRecord | Deleted>(records);
    for (let i = touching.length - 1; i >= 0; i--) {
      for (const [id, value] of touching[i]!.get(collection)!) merged.set(id, value);
    }
    const out: StoredRecord[] = [];
    for (const value of merged.values()) if (value !== DELETED) out.push(frozen(value));
    return out;
  }

  /** The base's size corrected by each id the overlays touch (the topmost change of an id decides). */
  count(collection: string): number {
    const records = this.#base.get(collection);
    let count = records?.size ?? 0;
    const seen = new Set<string>();
    for (const overlay of this.#overlays) {
      for (const [id, value] of overlay.get(collection) ?? []) {
        if (seen.has(id)) continue;
        seen.add(id);
        count += (value === DELETED ? 0 : 1) - (records?.has(id) === true ? 1 : 0);
      }
    }
    return count;
  }
}
