/**
 * Name syntax and matching shared by profiles (what a CA is willing to put in a certificate) and lint
 * (what RFC 5280 and the issuer's name constraints allow). Two different match languages live here:
 * profile patterns (`*.svc.internal`, `**.internal`) and RFC 5280 §4.2.1.10 subtrees.
 */
import type { GeneralName } from '../pki/general-name.js';
import type { Cidr } from '../pki/ip.js';
import { cidrContains, formatIp, parseCidr, parseIp } from '../pki/ip.js';

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * Preferred name syntax (RFC 1034 §3.5, RFC 5280 §4.2.1.6): letters, digits, hyphens; labels 1–63
 * octets, no leading or trailing hyphen, at most 253 octets, no trailing dot. A wildcard is allowed
 * only as the whole leftmost label when `wildcard` is set. Underscores are refused (CA/B BR 7.1.4.2).
 */
export function dnsNameProblem(name: string, wildcard: boolean): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > 253) return 'is longer than 253 characters';
  if (name.endsWith('.')) return 'ends with a dot';
  const labels = name.split('.');
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label === '*' && i === 0 && labels.length > 1) {
      if (!wildcard) return 'is a wildcard';
      continue;
    }
    if (label.includes('*')) return 'has a wildcard that is not the whole leftmost label';
    if (label.length === 0) return 'has an empty label';
    if (label.length > 63) return `has a label longer than 63 characters`;
    if (!LABEL.test(label)) return `has a label "${label}" that is not letters, digits and inner hyphens`;
  }
  return undefined;
}

export function isWildcard(name: string): boolean {
  return name.startsWith('*.');
}

/** local@domain with a syntactically valid domain; the local part as RFC 5321 dot-atom. */
export function emailProblem(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return 'is not local@domain';
  const local = address.slice(0, at);
  if (
    local.length > 64 ||
    !/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/.test(local)
  ) {
    return 'has a local part that is not a dot-atom';
  }
  const domainProblem = dnsNameProblem(address.slice(at + 1), false);
  return domainProblem ? `has a domain that ${domainProblem}` : undefined;
}

/** An absolute URI with a scheme and no spaces (RFC 3986); keywright does not accept relative ones. */
export function uriProblem(uri: string): string | undefined {
  // eslint-disable-next-line no-control-regex -- control characters and spaces are not URI characters
  if (/[\s\x00-\x1f\x7f]/.test(uri)) return 'contains whitespace or control characters';
  if (!/^[a-z][a-z0-9+.-]*:/i.test(uri)) return 'has no scheme';
  return URL.canParse(uri) ? undefined : 'is not a valid URI';
}

/** The host a URI names (for name constraints), lowercased, without brackets for IPv6. */
export function uriHost(uri: string): string | undefined {
  try {
    const host = new URL(uri).hostname.toLowerCase();
    return host.startsWith('[') ? host.slice(1, -1) : host || undefined;
  } catch {
    return undefined;
  }
}

function endsWithLabels(name: string, suffix: string): boolean {
  return name.length > suffix.length && name.endsWith('.' + suffix);
}

// ---- profile patterns ----------------------------------------------------------------------------

/**
 * Profile DNS patterns: `**` any name; `*.zone` exactly one label under zone; `**.zone` one or more
 * labels under zone; anything else an exact name. A wildcard name's `*` counts as one label, so
 * `*.svc.internal` is matched by the pattern `*.svc.internal` (wildcards still need the profile's allowance).
 */
export function dnsMatchesPattern(name: string, pattern: string): boolean {
  const n = name.toLowerCase();
  const p = pattern.toLowerCase();
  if (p === '**') return true;
  if (p.startsWith('**.')) return endsWithLabels(n, p.slice(3));
  if (p.startsWith('*.')) {
    const zone = p.slice(2);
    return endsWithLabels(n, zone) && !n.slice(0, n.length - zone.length - 1).includes('.');
  }
  return n === p;
}

/** Profile email patterns: `*` any; `*@<dns pattern>` any local part; else an exact address. */
export function emailMatchesPattern(address: string, pattern: string): boolean {
  if (pattern === '*') return true;
  const at = address.lastIndexOf('@');
  const pAt = pattern.lastIndexOf('@');
  if (at < 0 || pAt < 0) return false;
  const [local, domain] = [address.slice(0, at), address.slice(at + 1)];
  const [pLocal, pDomain] = [pattern.slice(0, pAt), pattern.slice(pAt + 1)];
  return (pLocal === '*' || pLocal === local) && dnsMatchesPattern(domain, pDomain);
}

/** Profile URI patterns: `*` any; a trailing `*` matches by prefix (`spiffe://cluster.local/ns/*`); else exact. */
export function uriMatchesPattern(uri: string, pattern: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return uri.startsWith(pattern.slice(0, -1));
  return uri === pattern;
}

