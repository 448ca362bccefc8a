/**
 * CRL v2 (RFC 5280 §5): version, signature algorithm, issuer, thisUpdate, nextUpdate, the revoked
 * certificates with their revocation date and reason code (omitted for `unspecified`, §5.3.1), and the
 * AKI and CRL number extensions. The revoked list is written straight into one buffer: with 100 000
 * entries the build is dominated by a single hash over ~4 MB rather than by encoding.
 */
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import { signBytes } from '../pki/algorithms.js';
import { assembleSigned } from '../pki/certificate.js';
import {
  enumerated,
  explicit,
  integer,
  lengthSize,
  octetString,
  oid,
  sequence,
  TAG,
  writeHeader,
  x509Time,
} from '../pki/der.js';
import { encodeExtensions } from '../pki/extensions.js';
import { OID } from '../pki/oids.js';
import { encodePem } from '../pki/pem.js';
import type { RevocationReason } from '../pki/revocation.js';
import { REVOCATION_REASONS } from '../pki/revocation.js';
import type { CaIssuer, IssuerContext } from './issuer-context.js';
import { issuerContext } from './issuer-context.js';

export interface CrlEntry {
  /** Lowercase or uppercase hex of the serial's magnitude. */
  readonly serialHex: string;
  readonly revokedAt: Date;
  /** Absent or `unspecified`: no reasonCode entry extension (§5.3.1 says to omit it). */
  readonly reason?: RevocationReason;
}

export interface CrlRequest {
  readonly issuer: CaIssuer | IssuerContext;
  readonly entries: Iterable<CrlEntry>;
  /** Monotonically increasing per CA (§5.2.3); at most 20 octets. */
  readonly crlNumber: bigint | number;
  readonly clock: Clock;
  /** nextUpdate = thisUpdate + validityMs. */
  readonly validityMs: number;
}

export interface BuiltCrl {
  readonly der: Buffer;
  readonly pem: string;
  readonly crlNumber: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly count: number;
}

const VERSION_2 = integer(1);

function invalid(message: string, details: Record<string, unknown>): CaError {
  return new CaError('REVOCATION_INVALID', message, { details });
}

/** The crlEntryExtensions value for each reason, encoded once: SEQ { SEQ { id-ce-cRLReasons, OCTET STRING { ENUMERATED } } }. */
const REASON_EXTENSIONS: ReadonlyMap<RevocationReason, Buffer> = new Map(
  (Object.keys(REVOCATION_REASONS) as RevocationReason[])
    .filter((r) => r !== 'unspecified')
    .map((r) => [r, sequence(sequence(oid(OID.crlReason), octetString(enumerated(REVOCATION_REASONS[r]))))]),
);

const UTC_LEN = 13; // YYMMDDHHMMSSZ
const GEN_LEN = 15; // YYYYMMDDHHMMSSZ

function writeDigits(out: Buffer, pos: number, value: number, width: number): number {
  for (let i = width - 1; i >= 0; i--) {
    out[pos + i] = 0x30 + (value % 10);
    value = Math.floor(value / 10);
  }
  return pos + width;
}

