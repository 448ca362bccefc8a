/**
 * Checks of what users give for networks and peers. Each failure is INVALID_ARGUMENT naming the field,
 * thrown before anything is read or written, so bad input never changes the store.
 */
import { ValidationError, VpnError } from '../core/errors.js';
import { MS } from '../core/duration.js';
import { NAME_PATTERN } from '../core/ids.js';
import { formatCidr, parseIp } from '../pki/ip.js';
import { cidrsOverlap, familyOf, parsePoolCidr } from './addresses.js';
import type { VpnNetworkRecord, VpnPeerRecord } from './model.js';

function invalid(field: string, message: string): ValidationError {
  return new ValidationError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });
}

export function checkName(value: string, field: string): string {
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
    throw invalid(
      field,
      `"${String(value).slice(0, 64)}" is not a valid name: lowercase letters, digits, . _ -, starting and ending with a letter or digit, at most 64 characters`,
    );
  }
  return value;
}

/** WireGuard's wire form: base64 (with padding) of exactly 32 bytes. */
const WG_KEY_BASE64 = /^[A-Za-z0-9+/]{43}=$/;

/**
 * A WireGuard public key as submitted for a client-side key: exactly 32 bytes in canonical base64.
 * The all-zero key is refused: it is what an unset key looks like, never a real public key.
 */
export function checkPublicKey(value: string, field: string): string {
  const text = typeof value === 'string' ? value.trim() : '';
  const bytes = WG_KEY_BASE64.test(text) ? Buffer.from(text, 'base64') : undefined;
  if (bytes === undefined || bytes.length !== 32 || bytes.toString('base64') !== text) {
    throw invalid(
      field,
      'not a WireGuard public key: expected 44 characters of base64 encoding exactly 32 bytes (the output of `wg pubkey`)',
    );
  }
  if (bytes.every((b) => b === 0)) throw invalid(field, 'the all-zero key is not a public key');
  return text;
}

export function checkPort(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw invalid(field, `${String(value)} is not a UDP port (1-65535)`);
  }
  return value;
}

/** PersistentKeepalive seconds: 1-65535, or 0 for off (wg(8)). */
export function checkKeepalive(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    throw invalid(field, `${String(value)} is not a keepalive interval in seconds (0-65535, 0 = off)`);
  }
  return value;
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** `host:port` or `[ipv6]:port`, as wg-quick's Endpoint takes it. */
export function checkEndpoint(value: string, field: string): string {
  const text = typeof value === 'string' ? value.trim() : '';
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const v6 = m?.[1];
  const host = m?.[2];
  const port = m === null ? NaN : Number(m[3]);
  const hostOk =
    v6 !== undefined
      ? parseIp(v6)?.length === 16
      : host !== undefined && (parseIp(host) !== undefined || HOSTNAME.test(host));
  if (!hostOk || !(port >= 1 && port <= 65535)) {
    throw invalid(
      field,
      `"${String(value).slice(0, 80)}" is not an endpoint: use host:port or [ipv6]:port, e.g. vpn.example.org:51820`,
    );
  }
  return text;
}

/** wg-quick's DNS: a resolver address or a search domain. */
export function checkDns(value: string, field: string): string {
  const text = typeof value === 'string' ? value.trim() : '';
  if (parseIp(text) === undefined && !HOSTNAME.test(text)) {
    throw invalid(field, `"${String(value).slice(0, 80)}" is neither an IP address nor a search domain`);
  }
  return text;
}

/** An extra AllowedIPs entry, canonical. */
export function checkAllowedIp(value: string, field: string): string {
  return formatCidr(parsePoolCidr(value, field));
}

export function checkPools(cidrs: readonly string[] | undefined): string[] {
  if (cidrs === undefined || cidrs.length === 0 || cidrs.length > 2) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      'cidrs: give one IPv4 and/or one IPv6 pool, e.g. 10.8.0.0/24',
      {
        details: { field: 'cidrs' },
      },
    );
  }
  const parsed = cidrs.map((c, i) => parsePoolCidr(c, `cidrs[${i}]`));
  if (parsed.length === 2 && familyOf(parsed[0]!.address) === familyOf(parsed[1]!.address)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      'cidrs[1]: a network has at most one IPv4 and one IPv6 pool',
      {
        details: { field: 'cidrs[1]' },
      },
    );
  }
  return parsed.map((p) => formatCidr(p));
}

export function checkInterval(ms: number | undefined, field: string): number | undefined {
  if (ms === undefined) return undefined;
  if (!Number.isSafeInteger(ms) || ms < MS.m) {
    throw new ValidationError('INVALID_ARGUMENT', `${field}: a rotation interval is at least 1m`, {
      details: { field },
    });
  }
  return ms;
}

/** Extra routes may not shadow the pool or another peer's extra routes: wg would route them to one peer only. */
export function checkExtraRoutes(
  net: VpnNetworkRecord,
  peers: readonly VpnPeerRecord[],
  allowedIps: readonly string[],
): void {
  allowedIps.forEach((cidr, i) => {
    const mine = parsePoolCidr(cidr, `allowedIps[${i}]`);
    const pool = net.cidrs.find((c) => cidrsOverlap(parsePoolCidr(c, 'cidrs'), mine));
    if (pool !== undefined) {
      throw new VpnError(
        'VPN_CONFLICT',
        `allowedIps[${i}]: ${cidr} overlaps the pool ${pool} of network ${net.id}; extra allowed IPs are networks behind the peer`,
        { details: { field: `allowedIps[${i}]`, network: net.id, cidr: pool } },
      );
    }
    for (const other of peers) {
      const hit = other.allowedIps.find((c) => cidrsOverlap(parsePoolCidr(c, 'allowedIps'), mine));
      if (hit !== undefined) {
        throw new VpnError(
          'VPN_CONFLICT',
          `allowedIps[${i}]: ${cidr} overlaps ${hit}, routed to peer ${other.name} of ${net.id}`,
          { details: { field: `allowedIps[${i}]`, network: net.id, peer: other.name, cidr: hit } },
        );
      }
    }
  });
}
