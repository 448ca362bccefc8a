/**
 * A small, exact DER writer (ITU-T X.690 §8 basic rules restricted by §10–11 distinguished rules).
 * Every function returns a complete TLV as a Buffer; constructed values are assembled with one
 * allocation each. Small Buffers come from Node's shared pool, so building a certificate costs a few
 * microseconds. Only the universal types X.509, CRLs, OCSP and PKCS#12 need are here.
 */
import { ValidationError } from '../core/errors.js';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** X.690 §8.1.2: class bits 10 = context-specific; bit 6 = constructed. */
const CONTEXT = 0x80;
const CONSTRUCTED = 0x20;

/** Bytes a definite length needs (X.690 §8.1.3; §10.1 demands the shortest form). */
export function lengthSize(len: number): number {
  if (len < 0x80) return 1;
  if (len < 0x100) return 2;
  if (len < 0x10000) return 3;
  if (len < 0x1000000) return 4;
  return 5;
}

/** Writes tag and length at `pos`; returns the position after them. */
export function writeHeader(out: Uint8Array, pos: number, tag: number, len: number): number {
  out[pos++] = tag;
  if (len < 0x80) {
    out[pos++] = len;
    return pos;
  }
  const n = lengthSize(len) - 1;
  out[pos++] = 0x80 | n;
  for (let i = n - 1; i >= 0; i--) out[pos++] = (len >>> (8 * i)) & 0xff;
  return pos;
}

/** A primitive or pre-assembled TLV: tag, length, content. */
export function tlv(tag: number, content: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + lengthSize(content.length) + content.length);
  const pos = writeHeader(out, 0, tag, content.length);
  out.set(content, pos);
  return out;
}

/** A constructed TLV whose content is the concatenation of already-encoded parts. */
export function constructed(tag: number, parts: readonly Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafe(1 + lengthSize(len) + len);
  let pos = writeHeader(out, 0, tag, len);
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

export function sequence(...parts: readonly Uint8Array[]): Buffer {
  return constructed(TAG.SEQUENCE, parts);
}

/** SEQUENCE OF: the same as SEQUENCE on the wire; named for readability at call sites. */
export function sequenceOf(parts: readonly Uint8Array[]): Buffer {
  return constructed(TAG.SEQUENCE, parts);
}

/** SET OF: X.690 §11.6 orders the components by their encodings, as octet strings. */
export function setOf(parts: readonly Uint8Array[]): Buffer {
  const sorted = parts.length < 2 ? parts : [...parts].sort((a, b) => Buffer.compare(a, b));
  return constructed(TAG.SET, sorted);
}

/** [n] EXPLICIT: a constructed context tag wrapping the whole inner TLV (X.690 §8.14). */
export function explicit(n: number, inner: Uint8Array): Buffer {
  return constructed(CONTEXT | CONSTRUCTED | n, [inner]);
}

/** [n] IMPLICIT: the inner TLV with its tag replaced, keeping its primitive/constructed bit (X.690 §8.14.3). */
export function implicit(n: number, inner: Uint8Array): Buffer {
  const out = Buffer.from(inner);
  out[0] = CONTEXT | ((inner[0] ?? 0) & CONSTRUCTED) | n;
  return out;
}

/** A context-specific primitive value, e.g. [2] IMPLICIT IA5String in a GeneralName. */
export function contextPrimitive(n: number, content: Uint8Array): Buffer {
  return tlv(CONTEXT | n, content);
}

/** A context-specific constructed value whose content is the given parts, e.g. [0] IMPLICIT SEQUENCE OF. */
export function contextConstructed(n: number, parts: readonly Uint8Array[]): Buffer {
  return constructed(CONTEXT | CONSTRUCTED | n, parts);
}

const TRUE = Buffer.from([TAG.BOOLEAN, 1, 0xff]);
const FALSE = Buffer.from([TAG.BOOLEAN, 1, 0x00]);
/** X.690 §11.1: DER TRUE is all ones. */
export function boolean(value: boolean): Buffer {
  return value ? TRUE : FALSE;
}

const NULL_TLV = Buffer.from([TAG.NULL, 0]);
export function nul(): Buffer {
  return NULL_TLV;
}

/**
 * Two's-complement content octets of an integer in the fewest octets (X.690 §8.3.2: the first nine bits
 * are never all zeros or all ones).
 */
export function integerContent(value: bigint | number): Buffer {
  let v = BigInt(value);
  if (v >= 0n && v < 0x80n) return Buffer.from([Number(v)]);
  const bytes: number[] = [];
  const negative = v < 0n;
  for (;;) {
    const byte = Number(v & 0xffn);
    bytes.unshift(byte);
    v >>= 8n;
    if (!negative && v === 0n && (byte & 0x80) === 0) break;
    if (negative && v === -1n && (byte & 0x80) !== 0) break;
  }
  return Buffer.from(bytes);
}

export function integer(value: bigint | number): Buffer {
  return tlv(TAG.INTEGER, integerContent(value));
}

/**
 * Content octets of a non-negative integer given as its unsigned big-endian magnitude (a serial number,
 * an RSA modulus): leading zero octets dropped, one 0x00 added back when the top bit is set so the value
 * stays positive (X.690 §8.3.2–8.3.3).
 */
export function unsignedIntegerContent(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const trimmed = magnitude.subarray(i);
  if (trimmed.length === 0) return Buffer.from([0]);
  if ((trimmed[0]! & 0x80) === 0) return Buffer.from(trimmed);
  const out = Buffer.allocUnsafe(trimmed.length + 1);
  out[0] = 0;
  out.set(trimmed, 1);
  return out;
}

export function unsignedInteger(magnitude: Uint8Array): Buffer {
  return tlv(TAG.INTEGER, unsignedIntegerContent(magnitude));
}

/** ENUMERATED is encoded like INTEGER (X.690 §8.4). */
export function enumerated(value: number): Buffer {
  return tlv(TAG.ENUMERATED, integerContent(value));
}

/** BIT STRING whose length is a whole number of octets (keys, signatures): no unused bits. */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  const out = Buffer.allocUnsafe(1 + lengthSize(bytes.length + 1) + bytes.length + 1);
  let pos = writeHeader(out, 0, TAG.BIT_STRING, bytes.length + 1);
  out[pos++] = unusedBits;
  out.set(bytes, pos);
  return out;
}

