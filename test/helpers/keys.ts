import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync as nodeGenerateKeyPairSync,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/**
 * node:crypto's generateKeyPairSync for tests, made safe to export as JWK. Node 20 leaves the sync job
 * to the garbage collector, whose finaliser takes the key's lock, and a JWK export holds that lock while
 * it allocates: a collection in between hangs the test for good (seen in test/unit/pki). The pair is
 * re-imported from DER (an export that holds no lock while allocating), so it shares nothing with the job.
 */
export function generateKeyPairSync(
  type: 'ec' | 'rsa' | 'rsa-pss' | 'ed25519' | 'ed448' | 'x25519' | 'x448',
  options?: { namedCurve?: string; modulusLength?: number; publicExponent?: number },
): { privateKey: KeyObject; publicKey: KeyObject } {
  const generated = (nodeGenerateKeyPairSync as (t: string, o?: object) => { privateKey: KeyObject })(
    type,
    options,
  );
  const der = generated.privateKey.export({ type: 'pkcs8', format: 'der' });
  const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  der.fill(0);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}
