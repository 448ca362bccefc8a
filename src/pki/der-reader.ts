/**
 * A minimal, strict DER reader: enough to parse certificates, CSRs, CRLs and OCSP requests keywright
 * handles itself. It refuses what DER forbids (X.690 §10.1: indefinite or non-minimal lengths) and
 * high-tag-number forms, which none of these structures use. Values are views into the input buffer.
 */
import { PkiError } from '../core/errors.js';
import { TAG } from './der.js';

export class DerElement {
  constructor(
    readonly buf: Buffer,
    readonly tag: number,
    /** Offset of the tag octet. */
    readonly start: number,
    /** Offset of the first content octet. */
    readonly contentStart: number,
    /** Offset just past the content. */
    readonly end: number,
    /** What is being parsed, for error messages ("certificate", "OCSP request"). */
    readonly what: string,
  ) {}

  /** The whole TLV. */
  get raw(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }

  get content(): Buffer {
    return this.buf.subarray(this.contentStart, this.end);
  }

  get constructed(): boolean {
    return (this.tag & 0x20) !== 0;
  }

  /** The elements inside a constructed value, in order. */
  children(): DerElement[] {
    if (!this.constructed) this.fail(`expected a constructed value, found tag 0x${hex(this.tag)}`);
    const out: DerElement[] = [];
    let pos = this.contentStart;
    while (pos < this.end) {
      const el = readElement(this.buf, pos, this.end, this.what);
      out.push(el);
      pos = el.end;
    }
    return out;
  }

  /** A cursor over the children, for SEQUENCEs with optional members. */
  reader(): DerCursor {
    return new DerCursor(this.children(), this);
  }

  expect(tag: number, label: string): this {
    if (this.tag !== tag) this.fail(`${label}: expected tag 0x${hex(tag)}, found 0x${hex(this.tag)}`);
    return this;
  }

  fail(message: string): never {
    throw new PkiError('PKI_PARSE', `${this.what}: ${message} (at offset ${this.start})`, {
      details: { what: this.what, offset: this.start },
    });
  }
}

export class DerCursor {
  #i = 0;
  constructor(
    readonly items: DerElement[],
    readonly parent: DerElement,
  ) {}