/** Writes a Time (UTCTime through 2049, else GeneralizedTime, RFC 5280 §5.1.2.6) without building strings. */
function writeTime(out: Buffer, pos: number, d: Date): number {
  const y = d.getUTCFullYear();
  const utc = y >= 1950 && y <= 2049;
  out[pos++] = utc ? TAG.UTC_TIME : TAG.GENERALIZED_TIME;
  out[pos++] = utc ? UTC_LEN : GEN_LEN;
  pos = utc ? writeDigits(out, pos, y % 100, 2) : writeDigits(out, pos, y, 4);
  pos = writeDigits(out, pos, d.getUTCMonth() + 1, 2);
  pos = writeDigits(out, pos, d.getUTCDate(), 2);
  pos = writeDigits(out, pos, d.getUTCHours(), 2);
  pos = writeDigits(out, pos, d.getUTCMinutes(), 2);
  pos = writeDigits(out, pos, d.getUTCSeconds(), 2);
  out[pos++] = 0x5a; // 'Z'
  return pos;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * INTEGER content length of a serial given as hex (leading zeros dropped, a 0x00 added when the top bit
 * is set, X.690 §8.3.2), or -1 when it is not 1–40 hex digits. Avoids a Buffer per entry.
 */
function serialContentLength(hex: string): number {
  const n = hex.length;
  if (n === 0 || n > 40) return -1;
  let first = -1;
  for (let i = 0; i < n; i++) {
    const v = hexValue(hex.charCodeAt(i));
    if (v < 0) return -1;
    if (first < 0 && v !== 0) first = i;
  }
  if (first < 0) return 1; // zero
  const digits = n - first;
  const lead =
    digits % 2
      ? hexValue(hex.charCodeAt(first))
      : hexValue(hex.charCodeAt(first)) * 16 + hexValue(hex.charCodeAt(first + 1));
  return Math.ceil(digits / 2) + (lead >= 0x80 ? 1 : 0);
}

/** Writes the content octets whose length serialContentLength computed. */
function writeSerial(out: Buffer, pos: number, hex: string, len: number): number {
  const end = pos + len;
  let i = hex.length;
  let p = end - 1;
  // fill from the least significant end; what is left at the front is zero (sign octet or the value 0)
  while (p >= pos && i > 0) {
    const lo = hexValue(hex.charCodeAt(--i));
    const hi = i > 0 ? hexValue(hex.charCodeAt(--i)) : 0;
    out[p--] = hi * 16 + lo;
  }
  while (p >= pos) out[p--] = 0;
  return end;
}

/** The revokedCertificates SEQUENCE OF, or undefined when there are none (§5.1.2.6: then it is absent). */
function encodeRevoked(entries: Iterable<CrlEntry>): { der: Buffer | undefined; count: number } {
  const list = Array.isArray(entries) ? (entries as readonly CrlEntry[]) : [...entries];
  if (list.length === 0) return { der: undefined, count: 0 };
  // pass 1: validate and size every entry, so the output is allocated once
  const serialLens = new Uint8Array(list.length);
  const entryLens = new Uint32Array(list.length);
  let total = 0;
  for (let k = 0; k < list.length; k++) {
    const e = list[k]!;
    const serialLen = serialContentLength(e.serialHex);
    if (serialLen < 0)
      throw invalid(`revoked serial "${e.serialHex}" is not 1–40 hex digits`, { serial: e.serialHex });
    const y = e.revokedAt.getUTCFullYear();
    if (!Number.isFinite(e.revokedAt.getTime()) || y < 1950 || y > 9999) {
      throw invalid(`revocation date of serial ${e.serialHex} is not a valid date`, { serial: e.serialHex });
    }
    if (e.reason === 'removeFromCRL') {
      throw invalid('removeFromCRL belongs in delta CRLs only (RFC 5280 §5.3.1)', { serial: e.serialHex });
    }
    const extLen =
      e.reason === undefined || e.reason === 'unspecified' ? 0 : REASON_EXTENSIONS.get(e.reason)!.length;
    const len = 2 + serialLen + 2 + (y <= 2049 ? UTC_LEN : GEN_LEN) + extLen;
    serialLens[k] = serialLen;
    entryLens[k] = len;
    total += 1 + lengthSize(len) + len;
  }
  // pass 2: write
  const out = Buffer.allocUnsafe(1 + lengthSize(total) + total);
  let pos = writeHeader(out, 0, TAG.SEQUENCE, total);
  for (let k = 0; k < list.length; k++) {
    const e = list[k]!;
    pos = writeHeader(out, pos, TAG.SEQUENCE, entryLens[k]!);
    out[pos++] = TAG.INTEGER;
    out[pos++] = serialLens[k]!;
    pos = writeSerial(out, pos, e.serialHex, serialLens[k]!);
    pos = writeTime(out, pos, e.revokedAt);
    if (e.reason !== undefined && e.reason !== 'unspecified') {
      const ext = REASON_EXTENSIONS.get(e.reason)!;
      ext.copy(out, pos);
      pos += ext.length;
    }
  }
  return { der: out, count: list.length };
}

/** Builds and signs a CRL for the issuer. The CA key must allow cRLSign. */
export function buildCrl(req: CrlRequest): BuiltCrl {
  const issuer = issuerContext(req.issuer);
  if (!issuer.crlSign) {
    throw new CaError('LINT_FAILED', 'the CA certificate does not allow cRLSign; it cannot sign CRLs', {
      details: { rule: 'issuer_crl_sign' },
    });
  }
  const crlNumber = BigInt(req.crlNumber);
  if (crlNumber < 0n || crlNumber >= 1n << 159n)
    throw invalid('the CRL number must be 0 to 2^159-1 (20 octets)', {});
  if (!Number.isFinite(req.validityMs) || req.validityMs < 1000)
    throw invalid('the CRL validity must be at least one second', {});

  const thisUpdate = new Date(Math.floor(req.clock.nowMs() / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + Math.floor(req.validityMs / 1000) * 1000);
  const revoked = encodeRevoked(req.entries);
  const extensions = encodeExtensions([
    { kind: 'authorityKeyIdentifier', critical: false, keyId: issuer.keyId },
    { kind: 'unknown', oid: OID.crlNumber, critical: false, value: integer(crlNumber) },
  ]);
  const parts: Buffer[] = [
    VERSION_2,
    issuer.algorithm.identifier,
    issuer.certificate.subject.der,
    x509Time(thisUpdate),
    x509Time(nextUpdate),
  ];
  if (revoked.der) parts.push(revoked.der);
  parts.push(explicit(0, extensions));
  const tbs = sequence(...parts);
  const der = assembleSigned(tbs, issuer.algorithm, signBytes(issuer.algorithm, issuer.key, tbs));
  return { der, pem: encodePem('X509 CRL', der), crlNumber, thisUpdate, nextUpdate, count: revoked.count };
}
