/**
 * GeneralName (RFC 5280 §4.2.1.6) for SANs and name-constraint subtrees. keywright writes dNSName,
 * iPAddress, rfc822Name and uniformResourceIdentifier; it reads directoryName too and keeps any other
 * form opaque so a parsed certificate loses nothing.
 */
import { ValidationError } from '../core/errors.js';
import { contextConstructed, contextPrimitive } from './der.js';
import type { DerElement } from './der-reader.js';
import {
  cidrFromConstraintBytes,
  cidrToConstraintBytes,
  formatCidr,
  formatIp,
  parseCidr,
  parseIp,
} from './ip.js';
import { formatName, parseNameElement } from './name.js';
import { readElement } from './der-reader.js';

export type GeneralName =
  | { readonly type: 'dns'; readonly value: string }
  /** An address in a SAN ("10.0.0.5", "fd00::1"); a CIDR range in name constraints ("10.0.0.0/8"). */
  | { readonly type: 'ip'; readonly value: string }
  | { readonly type: 'email'; readonly value: string }
  | { readonly type: 'uri'; readonly value: string }
  /** Read only: value is the display form, der the Name. */
  | { readonly type: 'dirName'; readonly value: string; readonly der: Buffer }
  /** Read only: otherName, x400Address, ediPartyName, registeredID, kept as encoded. */
  | { readonly type: 'other'; readonly tag: number; readonly der: Buffer };

/** Where a GeneralName sits decides what an iPAddress holds (§4.2.1.6 address vs §4.2.1.10 range). */
export type NameContext = 'san' | 'constraint';

// GeneralName CHOICE tags, all IMPLICIT (RFC 5280 Appendix A.2).
const TAG_EMAIL = 1;
const TAG_DNS = 2;
const TAG_DIRNAME = 4;
const TAG_URI = 6;
const TAG_IP = 7;

function ascii(value: string, what: string): Buffer {
  // eslint-disable-next-line no-control-regex -- the IA5 range
  if (!/^[\x00-\x7f]*$/.test(value)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `${what} "${value}" must be ASCII (IA5String); encode IDNs as A-labels`,
    );
  }
  return Buffer.from(value, 'latin1');
}

export function encodeGeneralName(name: GeneralName, context: NameContext = 'san'): Buffer {
  switch (name.type) {
    case 'dns':
      return contextPrimitive(TAG_DNS, ascii(name.value, 'DNS name'));
    case 'email':
      return contextPrimitive(TAG_EMAIL, ascii(name.value, 'email address'));
    case 'uri':
      return contextPrimitive(TAG_URI, ascii(name.value, 'URI'));
    case 'ip': {
      if (context === 'constraint') {
        const cidr = parseCidr(name.value);
        if (!cidr)
          throw new ValidationError(
            'INVALID_ARGUMENT',
            `"${name.value}" is not an IP range such as 10.0.0.0/8`,
          );
        return contextPrimitive(TAG_IP, cidrToConstraintBytes(cidr));
      }
      const bytes = parseIp(name.value);
      if (!bytes)
        throw new ValidationError('INVALID_ARGUMENT', `"${name.value}" is not an IPv4 or IPv6 address`);
      return contextPrimitive(TAG_IP, bytes);
    }
    case 'dirName':
      return contextConstructed(TAG_DIRNAME, [name.der]);
    case 'other':
      return name.der;
  }
}

export function decodeGeneralName(el: DerElement, context: NameContext = 'san'): GeneralName {
  const n = el.tag & 0x1f;
  const cls = el.tag & 0xc0;
  if (cls !== 0x80) el.fail(`GeneralName: expected a context tag, found 0x${el.tag.toString(16)}`);
  const primitive = (el.tag & 0x20) === 0;
  switch (n) {
    case TAG_EMAIL:
    case TAG_DNS:
    case TAG_URI: {
      if (!primitive) el.fail('GeneralName: string forms must be primitive');
      const value = el.content.toString('latin1');
      return { type: n === TAG_DNS ? 'dns' : n === TAG_EMAIL ? 'email' : 'uri', value };
    }
    case TAG_IP: {
      if (!primitive) el.fail('GeneralName: iPAddress must be primitive');
      const c = el.content;
      if (context === 'constraint') {
        const cidr = cidrFromConstraintBytes(c);
        if (!cidr) el.fail('iPAddress constraint: expected 8 or 32 octets with a contiguous mask');
        return { type: 'ip', value: formatCidr(cidr) };
      }
      if (c.length !== 4 && c.length !== 16) el.fail(`iPAddress: expected 4 or 16 octets, found ${c.length}`);
      return { type: 'ip', value: formatIp(c) };
    }
    case TAG_DIRNAME: {
      if (primitive) el.fail('GeneralName: directoryName must be constructed');
      const inner = readElement(el.buf, el.contentStart, el.end, el.what);
      if (inner.end !== el.end) el.fail('directoryName: trailing bytes');
      const parsed = parseNameElement(inner);
      return { type: 'dirName', value: formatName(parsed), der: parsed.der };
    }
    default:
      return { type: 'other', tag: el.tag, der: el.raw };
  }
}

/** "DNS:web.internal", "IP:10.0.0.5", as openssl prints them; used in messages and audit details. */
export function formatGeneralName(name: GeneralName): string {
  switch (name.type) {
    case 'dns':
      return `DNS:${name.value}`;
    case 'ip':
      return `IP:${name.value}`;
    case 'email':
      return `email:${name.value}`;
    case 'uri':
      return `URI:${name.value}`;
    case 'dirName':
      return `DirName:${name.value}`;
    case 'other':
      return `other:0x${name.tag.toString(16)}`;
  }
}

/**
 * A SAN as users write it: `DNS:web.internal`, `IP:10.0.0.5`, `email:ops@example.com`, `URI:spiffe://…`,
 * or bare, in which case an IP address is an IP, `x@y` an email, `scheme://…` a URI and anything else DNS.
 */
export function parseSanText(text: string): GeneralName {
  const m = /^(dns|ip|email|uri):(.*)$/i.exec(text);
  if (m) {
    const kind = m[1]!.toLowerCase();
    const value = m[2]!;
    return {
      type: kind === 'dns' ? 'dns' : kind === 'ip' ? 'ip' : kind === 'email' ? 'email' : 'uri',
      value,
    };
  }
  if (parseIp(text)) return { type: 'ip', value: text };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return { type: 'uri', value: text };
  if (text.includes('@')) return { type: 'email', value: text };
  return { type: 'dns', value: text };
}
