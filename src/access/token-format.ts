import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Bearer tokens: `kw_` + base64url of 32 random bytes (256 bits). The prefix lets secret scanners and
 * our own audit guard recognise a leaked token. Only SHA-256 of the token is stored: with 256 bits of
 * entropy a fast hash is enough (nothing to brute-force), and it gives an exact-match lookup key.
 */
export const TOKEN_PREFIX = 'kw_';
export const TOKEN_BYTES = 32;
export const TOKEN_PATTERN = /^kw_[A-Za-z0-9_-]{43}$/;

export function generateToken(): string {
  return TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
}

/** SHA-256 hex of the whole token, prefix included (every authenticated request: the one-shot hash). */
export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

export function isWellFormedToken(value: unknown): value is string {
  return typeof value === 'string' && TOKEN_PATTERN.test(value);
}

/** Equal hex digests, compared in constant time. */
export function sameDigest(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}
