import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SealError, ValidationError } from '../../core/errors.js';
import type { Rewrapper, SealContext, SealedBlob, Sealer } from '../port.js';
import { KEK_BYTES, KEK_ID_PATTERN, kekIdOf } from './key-ring.js';
import type { KeyRing } from './key-ring.js';

// SealedBlob v1 (docs/storage.md "Sealed blobs and the KEK"): AES-256-GCM everywhere, 12-byte IVs,
// 16-byte tags (NIST SP 800-38D §5.2.1.1 recommends 96-bit IVs; random IVs are safe here because each
// data key encrypts exactly one message and each KEK wraps far fewer than 2^32 data keys).
const ALG = 'aes-256-gcm';
const DEK_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const WRAPPED_DEK_BYTES = IV_BYTES + DEK_BYTES + TAG_BYTES;
const FORMAT_LABEL = 'keywright sealed blob v1 A256GCM';

/**
 * The software Sealer: envelope encryption with a fresh data key per record, the data key wrapped by a
 * KEK from the ring. The sealer owns the ring's buffers from construction on; `close()` wipes them.
 * Synchronous node:crypto inside an async API: 241-byte records seal+open in tens of microseconds,
 * where webcrypto's threadpool hop costs 17× more (research perf-anchors §3).
 */
export class SoftwareSealer implements Sealer, Rewrapper {
  readonly primaryKekId: string;
  readonly #keks: ReadonlyMap<string, Buffer>;
  #closed = false;

  constructor(ring: KeyRing) {
    for (const [id, kek] of ring.keks) {
      if (kek.length !== KEK_BYTES || kekIdOf(kek) !== id) {
        throw new SealError(
          'KEK_INVALID',
          `the key ring entry ${id} is not a ${KEK_BYTES}-byte KEK with that id`,
          {
            details: { kekId: id },
          },
        );
      }
    }
    if (!ring.keks.has(ring.primaryId)) {
      throw new SealError('KEK_MISSING', `the key ring has no KEK for its primary id ${ring.primaryId}`, {
        details: { kekId: ring.primaryId },
      });
    }
    this.primaryKekId = ring.primaryId;
    this.#keks = ring.keks;
  }

