/** The key types keywright makes and accepts, named as in the CLI and config (`--key ec-p256`). */
export const CERT_KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096', 'ed25519'] as const;
export type CertKeyType = (typeof CERT_KEY_TYPES)[number];

/** x25519 is for WireGuard only; it never signs a certificate. */
export const KEY_TYPES = [...CERT_KEY_TYPES, 'x25519'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export type KeyFamily = 'ec' | 'rsa' | 'ed25519' | 'x25519';

export interface KeySpec {
  readonly type: KeyType;
  readonly family: KeyFamily;
  /** EC curve (node:crypto name) or RSA modulus bits. */
  readonly namedCurve?: 'P-256' | 'P-384';
  readonly modulusLength?: 2048 | 3072 | 4096;
}

export const KEY_SPECS: Readonly<Record<KeyType, KeySpec>> = {
  'ec-p256': { type: 'ec-p256', family: 'ec', namedCurve: 'P-256' },
  'ec-p384': { type: 'ec-p384', family: 'ec', namedCurve: 'P-384' },
  'rsa-2048': { type: 'rsa-2048', family: 'rsa', modulusLength: 2048 },
  'rsa-3072': { type: 'rsa-3072', family: 'rsa', modulusLength: 3072 },
  'rsa-4096': { type: 'rsa-4096', family: 'rsa', modulusLength: 4096 },
  ed25519: { type: 'ed25519', family: 'ed25519' },
  x25519: { type: 'x25519', family: 'x25519' },
};

export function isKeyType(value: string): value is KeyType {
  return (KEY_TYPES as readonly string[]).includes(value);
}
