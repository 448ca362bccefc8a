/**
 * Should this certificate be issued again, and why? An ordered chain of named checks (cert-manager's
 * policies.Chain): the first one that fires is the reason, recorded on the new version and shown by
 * `cert show`; none firing means the current version is fine. Pure: the caller passes the record, its
 * current version and the time, so each check is a table test.
 */
import type { CertificateRecord, VersionRecord } from './records.js';
import { renewalTime } from './renewal-time.js';

export type ReissueReason =
  'no-current-version' | 'spec-changed' | 'revoked' | 'renewal-time' | 'ari-window' | 'manual';

export interface ReissueDecision {
  readonly reason: ReissueReason;
  /** One sentence for status and the audit log. */
  readonly message: string;
}

/** What the checks look at. Structural, so callers and tests pass records or small literals. */
export interface ReissueInput {
  readonly certificate: Pick<
    CertificateRecord,
    'issuer' | 'sans' | 'keyType' | 'renewBefore' | 'renewAt' | 'renewRequested'
  >;
  readonly current?: Pick<
    VersionRecord,
    'version' | 'issuer' | 'sans' | 'keyType' | 'status' | 'notBefore' | 'notAfter'
  >;
  /** A renewal window the issuer suggested (ACME ARI, RFC 9773), if any. */
  readonly renewalWindow?: { readonly start: Date; readonly end: Date };
  /** In [0, 1): where in the ARI window this client renews (RFC 9773 §4.2: a random point, kept stable). */
  readonly ariJitter?: number;
  readonly now: Date;
}

export interface ReissueCheck {
  readonly name: ReissueReason;
  /** A message when the check fires, undefined otherwise. */
  check(input: ReissueInput): string | undefined;
}

/** SANs compare as a set, case-insensitively, a trailing dot ignored (DNS names are case-insensitive). */
function sanSet(sans: readonly string[]): Set<string> {
  return new Set(sans.map((s) => s.trim().toLowerCase().replace(/\.$/, '')));
}

function sameSans(a: readonly string[], b: readonly string[]): boolean {
  const x = sanSet(a);
  const y = sanSet(b);
  return x.size === y.size && [...x].every((s) => y.has(s));
}

/** When the current version is due: the stored renewAt, or computed without jitter if none is stored. */
export function renewalDue(input: ReissueInput): Date | undefined {
  const { certificate, current } = input;
  if (certificate.renewAt !== undefined) return new Date(certificate.renewAt);
  if (current === undefined) return undefined;
  return renewalTime(new Date(current.notBefore), new Date(current.notAfter), certificate.renewBefore);
}

/** RFC 9773 §4.2: a point chosen uniformly in the suggested window; renew once it has passed. */
export function ariRenewalTime(window: { readonly start: Date; readonly end: Date }, jitter = 0): Date {
  const start = window.start.getTime();
  const span = Math.max(0, window.end.getTime() - start);
  return new Date(start + Math.floor(span * Math.min(Math.max(jitter, 0), 0.999_999)));
}

/** The earliest time a time-based check will fire (renewal time or ARI point), for status and sweeps. */
export function nextRenewalAt(input: Omit<ReissueInput, 'now'>): Date | undefined {
  const due = renewalDue({ ...input, now: new Date(0) });
  const ari = input.renewalWindow ? ariRenewalTime(input.renewalWindow, input.ariJitter) : undefined;
  if (due && ari) return due.getTime() <= ari.getTime() ? due : ari;
  return due ?? ari;
}

export const NO_CURRENT_VERSION: ReissueCheck = {
  name: 'no-current-version',
  check: ({ current }) => (current === undefined ? 'the certificate has no issued version yet' : undefined),
};

export const SPEC_CHANGED: ReissueCheck = {
  name: 'spec-changed',
  check: ({ certificate: spec, current }) => {
    if (current === undefined) return undefined;
    const changed: string[] = [];
    if (!sameSans(spec.sans, current.sans))
      changed.push(`names [${current.sans.join(', ')}] → [${spec.sans.join(', ')}]`);
    if (spec.keyType !== current.keyType) changed.push(`key type ${current.keyType} → ${spec.keyType}`);
    if (spec.issuer !== current.issuer) changed.push(`issuer ${current.issuer} → ${spec.issuer}`);
    return changed.length > 0
      ? `the spec changed since version ${current.version}: ${changed.join('; ')}`
      : undefined;
  },
};

export const REVOKED: ReissueCheck = {
  name: 'revoked',
  check: ({ current }) =>
    current?.status === 'revoked' ? `version ${current.version} is revoked` : undefined,
};

export const RENEWAL_TIME: ReissueCheck = {
  name: 'renewal-time',
  check: (input) => {
    const due = renewalDue(input);
    if (due === undefined || input.now.getTime() < due.getTime()) return undefined;
    const expired =
      input.current !== undefined && input.now.getTime() >= new Date(input.current.notAfter).getTime();
    return expired
      ? `version ${input.current.version} expired at ${input.current.notAfter}`
      : `renewal time ${due.toISOString()} reached (expires ${input.current?.notAfter ?? 'unknown'})`;
  },
};

export const ARI_WINDOW: ReissueCheck = {
  name: 'ari-window',
  check: ({ renewalWindow, ariJitter, now }) => {
    if (renewalWindow === undefined) return undefined;
    const at = ariRenewalTime(renewalWindow, ariJitter);
    return now.getTime() >= at.getTime()
      ? `the issuer's renewal window ${renewalWindow.start.toISOString()} – ${renewalWindow.end.toISOString()} is open (RFC 9773)`
      : undefined;
  },
};

export const MANUAL: ReissueCheck = {
  name: 'manual',
  check: ({ certificate }) =>
    certificate.renewRequested !== undefined
      ? `renewal requested at ${certificate.renewRequested}`
      : undefined,
};

/** The order matters: the most specific reason a person would want to see comes first. */
export const DEFAULT_CHECKS: readonly ReissueCheck[] = [
  NO_CURRENT_VERSION,
  SPEC_CHANGED,
  REVOKED,
  RENEWAL_TIME,
  ARI_WINDOW,
  MANUAL,
];

/** The first check that fires, or undefined when the current version is fine. */
export function decideReissue(
  input: ReissueInput,
  checks: readonly ReissueCheck[] = DEFAULT_CHECKS,
): ReissueDecision | undefined {
  for (const c of checks) {
    const message = c.check(input);
    if (message !== undefined) return { reason: c.name, message };
  }
  return undefined;
}
