/**
 * ACME Renewal Information, RFC 9773. The CA suggests a renewal window per certificate; the client polls
 * it as often as Retry-After says, renews at a uniformly random moment inside the window, and names the
 * certificate it replaces in the next newOrder (`replaces`, §5).
 */
import { AcmeError } from '../core/errors.js';
import { findExtension } from '../pki/extensions.js';
import type { ParsedCertificate } from '../pki/certificate.js';
import { parseRetryAfter } from './problems.js';
import { getJson, step } from './transport.js';

/**
 * §4.1: base64url(AKI keyIdentifier) "." base64url(serial), the serial being the DER INTEGER's content
 * octets (a leading 0x00 kept), both without padding.
 */
export function ariCertId(cert: ParsedCertificate): string {
  const aki = findExtension(cert.extensions, 'authorityKeyIdentifier');
  if (aki?.keyId === undefined) {
    throw new AcmeError(
      'ACME_ERROR',
      `certificate ${cert.serialHex} has no Authority Key Identifier keyIdentifier, which ARI needs (RFC 9773 §4.1)`,
      { retryable: false, details: { serial: cert.serialHex } },
    );
  }
  return `${aki.keyId.toString('base64url')}.${cert.serialNumber.toString('base64url')}`;
}

export interface RenewalInfo {
  readonly window: { readonly start: Date; readonly end: Date };
  readonly explanationUrl?: string;
  /** When to ask again (§4.3.2), already clamped. */
  readonly retryAfter: Date;
}

const MINUTE = 60_000;
const DAY = 86_400_000;
/** §4.3.3: without a usable Retry-After, check again in six hours. */
export const DEFAULT_ARI_RETRY_MS = 6 * 3_600_000;

/** §4.3.2: values under a minute count as a minute, over a day as a day; none gives the default. */
export function clampRetryAfter(at: Date | undefined, now: Date): Date {
  if (at === undefined) return new Date(now.getTime() + DEFAULT_ARI_RETRY_MS);
  const wait = Math.min(Math.max(at.getTime() - now.getTime(), MINUTE), DAY);
  return new Date(now.getTime() + wait);
}

/** Parses a renewalInfo body (§4.2); a window whose end is not after its start is malformed (§4.3.3). */
export function parseRenewalInfo(body: unknown, retryAfterHeader: unknown, now: Date): RenewalInfo {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const w = (
    typeof b.suggestedWindow === 'object' && b.suggestedWindow !== null ? b.suggestedWindow : {}
  ) as Record<string, unknown>;
  const start = typeof w.start === 'string' ? new Date(w.start) : undefined;
  const end = typeof w.end === 'string' ? new Date(w.end) : undefined;
  if (!start || !end || Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end <= start) {
    throw new AcmeError(
      'ACME_ERROR',
      'malformed renewalInfo: suggestedWindow needs RFC 3339 start and end with end after start (RFC 9773 §4.2)',
      { details: { suggestedWindow: JSON.stringify(b.suggestedWindow ?? null).slice(0, 200) } },
    );
  }
  return {
    window: { start, end },
    ...(typeof b.explanationURL === 'string' ? { explanationUrl: b.explanationURL } : {}),
    retryAfter: clampRetryAfter(parseRetryAfter(retryAfterHeader, now), now),
  };
}

/**
 * §4.3.1 step 2: a uniformly random moment inside the window; a window already in the past (a mass
 * revocation moves it there) gives a moment in the past, which means "renew now".
 */
export function pickRenewalTime(window: RenewalInfo['window'], random: () => number): Date {
  const span = window.end.getTime() - window.start.getTime();
  return new Date(window.start.getTime() + Math.floor(random() * span));
}

/** GET `<renewalInfo>/<certID>` (§4.2: a plain GET, no JWS), inside a withAcmeCall scope. */
export async function fetchRenewalInfo(
  renewalInfoUrl: string,
  certId: string,
  now: () => Date,
): Promise<RenewalInfo> {
  const url = `${renewalInfoUrl.replace(/\/+$/, '')}/${certId}`;
  const resp = await step('fetching ACME renewal information', () => getJson(url));
  if (resp.status !== 200) {
    throw new AcmeError('ACME_ERROR', `fetching ACME renewal information ${url}: HTTP ${resp.status}`, {
      retryable: resp.status >= 500 || resp.status === 429,
      details: { url, status: resp.status },
    });
  }
  return parseRenewalInfo(resp.data, resp.headers['retry-after'], now());
}