const parsedRanges = new WeakMap<readonly string[], readonly Cidr[]>();

export function ipInRanges(address: string, ranges: readonly string[]): boolean {
  const bytes = parseIp(address);
  if (!bytes) return false;
  let cidrs = parsedRanges.get(ranges);
  if (!cidrs) {
    cidrs = ranges.map(parseCidr).filter((c): c is Cidr => c !== undefined);
    parsedRanges.set(ranges, cidrs);
  }
  return cidrs.some((c) => cidrContains(c, bytes));
}

/** Canonical text of an IP address (RFC 5952 for IPv6), or undefined. */
export function canonicalIp(text: string): string | undefined {
  const bytes = parseIp(text);
  return bytes ? formatIp(bytes) : undefined;
}

// ---- RFC 5280 §4.2.1.10 name constraints --------------------------------------------------------

/** dNSName: the constraint plus zero or more labels on the left; a leading dot means subdomains only (as OpenSSL reads it). */
export function dnsWithinSubtree(name: string, base: string): boolean {
  const n = name.toLowerCase();
  const b = base.toLowerCase();
  if (b === '') return true;
  if (b.startsWith('.')) return n.endsWith(b) && n.length > b.length;
  return n === b || endsWithLabels(n, b);
}

/**
 * Whether a wildcard name could stand for any name inside an excluded subtree: `*.example.com` could
 * be `x.example.com`, so it collides with an exclusion of `x.example.com` as well as of `example.com`.
 */
function wildcardTouchesSubtree(name: string, base: string): boolean {
  const parent = name.slice(2).toLowerCase();
  const b = base.toLowerCase().replace(/^\./, '');
  return (
    dnsWithinSubtree(name, base) ||
    (endsWithLabels(b, parent) && !b.slice(0, b.length - parent.length - 1).includes('.'))
  );
}

/** rfc822Name: a full mailbox, all mailboxes on one host, or (leading dot) on any subdomain. */
export function emailWithinSubtree(address: string, base: string): boolean {
  const at = address.lastIndexOf('@');
  const domain = address.slice(at + 1).toLowerCase();
  if (base.includes('@'))
    return (
      address.slice(0, at) === base.slice(0, base.lastIndexOf('@')) &&
      domain === base.slice(base.lastIndexOf('@') + 1).toLowerCase()
    );
  if (base.startsWith('.')) return domain.endsWith(base.toLowerCase());
  return domain === base.toLowerCase();
}

/** uniformResourceIdentifier: the URI's host equals the base, or (leading dot) is a subdomain of it. */
export function uriWithinSubtree(uri: string, base: string): boolean {
  const host = uriHost(uri);
  if (host === undefined) return false;
  const b = base.toLowerCase();
  if (b.startsWith('.')) return host.endsWith(b);
  return host === b;
}

export function ipWithinSubtree(address: string, base: string): boolean {
  const bytes = parseIp(address);
  const cidr = parseCidr(base);
  return bytes !== undefined && cidr !== undefined && cidrContains(cidr, bytes);
}

export interface ConstraintSet {
  readonly permitted: readonly GeneralName[];
  readonly excluded: readonly GeneralName[];
}

/**
 * Why a name breaks the constraints, or undefined when it is within them. §4.2.1.10: a name must lie
 * in some permitted subtree of its own type (when there is any subtree of that type) and in no excluded one.
 */
export function constraintViolation(name: GeneralName, constraints: ConstraintSet): string | undefined {
  if (name.type === 'dirName' || name.type === 'other') {
    const constrained = [...constraints.permitted, ...constraints.excluded].some((b) => b.type === name.type);
    return constrained ? `keywright cannot check ${name.type} names against name constraints` : undefined;
  }
  const within = (base: GeneralName, excluded: boolean): boolean => {
    if (base.type !== name.type) return false;
    switch (name.type) {
      case 'dns':
        return excluded && isWildcard(name.value)
          ? wildcardTouchesSubtree(name.value, base.value)
          : dnsWithinSubtree(name.value, base.value);
      case 'email':
        return emailWithinSubtree(name.value, base.value);
      case 'uri':
        return uriWithinSubtree(name.value, base.value);
      case 'ip':
        return ipWithinSubtree(name.value, base.value);
    }
  };
  const hit = constraints.excluded.find((b) => within(b, true));
  if (hit) return `it is inside the excluded subtree ${hit.type}:${hit.type === 'other' ? '?' : hit.value}`;
  const sameType = constraints.permitted.filter((b) => b.type === name.type);
  if (sameType.length > 0 && !sameType.some((b) => within(b, false))) {
    return `it is outside every permitted ${name.type} subtree (${sameType.map((b) => (b.type === 'other' ? '?' : b.value)).join(', ')})`;
  }
  return undefined;
}