  /** Ids of every KEK this sealer can open blobs with. */
  get kekIds(): string[] {
    return [...this.#keks.keys()];
  }

  seal(plaintext: Uint8Array, context: SealContext): Promise<SealedBlob> {
    return promised(() => this.#seal(plaintext, context));
  }

  unseal(blob: SealedBlob, context: SealContext): Promise<Buffer> {
    return promised(() => this.#unseal(blob, context));
  }

  /**
   * Re-wraps the blob's data key under the primary KEK; iv, ct and tag are copied untouched, so the
   * payload is never decrypted and the record's context is not needed. A blob already under the
   * primary KEK is returned as is, which makes a rotation's rewrap pass safe to repeat.
   */
  rewrap(blob: SealedBlob): Promise<SealedBlob> {
    return promised(() => this.#rewrap(blob));
  }

  /** Wipes every KEK; from then on every call fails with KEK_MISSING (the daemon is sealed). */
  close(): void {
    this.#closed = true;
    for (const kek of this.#keks.values()) kek.fill(0);
  }

  #seal(plaintext: Uint8Array, context: SealContext): SealedBlob {
    checkContext(context);
    const kek = this.#kek(this.primaryKekId, describe(context));
    const fresh = randomBytes(DEK_BYTES + 2 * IV_BYTES);
    const dek = fresh.subarray(0, DEK_BYTES);
    const iv = fresh.subarray(DEK_BYTES, DEK_BYTES + IV_BYTES);
    const dekIv = fresh.subarray(DEK_BYTES + IV_BYTES);
    try {
      const payload = gcmSeal(dek, iv, plaintext, payloadAad(context));
      const wrapped = gcmSeal(kek, dekIv, dek, dekAad(this.primaryKekId));
      return {
        v: 1,
        alg: 'A256GCM',
        kek: this.primaryKekId,
        dek: Buffer.concat([dekIv, wrapped.ct, wrapped.tag]).toString('base64'),
        iv: iv.toString('base64'),
        ct: payload.ct.toString('base64'),
        tag: payload.tag.toString('base64'),
      };
    } finally {
      fresh.fill(0);
    }
  }

  #unseal(blob: SealedBlob, context: SealContext): Buffer {
    checkContext(context);
    const where = describe(context);
    const parts = parseBlob(blob, where, context);
    const dek = this.#unwrapDek(parts, where, context);
    try {
      const plaintext = gcmOpen(dek, parts.iv, parts.ct, parts.tag, payloadAad(context));
      if (plaintext === undefined) throw integrityError(where, parts.kekId, context);
      return plaintext;
    } finally {
      dek.fill(0);
    }
  }

  #rewrap(blob: SealedBlob): SealedBlob {
    const where = 'a blob being rewrapped';
    const parts = parseBlob(blob, where);
    if (parts.kekId === this.primaryKekId) return blob;
    const kek = this.#kek(this.primaryKekId, where);
    const dek = this.#unwrapDek(parts, where);
    const dekIv = randomBytes(IV_BYTES);
    try {
      const wrapped = gcmSeal(kek, dekIv, dek, dekAad(this.primaryKekId));
      return {
        ...blob,
        kek: this.primaryKekId,
        dek: Buffer.concat([dekIv, wrapped.ct, wrapped.tag]).toString('base64'),
      };
    } finally {
      dek.fill(0);
    }
  }

  #kek(id: string, where: string, context: SealContext | undefined = undefined): Buffer {
    if (this.#closed) {
      throw new SealError('KEK_MISSING', 'the sealer is closed: its KEKs were wiped (the daemon is sealed)');
    }
    const kek = this.#keks.get(id);
    if (kek === undefined) {
      throw new SealError(
        'SEAL_INTEGRITY',
        `${where} names KEK ${id}, which is not loaded (loaded: ${this.kekIds.join(', ')}); ` +
          'it was sealed under another master key',
        { details: { ...context, kekId: id } },
      );
    }
    return kek;
  }

  #unwrapDek(parts: BlobParts, where: string, context: SealContext | undefined = undefined): Buffer {
    const kek = this.#kek(parts.kekId, where, context);
    const dek = gcmOpen(kek, parts.dekIv, parts.dekCt, parts.dekTag, dekAad(parts.kekId));
    if (dek === undefined || dek.length !== DEK_BYTES) {
      dek?.fill(0);
      throw integrityError(where, parts.kekId, context);
    }
    return dek;
  }
}

/** Runs synchronous crypto behind the async port, so a throw becomes a rejection. */
function promised<T>(work: () => T): Promise<T> {
  return new Promise((resolve) => resolve(work()));
}

function describe(context: SealContext): string {
  return `sealed ${context.recordType} "${context.recordId}"`;
}

function integrityError(where: string, kekId: string, context: SealContext | undefined): SealError {
  return new SealError(
    'SEAL_INTEGRITY',
    `${where} failed authentication: it was altered, or it belongs to another record`,
    { details: { ...context, kekId } },
  );
}

function checkContext(context: SealContext): void {
  for (const field of ['recordType', 'recordId'] as const) {
    const value: unknown = context[field];
    if (typeof value !== 'string' || value.length === 0) {
      throw new ValidationError('INVALID_ARGUMENT', `seal context ${field} must be a non-empty string`, {
        details: { field },
      });
    }
  }
}

// --- AAD ------------------------------------------------------------------------------------------------
// Each part is a 4-byte big-endian byte length followed by its UTF-8 bytes, so no two different part
// lists encode alike: ("a","bc") and ("ab","c") differ. The label pins the version and algorithm; the
// second part keeps the payload and the wrapped data key in separate domains.

function lengthPrefixed(parts: readonly string[]): Buffer {
  let size = 0;
  for (const part of parts) size += 4 + Buffer.byteLength(part, 'utf8');
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const part of parts) {
    const len = out.write(part, at + 4, 'utf8');
    out.writeUInt32BE(len, at);
    at += 4 + len;
  }
  return out;
}

