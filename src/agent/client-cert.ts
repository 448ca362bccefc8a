/**
 * The agent renewing its own mTLS client certificate (docs/distribution.md, "Client-certificate
 * renewal"): past two thirds of its life it makes a new key of the same type, asks the daemon to sign
 * a CSR for the same names, writes key then certificate atomically and uses them from the next request.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { generateKeyPair, keyTypeOf } from '../keys/generate.js';
import { AppError, toAppError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import { writeFileDurable } from '../core/fs-durable.js';
import type { Logger } from '../core/logger.js';
import { buildCsr, csrToPem } from '../pki/csr.js';
import { parseSanText } from '../pki/general-name.js';
import type { BundleClient } from './client.js';

export interface ClientCertRenewal {
  readonly certFile: string;
  readonly keyFile: string;
}

/** The certificate the agent holds now (PEM chain and key); replaced after each renewal. */
export interface ClientCredentials {
  cert: string;
  key: string;
}

/** Renew once this share of the lifetime has passed, as certbot and cert-manager do by default. */
const RENEW_AT = 2 / 3;

export function renewalDue(certPem: string, now: number): boolean {
  const cert = new X509Certificate(certPem);
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return now >= from + (to - from) * RENEW_AT;
}

/**
 * A new key of the same type as `current` (keywright's types only), generated as the daemon does: on the
 * threadpool, never with generateKeyPairSync, whose garbage-collected job can deadlock a later JWK export
 * of the key (buildCsr encodes its SPKI through one; src/keys/generate.ts says more).
 */
async function sameKind(current: KeyObject): Promise<KeyObject> {
  let type;
  try {
    type = keyTypeOf(current);
  } catch {
    throw new AppError(
      'KEY_INVALID',
      `--client-key: a ${current.asymmetricKeyType ?? 'unknown'} key cannot be renewed here`,
      { details: { type: current.asymmetricKeyType ?? 'unknown' } },
    );
  }
  return (await generateKeyPair(type)).privateKey;
}

/**
 * Renews when due; returns true when new credentials are in use. Failures are logged, not thrown: the
 * current certificate still works until it expires, and the next round tries again.
 */
export async function maybeRenewClientCert(
  client: BundleClient,
  held: ClientCredentials,
  o: ClientCertRenewal,
  clock: Clock,
  logger: Logger,
): Promise<boolean> {
  if (!renewalDue(held.cert, clock.nowMs())) return false;
  try {
    const current = new X509Certificate(held.cert);
    const sans = (current.subjectAltName ?? '')
      .split(', ')
      .filter(Boolean)
      .map((s) => parseSanText(s));
    const key = await sameKind(createPrivateKey(held.key));
    const csr = csrToPem(buildCsr({ sans, privateKey: key }));
    // Same names, same CA, same lifetime: the daemon checks all three (POST /v1/mtls/renew).
    const signed = await client.renewClientCert({ csr });
    if (typeof signed.fullchain !== 'string') {
      throw new AppError('INTERNAL', 'the daemon answered the CSR without a certificate');
    }
    const keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
    // Key first: a crash between the two leaves the old certificate beside a new key, which the next
    // start reports, rather than a new certificate nobody can use.
    await writeFileDurable(o.keyFile, keyPem, 0o600);
    await writeFileDurable(o.certFile, signed.fullchain, 0o644);
    client.setClientCredentials(signed.fullchain, keyPem);
    held.cert = signed.fullchain;
    held.key = keyPem;
    logger.info(
      { file: o.certFile, serial: signed.serial, notAfter: signed.notAfter },
      'renewed the client certificate',
    );
    return true;
  } catch (err) {
    const e = toAppError(err);
    logger.error(
      { file: o.certFile, code: e.code, details: e.details },
      `client certificate renewal failed (${e.message}); still using the current one`,
    );
    return false;
  }
}