  /** The next element, which must carry `tag` when given. */
  next(label: string, tag?: number): DerElement {
    const el = this.items[this.#i];
    if (!el) return this.parent.fail(`${label}: missing`);
    if (tag !== undefined) el.expect(tag, label);
    this.#i++;
    return el;
  }

  /** The next element if it carries `tag`, else undefined (for OPTIONAL and DEFAULT members). */
  optional(tag: number): DerElement | undefined {
    const el = this.items[this.#i];
    if (el?.tag !== tag) return undefined;
    this.#i++;
    return el;
  }

  get done(): boolean {
    return this.#i >= this.items.length;
  }

  /** Refuses trailing members the structure does not define. */
  end(label: string): void {
    const el = this.items[this.#i];
    if (el) el.fail(`${label}: unexpected trailing element with tag 0x${hex(el.tag)}`);
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function parseFail(what: string, pos: number, message: string): never {
  throw new PkiError('PKI_PARSE', `${what}: ${message} (at offset ${pos})`, {
    details: { what, offset: pos },
  });
}

/** Reads one TLV starting at `pos`, which must end by `limit`. */
export function readElement(buf: Buffer, pos: number, limit: number, what: string): DerElement {
  const start = pos;
  if (pos + 2 > limit) parseFail(what, pos, 'truncated header');
  const tag = buf[pos++]!;
  if ((tag & 0x1f) === 0x1f) parseFail(what, start, 'high tag numbers are not supported');
  let len = buf[pos++]!;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) parseFail(what, start, 'indefinite length is not DER');
    if (n > 4) parseFail(what, start, 'length too large');
    if (pos + n > limit) parseFail(what, start, 'truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos++]!;
    if (len < 0x80 || (n > 1 && buf[start + 2] === 0)) parseFail(what, start, 'length not in shortest form');
  }
  const end = pos + len;
  if (end > limit) parseFail(what, start, 'value runs past its container');
  return new DerElement(buf, tag, start, pos, end, what);
}

/** Parses exactly one element that spans the whole input. */
export function parseDer(input: Uint8Array, what: string): DerElement {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const el = readElement(buf, 0, buf.length, what);
  if (el.end !== buf.length) parseFail(what, el.end, 'trailing bytes after the value');
  return el;
}

/** Dotted form of an OBJECT IDENTIFIER (X.690 §8.19). */
export function readOid(el: DerElement, label = 'OID'): string {
  el.expect(TAG.OID, label);
  const c = el.content;
  if (c.length === 0) el.fail(`${label}: empty`);
  const arcs: bigint[] = [];
  let v = 0n;
  let fresh = true;
  for (const byte of c) {
    if (fresh && byte === 0x80) el.fail(`${label}: sub-identifier not in shortest form`);
    v = (v << 7n) | BigInt(byte & 0x7f);
    fresh = false;
    if ((byte & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
      fresh = true;
    }
  }
  if (!fresh) el.fail(`${label}: truncated sub-identifier`);
  const first = arcs.shift()!;
  const a = first < 80n ? first / 40n : 2n;
  return [a, first - a * 40n, ...arcs].join('.');
}

/** INTEGER content octets, checked for the shortest form (X.690 §8.3.2). */
export function readIntegerBytes(el: DerElement, label = 'INTEGER', tag: number = TAG.INTEGER): Buffer {
  el.expect(tag, label);
  const c = el.content;
  if (c.length === 0) el.fail(`${label}: empty`);
  if (c.length > 1 && ((c[0] === 0 && (c[1]! & 0x80) === 0) || (c[0] === 0xff && (c[1]! & 0x80) !== 0))) {
    el.fail(`${label}: not in shortest form`);
  }
  return c;
}

export function readInteger(el: DerElement, label = 'INTEGER', tag: number = TAG.INTEGER): bigint {
  const c = readIntegerBytes(el, label, tag);
  let v = 0n;
  for (const b of c) v = (v << 8n) | BigInt(b);
  if (c[0]! & 0x80) v -= 1n << BigInt(8 * c.length);
  return v;
}

/** A small non-negative INTEGER or ENUMERATED as a number (versions, reason codes, path lengths). */
export function readSmallInt(el: DerElement, label: string, tag: number = TAG.INTEGER): number {
  const v = readInteger(el, label, tag);
  if (v < 0n || v > 0xffffffffn) el.fail(`${label}: out of range`);
  return Number(v);
}

export function readBoolean(el: DerElement, label = 'BOOLEAN'): boolean {
  el.expect(TAG.BOOLEAN, label);
  const c = el.content;
  if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) el.fail(`${label}: not a DER BOOLEAN`);
  return c[0] === 0xff;
}

export function readOctetString(
  el: DerElement,
  label = 'OCTET STRING',
  tag: number = TAG.OCTET_STRING,
): Buffer {
  el.expect(tag, label);
  return el.content;
}

/** BIT STRING: the value octets and the count of unused bits in the last one (X.690 §8.6.2). */
export function readBitString(
  el: DerElement,
  label = 'BIT STRING',
  tag: number = TAG.BIT_STRING,
): { bytes: Buffer; unused: number } {
  el.expect(tag, label);
  const c = el.content;
  const unused = c[0];
  if (unused === undefined || unused > 7 || (c.length === 1 && unused !== 0))
    el.fail(`${label}: bad unused-bits octet`);
  return { bytes: c.subarray(1), unused };
}

/** Bit numbers set in a named-bit BIT STRING (KeyUsage). */
export function readNamedBits(el: DerElement, label = 'BIT STRING'): number[] {
  const { bytes, unused } = readBitString(el, label);
  const out: number[] = [];
  const total = bytes.length * 8 - unused;
  for (let i = 0; i < total; i++) if (bytes[i >> 3]! & (0x80 >> (i & 7))) out.push(i);
  return out;
}

const STRING_TAGS: ReadonlyMap<number, BufferEncoding | 'bmp'> = new Map([
  [TAG.UTF8_STRING, 'utf8'],
  [TAG.PRINTABLE_STRING, 'latin1'],
  [TAG.IA5_STRING, 'latin1'],
  [0x14, 'latin1'], // TeletexString: treated as Latin-1, as most readers do
  [0x1a, 'latin1'], // VisibleString
  [TAG.BMP_STRING, 'bmp'],
]);

/** Any of the directory string types, decoded to a JS string. */
export function readString(el: DerElement, label = 'string'): string {
  const enc = STRING_TAGS.get(el.tag);
  if (!enc) return el.fail(`${label}: unsupported string type 0x${hex(el.tag)}`);
  if (enc === 'bmp') return Buffer.from(el.content).swap16().toString('utf16le');
  return el.content.toString(enc);
}

function digits(s: string, from: number, n: number): number {
  return Number(s.slice(from, from + n));
}

/** UTCTime (RFC 5280 §4.1.2.5.1: YY < 50 → 20YY) or GeneralizedTime, both in the Zulu forms DER allows. */
export function readTime(el: DerElement, label = 'time'): Date {
  const s = el.content.toString('latin1');
  let y: number;
  let rest: string;
  if (el.tag === TAG.UTC_TIME) {
    if (!/^\d{12}Z$/.test(s)) el.fail(`${label}: UTCTime is not YYMMDDHHMMSSZ`);
    const yy = digits(s, 0, 2);
    y = yy < 50 ? 2000 + yy : 1900 + yy;
    rest = s.slice(2);
  } else if (el.tag === TAG.GENERALIZED_TIME) {
    if (!/^\d{14}(\.\d*[1-9])?Z$/.test(s)) el.fail(`${label}: GeneralizedTime is not YYYYMMDDHHMMSS[.f]Z`);
    y = digits(s, 0, 4);
    rest = s.slice(4);
  } else {
    return el.fail(`${label}: expected UTCTime or GeneralizedTime`);
  }
  const ms = Date.UTC(
    y,
    digits(rest, 0, 2) - 1,
    digits(rest, 2, 2),
    digits(rest, 4, 2),
    digits(rest, 6, 2),
    digits(rest, 8, 2),
  );
  const d = new Date(ms);
  if (
    Number.isNaN(ms) ||
    d.getUTCMonth() !== digits(rest, 0, 2) - 1 ||
    d.getUTCDate() !== digits(rest, 2, 2) ||
    d.getUTCHours() !== digits(rest, 4, 2) ||
    d.getUTCMinutes() !== digits(rest, 6, 2) ||
    d.getUTCSeconds() !== digits(rest, 8, 2)
  ) {
    el.fail(`${label}: not a calendar date`);
  }
  return d;
}
