import { ValidationError } from '../core/errors.js';
import { BLOB_KEY_PATTERN, COLLECTION_NAME_PATTERN } from './port.js';

/** Segments become file names (plus a temp-file prefix and suffix), so they stay well under NAME_MAX. */
const MAX_SEGMENT = 200;
const MAX_BLOB_KEY = 1024;

export function isBlobKey(key: string): boolean {
  return (
    key.length <= MAX_BLOB_KEY &&
    BLOB_KEY_PATTERN.test(key) &&
    key.split('/').every((s) => s.length <= MAX_SEGMENT)
  );
}

export function assertBlobKey(key: string): void {
  if (!isBlobKey(key)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `blob key ${JSON.stringify(key.slice(0, 80))} is not valid: use lowercase segments of a-z 0-9 . _ - separated by /, each starting with a letter or digit`,
      { details: { field: 'blobKey' } },
    );
  }
}

export function assertCollectionName(name: string): void {
  if (!COLLECTION_NAME_PATTERN.test(name)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `collection name ${JSON.stringify(name.slice(0, 80))} is not valid: use a letter followed by up to 63 letters, digits, _ or -`,
      { details: { field: 'collection' } },
    );
  }
}

/** A key prefix: whole valid segments followed by `/`, then optionally the start of one more segment. */
const BLOB_PREFIX_PATTERN = /^(?:[a-z0-9][a-z0-9._-]*\/)*(?:[a-z0-9][a-z0-9._-]*)?$/;

export function assertBlobPrefix(prefix: string): void {
  if (prefix.length > MAX_BLOB_KEY || !BLOB_PREFIX_PATTERN.test(prefix)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `blob key prefix ${JSON.stringify(prefix.slice(0, 80))} is not valid: use whole key segments followed by /, e.g. sealed/`,
      { details: { field: 'blobPrefix' } },
    );
  }
}
