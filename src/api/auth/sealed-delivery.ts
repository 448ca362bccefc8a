/**
 * Sealed delivery: a bundle encrypted to the caller's own public key, so the private key it carries is
 * never plaintext in transit, in a TLS-terminating proxy or in its logs. The construction is a compact
 * JWE (RFC 7516 §7.1): ECDH-ES+A256KW for an X25519 recipient (RFC 7518 §4.6, RFC 8037 §3.2) or
 * RSA-OAEP-256 for an RSA recipient (RFC 7518 §4.3), content encrypted with A256GCM (RFC 7518 §5.3).
 * docs/distribution.md describes the format for other clients.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { CompactEncrypt } from 'jose';
import { ApiError } from '../../core/errors.js';

/** The caller's public key: base64url of its SubjectPublicKeyInfo DER (X25519, or RSA ≥ 2048 bits). */
export const SEAL_KEY_HEADER = 'x-keywright-seal-key';
export const SEALED_MEDIA_TYPE = 'application/jose';

export interface SealRecipient {
  readonly key: KeyObject;
  readonly alg: 'ECDH-ES+A256KW' | 'RSA-OAEP-256';
  /** base64url SHA-256 of the SPKI DER: lets the receiver pick its key and see it was the one meant. */
  readonly kid: string;
}

const MAX_SPKI_BYTES = 2048; // an RSA-8192 SPKI is about 1.1 kB

function badKey(message: string): ApiError {
  return new ApiError('API_BAD_REQUEST', `${SEAL_KEY_HEADER}: ${message}`, {
    details: { issues: [{ field: SEAL_KEY_HEADER, message }] },
  });
}

/** Parses the recipient key a caller sends; throws API_BAD_REQUEST naming the header. */
/** The recipient key id (SHA-256 of the SPKI DER, base64url), as audited and shown. */
export function sealKeyId(spkiBase64url: string): string {
  return createHash('sha256').update(Buffer.from(spkiBase64url, 'base64url')).digest('base64url');
}

export function parseSealRecipient(value: string | string[] | undefined): SealRecipient {
  if (value === undefined || value === '') {
    throw badKey('format=sealed needs your public key: base64url of its SPKI DER (X25519 or RSA ≥ 2048)');
  }
  if (Array.isArray(value) || !/^[A-Za-z0-9_-]+$/.test(value) || value.length > (MAX_SPKI_BYTES * 4) / 3) {
    throw badKey('give one base64url-encoded SPKI DER public key');
  }
  const der = Buffer.from(value, 'base64url');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    throw badKey('not a DER SubjectPublicKeyInfo public key');
  }
  const kid = createHash('sha256').update(der).digest('base64url');
  const type = key.asymmetricKeyType;
  if (type === 'x25519') return { key, alg: 'ECDH-ES+A256KW', kid };
  if (type === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw badKey(`an RSA key of ${bits} bits is too small; use at least 2048`);
    return { key, alg: 'RSA-OAEP-256', kid };
  }
  throw badKey(`a ${type ?? 'unknown'} key cannot receive a sealed bundle; use X25519 or RSA`);
}

/**
 * Encrypts `plaintext` (the JSON bundle) to the recipient as a compact JWE. The protected header names
 * the certificate and version, which the receiver checks against what it asked for (they are
 * authenticated as the AES-GCM additional data, RFC 7516 §5.1 step 14).
 */
export async function sealTo(
  recipient: SealRecipient,
  plaintext: Uint8Array,
  about: { certificate: string; version: number },
): Promise<string> {
  return new CompactEncrypt(plaintext)
    .setProtectedHeader({
      alg: recipient.alg,
      enc: 'A256GCM',
      kid: recipient.kid,
      cty: 'application/json',
      'kw-cert': about.certificate,
      'kw-version': about.version,
    })
    .encrypt(recipient.key);
}
