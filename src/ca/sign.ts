/** The steps every certificate keywright makes goes through: validity, revocation pointers, lint, sign. */
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { TbsCertificate } from '../pki/certificate.js';
import { certificateToPem, serialHexOf, signCertificate } from '../pki/certificate.js';
import type { Extension } from '../pki/extensions.js';
import type { ParsedName } from '../pki/name.js';
import type { IssuerContext } from './issuer-context.js';
import type { RandomSource } from './serial.js';
import { randomSerial, serialContent } from './serial.js';
import type { CertificateKind, LintIssuer } from './lint.js';
import { assertLintClean } from './lint.js';

export interface IssuedCertificate {
  readonly der: Buffer;
  readonly pem: string;
  /** Lowercase hex of the serial's magnitude (the store's and the OCSP/CRL lookups' key). */
  readonly serialHex: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Where relying parties find revocation data and the issuer certificate (RFC 5280 §4.2.1.13, §4.2.2.1). */
export interface IssueUrls {
  readonly crl?: string;
  readonly ocsp?: string;
  readonly caIssuers?: string;
}

/** notBefore is set this far back, so a relying party whose clock lags still accepts a fresh certificate. */
export const BACKDATE_MS = 60_000;

const floorSecond = (ms: number): number => Math.floor(ms / 1000) * 1000;

/**
 * Validity for a certificate made now: notBefore back-dated by BACKDATE_MS (never before `notBeforeFloor`,
 * the issuer's own notBefore), notAfter = now + lifetime capped by each of `caps`; both whole seconds,
 * rounded down so a cap is never exceeded.
 */
export function computeValidity(
  clock: Clock,
  lifetimeMs: number,
  caps: readonly Date[],
  notBeforeFloor?: Date,
): { notBefore: Date; notAfter: Date } {
  const now = clock.nowMs();
  let notBefore = floorSecond(now - BACKDATE_MS);
  if (notBeforeFloor && notBefore < notBeforeFloor.getTime()) notBefore = notBeforeFloor.getTime();
  const notAfter = floorSecond(Math.min(now + lifetimeMs, ...caps.map((c) => c.getTime())));
  return { notBefore: new Date(notBefore), notAfter: new Date(notAfter) };
}

/** CRL distribution point and AIA extensions for the configured URLs (none when no URL is set). */
export function revocationPointers(urls: IssueUrls | undefined): Extension[] {
  if (!urls) return [];
  const out: Extension[] = [];
  if (urls.ocsp !== undefined || urls.caIssuers !== undefined) {
    out.push({
      kind: 'authorityInfoAccess',
      critical: false,
      ocsp: urls.ocsp !== undefined ? [urls.ocsp] : [],
      caIssuers: urls.caIssuers !== undefined ? [urls.caIssuers] : [],
    });
  }
  if (urls.crl !== undefined) out.push({ kind: 'crlDistributionPoints', critical: false, uris: [urls.crl] });
  return out;
}

/** Lints the TBS (LINT_FAILED on any rule, nothing signed), then signs it with the issuer key. */
export function lintAndSign(
  tbs: TbsCertificate,
  kind: CertificateKind,
  lintIssuer: LintIssuer,
  issuerKey: KeyObject,
): IssuedCertificate {
  assertLintClean(tbs, kind, lintIssuer);
  const der = signCertificate(tbs, issuerKey);
  return {
    der,
    pem: certificateToPem(der),
    serialHex: serialHexOf(tbs.serialNumber),
    notBefore: tbs.notBefore,
    notAfter: tbs.notAfter,
  };
}

/** The TBS of a certificate `issuer` signs: its algorithm and subject as issuer, the given serial or a random one. */
export function issuedTbs(
  issuer: IssuerContext,
  fields: {
    readonly serial?: Uint8Array | string | undefined;
    readonly random?: RandomSource | undefined;
    readonly notBefore: Date;
    readonly notAfter: Date;
    readonly subject: ParsedName;
    readonly subjectPublicKey: KeyObject;
    readonly extensions: readonly Extension[];
  },
): TbsCertificate {
  return {
    serialNumber: fields.serial !== undefined ? serialContent(fields.serial) : randomSerial(fields.random),
    signatureAlgorithm: issuer.algorithm,
    issuer: issuer.certificate.subject,
    notBefore: fields.notBefore,
    notAfter: fields.notAfter,
    subject: fields.subject,
    subjectPublicKey: fields.subjectPublicKey,
    extensions: fields.extensions,
  };
}
