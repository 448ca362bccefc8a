import { createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { KeyError } from '../core/errors.js';
import { exportPkcs8Der } from './generate.js';
import { encodePem } from '../pki/pem.js';
import type { SealContext, SealedBlob, Sealer } from './port.js';

/** Seals a private key as PKCS#8 DER; the DER copy is wiped once sealed. */
export async function sealPrivateKey(
  sealer: Sealer,
  key: KeyObject,
  context: SealContext,
): Promise<SealedBlob> {
  const der = exportPkcs8Der(key);
  try {
    return await sealer.seal(der, context);
  } finally {
    der.fill(0);
  }
}

/** Opens a blob made by sealPrivateKey; the DER copy is wiped once parsed. */
export async function unsealPrivateKey(
  sealer: Sealer,
  blob: SealedBlob,
  context: SealContext,
): Promise<KeyObject> {
  const der = await sealer.unseal(blob, context);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new KeyError(
      'KEY_INVALID',
      `sealed ${context.recordType} "${context.recordId}" opened but does not hold a PKCS#8 private key`,
      { cause: err, details: { ...context } },
    );
  } finally {
    der.fill(0);
  }
}

/**
 * Opens a blob made by sealPrivateKey straight into PKCS#8 PEM, for callers that only hand the key on
 * (bundle pulls, deploy files). No KeyObject is made: OpenSSL 3's PKCS#8 decoder costs ~0.6 ms per key
 * here, most of a pull's CPU. The AEAD tag already proves the bytes are the DER sealPrivateKey wrote.
 */
export async function unsealPrivateKeyPem(
  sealer: Sealer,
  blob: SealedBlob,
  context: SealContext,
): Promise<string> {
  const der = await sealer.unseal(blob, context);
  try {
    if (der[0] !== 0x30) {
      throw new KeyError(
        'KEY_INVALID',
        `sealed ${context.recordType} "${context.recordId}" opened but does not hold a PKCS#8 private key`,
        { details: { ...context } },
      );
    }
    return encodePem('PRIVATE KEY', der);
  } finally {
    der.fill(0);
  }
}
