/**
 * IP addresses as the octets X.509 carries (RFC 5280 §4.2.1.6: 4 octets for IPv4, 16 for IPv6) and CIDR
 * ranges as address plus mask (§4.2.1.10). Text output is RFC 5952 canonical for IPv6.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The octets of a textual IPv4 or IPv6 address, or undefined when it is not one (no zone ids). */
export function parseIp(text: string): Buffer | undefined {
  // cheap rejection first: most callers ask about DNS names, and node's validators are regex-heavy
  const colon = text.includes(':');
  if (!colon && !/^[0-9.]+$/.test(text)) return undefined;
  if (!colon && isIPv4(text)) {
    const parts = text.split('.');
    // node accepts only dotted-quad decimal here; leading zeros would be ambiguous (octal), refuse them
    if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
    return Buffer.from(parts.map(Number));
  }
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let head = text;
  let v4tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = parseIp(text.slice(lastColon + 1));
    if (!v4 || v4.length !== 4) return undefined;
    v4tail = [...v4];
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const [left = '', right] = head.split('::');
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const missing = 8 - l.length - r.length;
  if ((right === undefined && missing !== 0) || missing < 0) return undefined;
  const all = [...l, ...new Array<number>(missing).fill(0), ...r];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (v4tail.length === 4) out.set(v4tail, 12);
  return out;
}

/** Text form of 4 or 16 octets; RFC 5952 §4 for IPv6 (lowercase, longest zero run compressed). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) return Buffer.from(bytes).toString('hex');
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export interface Cidr {
  readonly address: Buffer;
  readonly prefix: number;
}

/** "10.0.0.0/8", "fd00::/8", or a bare address (a /32 or /128). Host bits must be zero. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const address = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!address) return undefined;
  const max = address.length * 8;
  if (slash < 0) return { address, prefix: max };
  const p = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) return undefined;
  const cidr = { address, prefix: Number(p) };
  return hostBitsZero(cidr) ? cidr : undefined;
}

function hostBitsZero({ address, prefix }: Cidr): boolean {
  for (let bit = prefix; bit < address.length * 8; bit++)
    if (address[bit >> 3]! & (0x80 >> (bit & 7))) return false;
  return true;
}

function maskedEquals(a: Uint8Array, b: Uint8Array, prefix: number): boolean {
  const full = prefix >> 3;
  for (let i = 0; i < full; i++) if (a[i] !== b[i]) return false;
  const rem = prefix & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((a[full]! ^ b[full]!) & mask) === 0;
}

/** Whether the address lies in the range; an IPv4 address is never inside an IPv6 range or the reverse. */
export function cidrContains(cidr: Cidr, address: Uint8Array): boolean {
  return cidr.address.length === address.length && maskedEquals(cidr.address, address, cidr.prefix);
}

/** The 8- or 32-octet address-and-mask form of a range in name constraints (RFC 5280 §4.2.1.10). */
export function cidrToConstraintBytes(cidr: Cidr): Buffer {
  const n = cidr.address.length;
  const mask = Buffer.alloc(n);
  for (let bit = 0; bit < cidr.prefix; bit++) mask[bit >> 3]! |= 0x80 >> (bit & 7);
  return Buffer.concat([cidr.address, mask]);
}

/** The inverse of cidrToConstraintBytes; undefined when the mask is not contiguous. */
export function cidrFromConstraintBytes(bytes: Uint8Array): Cidr | undefined {
  if (bytes.length !== 8 && bytes.length !== 32) return undefined;
  const n = bytes.length / 2;
  const mask = bytes.subarray(n);
  let prefix = 0;
  while (prefix < n * 8 && mask[prefix >> 3]! & (0x80 >> (prefix & 7))) prefix++;
  for (let bit = prefix; bit < n * 8; bit++) if (mask[bit >> 3]! & (0x80 >> (bit & 7))) return undefined;
  const address = Buffer.from(bytes.subarray(0, n));
  for (let i = 0; i < n; i++) address[i]! &= mask[i]!;
  return { address, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.address)}/${cidr.prefix}`;
}
