import { createHmac } from 'node:crypto';
import { KeyError } from '../../core/errors.js';

/** A KEK is 32 bytes: an AES-256 key. */
export const KEK_BYTES = 32;

/** A KEK id: 16 lowercase hex characters. */
export const KEK_ID_PATTERN = /^[0-9a-f]{16}$/;

const KEK_ID_LABEL = 'keywright kek id v1';

/**
 * The public name of a KEK: the first 64 bits of HMAC-SHA256(kek, "keywright kek id v1"). It is a PRF
 * output, so it says nothing about the key, yet it lets a blob name the KEK that opens it and lets us
 * tell "wrong master key" apart from "altered blob" before any decryption.
 */
export function kekIdOf(kek: Uint8Array): string {
  return createHmac('sha256', kek).update(KEK_ID_LABEL).digest('hex').slice(0, 16);
}

/**
 * The KEKs a sealer may use, by id. New blobs are sealed under `primaryId`; any KEK in the ring opens
 * the blobs that name it. Holds two keys only while a KEK rotation is in progress.
 */
export interface KeyRing {
  readonly primaryId: string;
  readonly keks: ReadonlyMap<string, Buffer>;
}

/** A ring whose primary is `primary`; `others` open older blobs. Takes ownership of the buffers. */
export function createKeyRing(primary: Buffer, ...others: Buffer[]): KeyRing {
  const keks = new Map<string, Buffer>();
  for (const kek of [primary, ...others]) {
    if (kek.length !== KEK_BYTES) {
      throw new KeyError('KEK_INVALID', `a KEK is ${KEK_BYTES} bytes, got ${kek.length}`, {
        details: { length: kek.length },
      });
    }
    keks.set(kekIdOf(kek), kek);
  }
  return { primaryId: kekIdOf(primary), keks };
}

/** Overwrite every KEK in the ring with zeros: the holder is sealed from then on. */
export function wipeKeyRing(ring: KeyRing): void {
  for (const kek of ring.keks.values()) kek.fill(0);
}
