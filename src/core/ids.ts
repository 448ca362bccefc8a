import { randomBytes } from 'node:crypto';

/** A branded string: the same at run time, a distinct type at compile time. */
export type Brand<T, B extends string> = T & { readonly __brand: B };

export type TokenId = Brand<string, 'TokenId'>;
export type RequestId = Brand<string, 'RequestId'>;

/** A random id with a readable prefix, e.g. `tok_3f9a1c2b7d4e5f60`. */
export function newId<T extends string>(prefix: string, bytes = 8): T {
  return `${prefix}_${randomBytes(bytes).toString('hex')}` as T;
}

/** Names users give things (certificates, CAs, networks, peers): DNS-label-like, safe in paths and URLs. */
export const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;
