/**
 * Address pools of a WireGuard network: at most one IPv4 and one IPv6 CIDR. Peers get one host address
 * from each pool, first free; wg-quick's `Address` carries it with the pool's prefix length, and other
 * peers route to it as a host route (/32, /128).
 */
import { ValidationError, VpnError } from '../core/errors.js';
import { cidrContains, formatIp, parseCidr, parseIp, type Cidr } from '../pki/ip.js';

export type Family = 'ipv4' | 'ipv6';

export function familyOf(bytes: Uint8Array): Family {
  return bytes.length === 4 ? 'ipv4' : 'ipv6';
}

function toBig(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function fromBig(n: bigint, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** Parses a CIDR with zero host bits, or throws INVALID_ARGUMENT naming `field`. */
export function parsePoolCidr(text: string, field: string): Cidr {
  const cidr = typeof text === 'string' ? parseCidr(text.trim()) : undefined;
  if (cidr === undefined || !text.includes('/')) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `${field}: "${String(text)}" is not a CIDR with zero host bits, e.g. 10.8.0.0/24 or fd00::/64`,
      { details: { field, value: String(text).slice(0, 64) } },
    );
  }
  return cidr;
}

/** Do two CIDRs share any address? (Same family, and the wider one contains the narrower one's start.) */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.address.length !== b.address.length) return false;
  const [wide, narrow] = a.prefix <= b.prefix ? [a, b] : [b, a];
  return cidrContains(wide, narrow.address);
}

/** Number of host addresses a pool hands out (network and broadcast skipped for IPv4 ≤ /30). */
function hostRange(pool: Cidr): { first: bigint; last: bigint } {
  const bits = pool.address.length * 8;
  const base = toBig(pool.address);
  const size = 1n << BigInt(bits - pool.prefix);
  if (familyOf(pool.address) === 'ipv4' && pool.prefix >= 31) {
    // RFC 3021: a /31 has no network or broadcast address; a /32 is one host.
    return { first: base, last: base + size - 1n };
  }
  // IPv4: skip network and broadcast. IPv6: skip the all-zero Subnet-Router anycast (RFC 4291 §2.6.1).
  const last = familyOf(pool.address) === 'ipv4' ? base + size - 2n : base + size - 1n;
  return { first: base + 1n, last };
}

/** Is `address` one a peer may hold in `pool` (inside it, not its network/broadcast/anycast address)? */
export function isAssignable(pool: Cidr, address: Uint8Array): boolean {
  if (address.length !== pool.address.length || !cidrContains(pool, address)) return false;
  const n = toBig(address);
  const { first, last } = hostRange(pool);
  return n >= first && n <= last;
}

/** The first host address of `pool` not in `used` (canonical text forms), or undefined when none is left. */
export function firstFree(pool: Cidr, used: ReadonlySet<string>): string | undefined {
  const { first, last } = hostRange(pool);
  // At most used.size + 1 steps: every step past the first skips one used address.
  for (let n = first; n <= last; n++) {
    const text = formatIp(fromBig(n, pool.address.length));
    if (!used.has(text)) return text;
  }
  return undefined;
}

/** Canonical text of a host address given as `10.8.0.5`, `10.8.0.5/32`, `fd00::5/128`; else INVALID_ARGUMENT. */
export function parseHostAddress(text: string, field: string): Buffer {
  const raw = typeof text === 'string' ? text.trim() : '';
  const slash = raw.indexOf('/');
  const bytes = parseIp(slash < 0 ? raw : raw.slice(0, slash));
  const hostPrefix = bytes === undefined ? 0 : bytes.length * 8;
  if (bytes === undefined || (slash >= 0 && raw.slice(slash + 1) !== String(hostPrefix))) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `${field}: "${String(text).slice(0, 64)}" is not a host address, e.g. 10.8.0.5 or fd00::5`,
      { details: { field } },
    );
  }
  return bytes;
}

export function hostRoute(address: string): string {
  return address.includes(':') ? `${address}/128` : `${address}/32`;
}

/**
 * Addresses for a new peer: the given ones (each inside one pool, one per pool) and the first free
 * address of every pool not covered. Throws INVALID_ARGUMENT for an address outside every pool,
 * VPN_CONFLICT for one already held, VPN_POOL_EXHAUSTED when a pool is full.
 */
export function allocateAddresses(
  network: string,
  pools: readonly string[],
  given: readonly string[],
  used: ReadonlyMap<string, string>,
): string[] {
  const parsedPools = pools.map((p, i) => parsePoolCidr(p, `cidrs[${i}]`));
  const chosen = new Map<number, string>();
  given.forEach((text, i) => {
    const field = `addresses[${i}]`;
    const bytes = parseHostAddress(text, field);
    const poolIndex = parsedPools.findIndex((pool) => isAssignable(pool, bytes));
    if (poolIndex < 0) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `${field}: ${formatIp(bytes)} is not a host address of network ${network}'s pool (${pools.join(', ')})`,
        { details: { field, network } },
      );
    }
    if (chosen.has(poolIndex)) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `${field}: a peer has one address per pool, and ${pools[poolIndex]} already got one`,
        { details: { field, network } },
      );
    }
    const canonical = formatIp(bytes);
    const holder = used.get(canonical);
    if (holder !== undefined) {
      throw new VpnError(
        'VPN_CONFLICT',
        `address ${canonical} is already held by peer ${holder} of ${network}`,
        {
          details: { field, network, address: canonical, peer: holder },
        },
      );
    }
    chosen.set(poolIndex, canonical);
  });
  const taken = new Set(used.keys());
  return parsedPools.map((pool, i) => {
    const picked = chosen.get(i) ?? firstFree(pool, taken);
    if (picked === undefined) {
      throw new VpnError(
        'VPN_POOL_EXHAUSTED',
        `network ${network} has no free address left in ${pools[i]}; remove a peer or create a network with a wider pool`,
        { details: { network, cidr: pools[i] } },
      );
    }
    return picked;
  });
}
