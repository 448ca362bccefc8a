/**
 * acme-client's Client, made for one account and one operation. Two of its internals are set here,
 * on the pinned 5.4.0, and checked so an upgrade that changes them fails loudly instead of silently:
 *  - the account key is handed over as a KeyObject (acme-client signs with `crypto.createSign`, which
 *    takes one), so no plaintext PEM of the account key exists while the daemon runs (DESIGN §3);
 *  - the number of badNonce retries per request (RFC 8555 §6.5) is raised from 5.
 */
import type { KeyObject } from 'node:crypto';
import type { Client } from 'acme-client';
import { AcmeError } from '../core/errors.js';
import { exportPkcs8Der } from '../keys/generate.js';
import { loadAcmeClient } from './acme-client.js';

export interface PollSettings {
  /** First wait between polls of a pending authorization or order; doubles up to maxMs. */
  readonly minMs: number;
  readonly maxMs: number;
  readonly attempts: number;
}

export interface ClientSettings {
  readonly poll: PollSettings;
  readonly badNonceRetries: number;
}

export const DEFAULT_CLIENT_SETTINGS: ClientSettings = {
  poll: { minMs: 500, maxMs: 8_000, attempts: 16 },
  badNonceRetries: 10,
};

interface HttpInternals {
  accountKey: unknown;
  jwk: unknown;
  maxBadNonceRetries: number;
}

function internals(client: Client): HttpInternals {
  const http = (client as unknown as { http?: HttpInternals }).http;
  if (http === undefined || !('accountKey' in http) || typeof http.maxBadNonceRetries !== 'number') {
    throw new AcmeError(
      'ACME_ERROR',
      'acme-client internals changed (http.accountKey); keywright pins acme-client 5.4.0',
      {
        retryable: false,
      },
    );
  }
  return http;
}

/** Points a client (or the new HTTP client acme-client made after a key change) at `key`. */
export function useAccountKey(client: Client, key: KeyObject, settings: ClientSettings): void {
  const http = internals(client);
  http.accountKey = key;
  http.jwk = null;
  http.maxBadNonceRetries = settings.badNonceRetries;
}

export async function createClient(
  options: {
    readonly directoryUrl: string;
    readonly accountKey: KeyObject;
    readonly accountUrl?: string | undefined;
    /** Only for newAccount (RFC 8555 §7.3.4); never stored. */
    readonly eab?: { readonly kid: string; readonly hmacKey: string } | undefined;
  },
  settings: ClientSettings,
): Promise<Client> {
  const acme = await loadAcmeClient();
  const client = new acme.Client({
    directoryUrl: options.directoryUrl,
    // Replaced by the KeyObject below before anything is signed.
    accountKey: Buffer.alloc(0),
    ...(options.accountUrl ? { accountUrl: options.accountUrl } : {}),
    ...(options.eab
      ? { externalAccountBinding: { kid: options.eab.kid, hmacKey: options.eab.hmacKey } }
      : {}),
    backoffMin: settings.poll.minMs,
    backoffMax: settings.poll.maxMs,
    backoffAttempts: settings.poll.attempts,
  });
  useAccountKey(client, options.accountKey, settings);
  return client;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * PKCS#8 PEM of a private key in a Buffer the caller wipes: acme-client's key change takes the new key
 * only as PEM, and a JS string of it could never be wiped. Base64 is written byte by byte for that reason.
 */
export function privateKeyPemBuffer(key: KeyObject): Buffer {
  const der = exportPkcs8Der(key);
  try {
    const head = Buffer.from('-----BEGIN PRIVATE KEY-----\n');
    const foot = Buffer.from('-----END PRIVATE KEY-----\n');
    const b64Len = Math.ceil(der.length / 3) * 4;
    const lines = Math.ceil(b64Len / 64);
    const out = Buffer.alloc(head.length + b64Len + lines + foot.length);
    let o = head.copy(out, 0);
    let col = 0;
    const put = (c: number) => {
      out[o++] = c;
      if (++col === 64) {
        out[o++] = 0x0a;
        col = 0;
      }
    };
    for (let i = 0; i < der.length; i += 3) {
      const n = (der[i]! << 16) | ((der[i + 1] ?? 0) << 8) | (der[i + 2] ?? 0);
      put(B64.charCodeAt((n >> 18) & 63));
      put(B64.charCodeAt((n >> 12) & 63));
      put(i + 1 < der.length ? B64.charCodeAt((n >> 6) & 63) : 0x3d);
      put(i + 2 < der.length ? B64.charCodeAt(n & 63) : 0x3d);
    }
    if (col !== 0) out[o++] = 0x0a;
    foot.copy(out, o);
    return out;
  } finally {
    der.fill(0);
  }
}
