import { ValidationError } from '../core/errors.js';
import type { StoredRecord } from './port.js';

/**
 * Records cross the store boundary as plain JSON. Anything else (a Date, a Map, a Buffer, NaN, a class
 * instance) would come back different after a restart, so it is refused when staged rather than
 * silently changed on disk. Both backends share this, so the memory store fails the same way lowdb would.
 */

/**
 * Deep-copies `value` as JSON data and freezes the copy, so neither the caller's later edits nor a
 * reader's accidental ones reach committed state. Properties set to `undefined` are dropped, as
 * JSON.stringify would.
 */
export function cloneFrozenRecord<T extends StoredRecord>(record: T, collection: string): T {
  if (!isPlainObject(record)) {
    throw invalid(collection, '', 'a record must be a plain object');
  }
  const id: unknown = (record as { id?: unknown }).id;
  if (typeof id !== 'string' || id.length === 0) {
    throw invalid(collection, 'id', 'a record needs a non-empty string id');
  }
  return cloneValue(record, collection, '') as T;
}

function cloneValue(value: unknown, collection: string, path: string): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw invalid(collection, path, 'numbers must be finite');
      return value;
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) {
        const out = value.map((item, i) => cloneValue(item, collection, `${path}[${i}]`));
        return Object.freeze(out);
      }
      if (!isPlainObject(value)) {
        throw invalid(
          collection,
          path,
          'only plain objects, arrays, strings, finite numbers, booleans and null',
        );
      }
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        if (item === undefined) continue;
        // defineProperty, not assignment: a key named __proto__ must stay an ordinary property.
        Object.defineProperty(out, key, {
          value: cloneValue(item, collection, path === '' ? key : `${path}.${key}`),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return Object.freeze(out);
    }
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      throw invalid(collection, path, `a ${typeof value} cannot be stored`);
  }
}

/**
 * Freezes a record loaded from disk the first time it is handed out. Loading 50k records does not pay
 * for freezing records nobody reads; once frozen, the check is a single flag test.
 */
export function frozen<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const item of Object.values(value)) frozen(item);
    Object.freeze(value);
  }
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function invalid(collection: string, path: string, why: string): ValidationError {
  const where = path === '' ? `a ${collection} record` : `field ${path} of a ${collection} record`;
  return new ValidationError('INVALID_ARGUMENT', `cannot store ${where}: ${why}`, {
    details: { collection, field: path },
  });
}