/** AAD of the payload: binds the record, so a blob cannot be moved to another record. */
function payloadAad(context: SealContext): Buffer {
  return lengthPrefixed([FORMAT_LABEL, 'payload', context.recordType, context.recordId]);
}

/**
 * AAD of the wrapped data key: binds the KEK id. The record is bound by the payload's AAD; keeping it out
 * of this one lets `rewrap(blob)` work without knowing which record a blob belongs to.
 */
function dekAad(kekId: string): Buffer {
  return lengthPrefixed([FORMAT_LABEL, 'dek', kekId]);
}

// --- AES-256-GCM ------------------------------------------------------------------------------------------

function gcmSeal(
  key: Uint8Array,
  iv: Uint8Array,
  plaintext: Uint8Array,
  aad: Buffer,
): { ct: Buffer; tag: Buffer } {
  const cipher = createCipheriv(ALG, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ct = cipher.update(plaintext);
  cipher.final(); // GCM is a stream mode: final() emits nothing
  return { ct, tag: cipher.getAuthTag() };
}

/** The plaintext, or undefined when authentication fails. The tag length is fixed so a truncated tag fails. */
function gcmOpen(
  key: Uint8Array,
  iv: Uint8Array,
  ct: Uint8Array,
  tag: Uint8Array,
  aad: Buffer,
): Buffer | undefined {
  const decipher = createDecipheriv(ALG, key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const plaintext = decipher.update(ct);
  try {
    decipher.final();
  } catch {
    plaintext.fill(0);
    return undefined;
  }
  return plaintext;
}

// --- parsing ------------------------------------------------------------------------------------------------

interface BlobParts {
  readonly kekId: string;
  readonly dekIv: Buffer;
  readonly dekCt: Buffer;
  readonly dekTag: Buffer;
  readonly iv: Buffer;
  readonly ct: Buffer;
  readonly tag: Buffer;
}

function parseBlob(blob: SealedBlob, where: string, context: SealContext | undefined = undefined): BlobParts {
  const bad = (what: string, field?: string): SealError =>
    new SealError('SEAL_FORMAT', `${where} is not a SealedBlob v1: ${what}`, {
      details: { ...context, ...(field === undefined ? {} : { field }) },
    });
  if (typeof blob !== 'object' || blob === null) throw bad('not an object');
  const raw = blob as unknown as Record<string, unknown>;
  if (raw.v !== 1)
    throw bad(`unknown version ${JSON.stringify(raw.v) ?? 'undefined'} (this keywright reads v 1)`, 'v');
  if (raw.alg !== 'A256GCM') throw bad(`unknown alg ${JSON.stringify(raw.alg) ?? 'undefined'}`, 'alg');
  if (typeof raw.kek !== 'string' || !KEK_ID_PATTERN.test(raw.kek))
    throw bad('kek is not a 16-hex-digit KEK id', 'kek');
  const bytes = (field: 'dek' | 'iv' | 'ct' | 'tag', length?: number): Buffer => {
    const value = raw[field];
    if (typeof value !== 'string') throw bad(`${field} is not a string`, field);
    // Node's decoder skips characters outside the alphabet; re-encoding shows any it skipped, and any
    // non-canonical padding, as a difference. Cheaper than a regular expression over the ciphertext.
    const decoded = Buffer.from(value, 'base64');
    if (decoded.toString('base64') !== value) throw bad(`${field} is not canonical base64`, field);
    if (length !== undefined && decoded.length !== length) {
      throw bad(`${field} is ${decoded.length} bytes, expected ${length}`, field);
    }
    return decoded;
  };
  const dek = bytes('dek', WRAPPED_DEK_BYTES);
  return {
    kekId: raw.kek,
    dekIv: dek.subarray(0, IV_BYTES),
    dekCt: dek.subarray(IV_BYTES, IV_BYTES + DEK_BYTES),
    dekTag: dek.subarray(IV_BYTES + DEK_BYTES),
    iv: bytes('iv', IV_BYTES),
    ct: bytes('ct'),
    tag: bytes('tag', TAG_BYTES),
  };
}
