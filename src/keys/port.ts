/**
 * Ports of the key layer. keys/ is the only place that handles key material in plaintext; everything
 * else holds SealedBlobs, which are opaque, or KeyObjects handed out for signing.
 */

/** What a sealed blob belongs to. Bound as AES-GCM additional data so a blob cannot be moved to another record. */
export interface SealContext {
  readonly recordType: string;
  readonly recordId: string;
}

/**
 * Version 1 of the on-disk sealed format (docs/storage.md). Base64 fields. `dek` is the data key sealed
 * by the KEK named `kek` (12-byte IV ‖ ciphertext ‖ 16-byte tag); `iv`/`ct`/`tag` are the payload under
 * the data key. A frozen fixture in test/fixtures pins this shape.
 */
export interface SealedBlob {
  readonly v: 1;
  readonly alg: 'A256GCM';
  readonly kek: string;
  readonly dek: string;
  readonly iv: string;
  readonly ct: string;
  readonly tag: string;
}

export interface Sealer {
  /** Id of the KEK new blobs are sealed under. */
  readonly primaryKekId: string;
  seal(plaintext: Uint8Array, context: SealContext): Promise<SealedBlob>;
  /** Throws SealError SEAL_INTEGRITY on a wrong KEK, altered blob or wrong context. The caller wipes the result. */
  unseal(blob: SealedBlob, context: SealContext): Promise<Buffer>;
}

/**
 * Optional ability: re-wrap a blob's data key under the primary KEK without touching the payload (KEK
 * rotation). It needs no SealContext: the record is bound by the payload's AAD, not the wrapped data
 * key's. A blob already under the primary KEK comes back unchanged, so a rewrap pass can be repeated.
 */
export interface Rewrapper {
  rewrap(blob: SealedBlob): Promise<SealedBlob>;
}

export function canRewrap(sealer: Sealer): sealer is Sealer & Rewrapper {
  return 'rewrap' in sealer && typeof (sealer as Partial<Rewrapper>).rewrap === 'function';
}