/**
 * A named-bit BIT STRING (KeyUsage): X.690 §11.2.2 drops trailing zero bits, so the value ends on its
 * last set bit and the initial octet counts the unused bits of the last octet.
 */
export function namedBitString(bits: Iterable<number>): Buffer {
  let max = -1;
  const set = new Set<number>();
  for (const b of bits) {
    if (!Number.isInteger(b) || b < 0 || b > 255)
      throw new ValidationError('INVALID_ARGUMENT', `bit ${b} is out of range`);
    set.add(b);
    if (b > max) max = b;
  }
  if (max < 0) return Buffer.from([TAG.BIT_STRING, 1, 0]);
  const octets = (max >> 3) + 1;
  const bytes = Buffer.alloc(octets);
  for (const b of set) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return bitString(bytes, 7 - (max & 7));
}

export function octetString(bytes: Uint8Array): Buffer {
  return tlv(TAG.OCTET_STRING, bytes);
}

const oidCache = new Map<string, Buffer>();

/** OBJECT IDENTIFIER from dotted form (X.690 §8.19: first two arcs combined, base-128 sub-identifiers). */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map((s) => {
    if (!/^(0|[1-9][0-9]*)$/.test(s))
      throw new ValidationError('INVALID_ARGUMENT', `OID ${dotted} is malformed`);
    return BigInt(s);
  });
  const [a, b] = arcs;
  if (arcs.length < 2 || a === undefined || b === undefined || a > 2n || (a < 2n && b > 39n)) {
    throw new ValidationError('INVALID_ARGUMENT', `OID ${dotted} is malformed`);
  }
  const out: number[] = [];
  const push = (v: bigint): void => {
    const chunk: number[] = [Number(v & 0x7fn)];
    v >>= 7n;
    while (v > 0n) {
      chunk.unshift(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(...chunk);
  };
  push(a * 40n + b);
  for (const arc of arcs.slice(2)) push(arc);
  const encoded = tlv(TAG.OID, Buffer.from(out));
  if (oidCache.size < 1024) oidCache.set(dotted, encoded);
  return encoded;
}

export function utf8String(value: string): Buffer {
  return tlv(TAG.UTF8_STRING, Buffer.from(value, 'utf8'));
}

/** X.680 §41.4 PrintableString alphabet. */
export const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

export function printableString(value: string): Buffer {
  if (!PRINTABLE.test(value)) {
    throw new ValidationError('INVALID_ARGUMENT', `"${value}" has characters a PrintableString cannot hold`);
  }
  return tlv(TAG.PRINTABLE_STRING, Buffer.from(value, 'latin1'));
}

// eslint-disable-next-line no-control-regex -- IA5 is 7-bit ASCII, control characters included
const IA5 = /^[\x00-\x7f]*$/;

export function ia5String(value: string): Buffer {
  if (!IA5.test(value))
    throw new ValidationError('INVALID_ARGUMENT', `"${value}" is not 7-bit ASCII (IA5String)`);
  return tlv(TAG.IA5_STRING, Buffer.from(value, 'latin1'));
}

/** BMPString: UCS-2 big-endian (PKCS#12 friendlyName). */
export function bmpString(value: string): Buffer {
  const le = Buffer.from(value, 'utf16le');
  return tlv(TAG.BMP_STRING, le.swap16());
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function timeDigits(date: Date, fullYear: boolean): string {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new ValidationError('INVALID_ARGUMENT', 'time value is not a valid date');
  const y = date.getUTCFullYear();
  return (
    (fullYear ? pad(y, 4) : pad(y % 100, 2)) +
    pad(date.getUTCMonth() + 1, 2) +
    pad(date.getUTCDate(), 2) +
    pad(date.getUTCHours(), 2) +
    pad(date.getUTCMinutes(), 2) +
    pad(date.getUTCSeconds(), 2) +
    'Z'
  );
}

/** UTCTime YYMMDDHHMMSSZ, seconds always present, no fraction (X.690 §11.8). Years 1950–2049 only. */
export function utcTime(date: Date): Buffer {
  const y = date.getUTCFullYear();
  if (y < 1950 || y > 2049)
    throw new ValidationError('INVALID_ARGUMENT', `UTCTime cannot hold the year ${y}`);
  return tlv(TAG.UTC_TIME, Buffer.from(timeDigits(date, false), 'latin1'));
}

/** GeneralizedTime YYYYMMDDHHMMSSZ; sub-second parts are dropped, as RFC 5280 §4.1.2.5.2 asks. */
export function generalizedTime(date: Date): Buffer {
  const y = date.getUTCFullYear();
  if (y < 0 || y > 9999)
    throw new ValidationError('INVALID_ARGUMENT', `GeneralizedTime cannot hold the year ${y}`);
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(timeDigits(date, true), 'latin1'));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 on. */
export function x509Time(date: Date): Buffer {
  const y = date.getUTCFullYear();
  return y >= 1950 && y <= 2049 ? utcTime(date) : generalizedTime(date);
}
