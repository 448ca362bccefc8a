/**
 * The agent's side of sealed delivery (docs/distribution.md): its key pair, the header that names the
 * public half, and opening the compact JWE the daemon sends. Algorithms are pinned, so a sender cannot
 * pick a weaker one (RFC 8725 §3.1).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { generateKeyPair } from '../keys/generate.js';
import { compactDecrypt } from 'jose';
import { AppError } from '../core/errors.js';

export interface SealKey {
  readonly privateKey: KeyObject;
  /** base64url of the public key's SPKI DER: the X-Keywright-Seal-Key header. */
  readonly publicKeyHeader: string;
}

function fromPrivate(privateKey: KeyObject): SealKey {
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return { privateKey, publicKeyHeader: spki.toString('base64url') };
}

/** A fresh X25519 key pair held only in memory: the bundle is plaintext nowhere but in this process. */
export async function ephemeralSealKey(): Promise<SealKey> {
  return fromPrivate((await generateKeyPair('x25519')).privateKey);
}

/** An X25519 or RSA private key from PEM (PKCS#8), e.g. one whose public half was registered. */
export function sealKeyFromPem(pem: string, source: string): SealKey {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new AppError('KEY_INVALID', `${source}: not a PEM private key`, {
      cause: err,
      details: { source },
    });
  }
  if (key.asymmetricKeyType !== 'x25519' && key.asymmetricKeyType !== 'rsa') {
    throw new AppError('KEY_INVALID', `${source}: a sealed bundle needs an X25519 or RSA key`, {
      details: { source, type: key.asymmetricKeyType ?? 'unknown' },
    });
  }
  return fromPrivate(key);
}

/** Opens a sealed bundle; the protected header must name the certificate asked for. */
export async function unsealBundle(jwe: string, key: SealKey, certificate: string): Promise<Buffer> {
  try {
    const { plaintext, protectedHeader } = await compactDecrypt(jwe.trim(), key.privateKey, {
      keyManagementAlgorithms: ['ECDH-ES+A256KW', 'RSA-OAEP-256'],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    if (protectedHeader['kw-cert'] !== certificate) {
      throw new Error(`sealed for ${String(protectedHeader['kw-cert'])}, not ${certificate}`);
    }
    return Buffer.from(plaintext);
  } catch (err) {
    throw new AppError(
      'SEAL_INTEGRITY',
      `the sealed bundle for ${certificate} could not be opened with this key`,
      {
        cause: err,
        details: { certificate },
      },
    );
  }
}
