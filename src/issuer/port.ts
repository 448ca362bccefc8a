import type { KeyObject } from 'node:crypto';
/**
 * The Issuer port: what turns a CSR into a certificate. The internal CA (`ca:<name>`) and each ACME
 * account (`acme:<name>`) implement it; lifecycle/ talks to this port only, never to ca/ or acme/. The CSR
 * is the seam: whoever holds the key makes the CSR, the issuer never sees a private key.
 * Optional abilities are small interfaces with type guards (step-ca's style), not methods that throw.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { RevocationReason } from '../pki/revocation.js';

/** `ca:default`, `acme:letsencrypt`. */
export type IssuerRef = `${'ca' | 'acme'}:${string}`;

export interface OpContext {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Who asked: a token id, 'system' (scheduler) or 'cli:<command>'. Recorded in the audit log. */
  readonly actor: string;
  readonly requestId?: string;
  readonly signal?: AbortSignal;
}

export interface IssueRequest {
  /** The managed certificate this is for (audit, naming); undefined for a bare CSR signing. */
  readonly certificateName?: string;
  /** PKCS#10, DER. Its signature is checked by the issuer. */
  readonly csrDer: Buffer;
  /**
   * The CSR's public key when keywright made the key pair itself: possession is not in question, so an
   * issuer that needs only the key may use it and skip parsing and verifying the CSR (~0.5 ms).
   */
  readonly ownKey?: KeyObject;
  /** The names wanted; the issuer's policy decides what it certifies. */
  readonly sans: readonly string[];
  readonly profile?: string;
  readonly lifetimeMs?: number;
  /** RFC 9773 `replaces`: the certificate this one renews (ACME ARI); serial in lowercase hex. */
  readonly replaces?: { readonly serialHex: string; readonly certificatePem: string };
}

export interface IssueResult {
  readonly issuer: IssuerRef;
  /** The leaf, PEM. */
  readonly certificatePem: string;
  /** Issuing CA first, up to but excluding the root (what a server sends), PEM each. */
  readonly chainPem: readonly string[];
  readonly serialHex: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** A renewal window suggested by the issuer (ACME ARI), when it has one. */
  readonly renewalWindow?: { readonly start: Date; readonly end: Date; readonly retryAfter?: Date };
}

export interface Issuer {
  readonly ref: IssuerRef;
  issue(request: IssueRequest, ctx: OpContext): Promise<IssueResult>;
}

export type { RevocationReason } from '../pki/revocation.js';

export interface RevokeRequest {
  readonly serialHex: string;
  readonly certificatePem: string;
  readonly reason: RevocationReason;
}

export interface Revoker {
  revoke(request: RevokeRequest, ctx: OpContext): Promise<void>;
}

export function canRevoke(issuer: Issuer): issuer is Issuer & Revoker {
  return typeof (issuer as Partial<Revoker>).revoke === 'function';
}

/** An issuer that can suggest when to renew (ACME ARI, RFC 9773). */
export interface RenewalAdvisor {
  renewalWindow(certificatePem: string, ctx: OpContext): Promise<IssueResult['renewalWindow']>;
}

export function canAdviseRenewal(issuer: Issuer): issuer is Issuer & RenewalAdvisor {
  return typeof (issuer as Partial<RenewalAdvisor>).renewalWindow === 'function';
}
