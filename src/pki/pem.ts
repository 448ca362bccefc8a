/**
 * PEM per RFC 7468: strict encapsulation boundaries (matching BEGIN/END labels, one label expected by
 * the caller), base64 body in the standard alphabet, 64-character lines on output. Text outside the
 * boundaries is ignored, as §2 asks of parsers (openssl writes "Bag Attributes" lines there).
 */
import { PkiError } from '../core/errors.js';

export type PemLabel =
  | 'CERTIFICATE'
  | 'CERTIFICATE REQUEST'
  | 'X509 CRL'
  | 'PRIVATE KEY'
  | 'ENCRYPTED PRIVATE KEY'
  | 'PUBLIC KEY'
  | (string & {});

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

export function encodePem(label: PemLabel, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + '\n';
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]*)-----([\s\S]*?)-----END ([A-Z0-9 ]*)-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

function fail(what: string, message: string): never {
  throw new PkiError('PKI_PARSE', `${what}: ${message}`, { details: { what } });
}

/** Every PEM block in the text, in order. Throws when a block is malformed or there is none. */
export function decodePemAll(text: string, what = 'PEM input'): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const [, begin, body, end] = m;
    if (begin !== end) fail(what, `BEGIN ${begin} does not match END ${end}`);
    // RFC 7468 §3: lax readers tolerate whitespace anywhere in the body; nothing else.
    const compact = body!.replace(/[ \t\r\n]/g, '');
    if (body!.includes(':'))
      fail(what, `the ${begin} block has RFC 1421 headers (legacy encrypted PEM is not supported)`);
    if (!BASE64_BODY.test(compact) || compact.length % 4 !== 0) {
      fail(what, `the ${begin} block is not valid base64`);
    }
    const der = Buffer.from(compact, 'base64');
    if (der.length === 0) fail(what, `the ${begin} block is empty`);
    out.push({ label: begin!, der });
  }
  if (out.length === 0) {
    if (text.includes('-----BEGIN')) fail(what, 'a PEM block has no matching END line');
    fail(what, 'no PEM block found');
  }
  return out;
}

/** The single block with one of the accepted labels; any other label, or more than one block, is an error. */
export function decodePem(text: string, labels: PemLabel | readonly PemLabel[], what = 'PEM input'): Buffer {
  const accepted: readonly string[] = typeof labels === 'string' ? [labels] : labels;
  const blocks = decodePemAll(text, what);
  if (blocks.length !== 1) fail(what, `expected one ${accepted[0]} block, found ${blocks.length}`);
  const block = blocks[0]!;
  if (!accepted.includes(block.label))
    fail(what, `expected a ${accepted.join(' or ')} block, found ${block.label}`);
  return block.der;
}

/** Every block of the given label (a chain of certificates); other labels are an error. */
export function decodePemBlocks(text: string, label: PemLabel, what = 'PEM input'): Buffer[] {
  return decodePemAll(text, what).map((b) => {
    if (b.label !== label) fail(what, `expected ${label} blocks only, found ${b.label}`);
    return b.der;
  });
}

/**
 * DER as given, or decoded from PEM text. DER is recognised by its first octet (a SEQUENCE), so a
 * caller can accept either form from a file or a request body.
 */
export function derOrPem(
  input: string | Uint8Array,
  labels: PemLabel | readonly PemLabel[],
  what: string,
): Buffer {
  if (typeof input !== 'string') {
    const buf = Buffer.isBuffer(input)
      ? input
      : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (buf[0] === 0x30) return buf;
    return decodePem(buf.toString('latin1'), labels, what);
  }
  return decodePem(input, labels, what);
}
