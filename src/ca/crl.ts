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
  unsignedIntegerContent,
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

interface Prepared {
  readonly serial: Buffer;
  readonly at: Date;
  readonly ext: Buffer | undefined;
  readonly len: number;
}

/** The revokedCertificates SEQUENCE OF, or undefined when there are none (§5.1.2.6: then it is absent). */
function encodeRevoked(entries: Iterable<CrlEntry>): { der: Buffer | undefined; count: number } {
  const prepared: Prepared[] = [];
  let total = 0;
  for (const e of entries) {
    if (!/^[0-9a-fA-F]{1,40}$/.test(e.serialHex)) {
      throw invalid(`revoked serial "${e.serialHex}" is not 1–40 hex digits`, { serial: e.serialHex });
    }
    const y = e.revokedAt.getUTCFullYear();
    if (!Number.isFinite(e.revokedAt.getTime()) || y < 1950 || y > 9999) {
      throw invalid(`revocation date of serial ${e.serialHex} is not a valid date`, { serial: e.serialHex });
    }
    if (e.reason === 'removeFromCRL') {
      throw invalid('removeFromCRL belongs in delta CRLs only (RFC 5280 §5.3.1)', { serial: e.serialHex });
    }
    const hex = e.serialHex.length % 2 ? '0' + e.serialHex : e.serialHex;
    const serial = unsignedIntegerContent(Buffer.from(hex, 'hex'));
    const ext =
      e.reason === undefined || e.reason === 'unspecified' ? undefined : REASON_EXTENSIONS.get(e.reason);
    const timeLen = 2 + (y <= 2049 ? UTC_LEN : GEN_LEN);
    const len = 2 + serial.length + timeLen + (ext?.length ?? 0);
    prepared.push({ serial, at: e.revokedAt, ext, len });
    total += 1 + lengthSize(len) + len;
  }
  if (prepared.length === 0) return { der: undefined, count: 0 };
  const out = Buffer.allocUnsafe(1 + lengthSize(total) + total);
  let pos = writeHeader(out, 0, TAG.SEQUENCE, total);
  for (const p of prepared) {
    pos = writeHeader(out, pos, TAG.SEQUENCE, p.len);
    out[pos++] = TAG.INTEGER;
    out[pos++] = p.serial.length;
    p.serial.copy(out, pos);
    pos += p.serial.length;
    pos = writeTime(out, pos, p.at);
    if (p.ext) {
      p.ext.copy(out, pos);
      pos += p.ext.length;
    }
  }
  return { der: out, count: prepared.length };
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
