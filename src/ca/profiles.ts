/**
 * Issuance profiles: what a CA is willing to certify. The policy check vets every requested name, the
 * key and the lifetime against a profile and fails with the SAN and the rule that refused it. Only names
 * ever come from a request; key usages, EKUs and everything else come from the profile.
 */
import type { KeyObject } from 'node:crypto';
import { CaError } from '../core/errors.js';
import type { KeyInfo } from '../pki/algorithms.js';
import { describeKey } from '../pki/algorithms.js';
import type { ExtKeyUsage, KeyUsage } from '../pki/extensions.js';
import type { GeneralName } from '../pki/general-name.js';
import { formatGeneralName, parseSanText } from '../pki/general-name.js';
import {
  canonicalIp,
  dnsMatchesPattern,
  dnsNameProblem,
  emailMatchesPattern,
  emailProblem,
  ipInRanges,
  isWildcard,
  uriMatchesPattern,
  uriProblem,
} from './names.js';

const DAY = 86_400_000;

export interface ProfileNames {
  /** `**` any name, `*.zone` one label under zone, `**.zone` any depth under zone, else exact. */
  readonly dns: readonly string[];
  /** CIDR ranges ("10.0.0.0/8", "fd00::/8"); a bare address is a /32 or /128. */
  readonly ip: readonly string[];
  /** `*` any, `*@<dns pattern>`, or an exact address. */
  readonly email: readonly string[];
  /** `*` any, a prefix ending in `*`, or an exact URI. */
  readonly uri: readonly string[];
}

export interface Profile {
  readonly name: string;
  readonly description: string;
  readonly names: ProfileNames;
  readonly allowWildcards: boolean;
  /** At most this many SANs in one certificate. */
  readonly maxNames: number;
  readonly keyTypes: readonly ('ec' | 'rsa' | 'ed25519')[];
  readonly ecCurves: readonly ('P-256' | 'P-384')[];
  readonly minRsaBits: number;
  readonly defaultLifetimeMs: number;
  readonly maxLifetimeMs: number;
  /** Key usages wanted; those that do not fit the key type are dropped. Default: by key type. */
  readonly keyUsages?: readonly KeyUsage[];
  readonly extKeyUsages: readonly ExtKeyUsage[];
}

const ANY_NAME: ProfileNames = { dns: ['**'], ip: ['0.0.0.0/0', '::/0'], email: [], uri: [] };
const COMMON = {
  allowWildcards: false,
  maxNames: 100,
  keyTypes: ['ec', 'rsa', 'ed25519'],
  ecCurves: ['P-256', 'P-384'],
  minRsaBits: 2048,
  defaultLifetimeMs: 90 * DAY,
  maxLifetimeMs: 397 * DAY,
} as const;

/** Built-in profiles every CA has; configuration may override or add more. */
export const BUILTIN_PROFILES: Readonly<Record<'server' | 'client' | 'server-client', Profile>> = {
  server: {
    ...COMMON,
    name: 'server',
    description: 'TLS servers',
    names: ANY_NAME,
    extKeyUsages: ['serverAuth'],
  },
  client: {
    ...COMMON,
    name: 'client',
    description: 'TLS clients (mTLS), identified by DNS, IP, email or URI (SPIFFE) names',
    names: { ...ANY_NAME, email: ['*'], uri: ['*'] },
    extKeyUsages: ['clientAuth'],
  },
  'server-client': {
    ...COMMON,
    name: 'server-client',
    description: 'services that are both TLS server and client',
    names: { ...ANY_NAME, email: ['*'], uri: ['*'] },
    extKeyUsages: ['serverAuth', 'clientAuth'],
  },
};

export type PolicyRule =
  | 'san_required'
  | 'san_syntax'
  | 'too_many_names'
  | 'dns_not_allowed'
  | 'wildcard_not_allowed'
  | 'ip_not_allowed'
  | 'email_not_allowed'
  | 'uri_not_allowed'
  | 'name_type_not_allowed'
  | 'key_type_not_allowed'
  | 'ec_curve_not_allowed'
  | 'rsa_key_too_small'
  | 'lifetime_invalid'
  | 'lifetime_too_long';

function violation(
  profile: Profile,
  rule: PolicyRule,
  message: string,
  extra: Record<string, unknown> = {},
): CaError {
  return new CaError('POLICY_VIOLATION', `profile "${profile.name}": ${message} (rule ${rule})`, {
    details: { profile: profile.name, rule, ...extra },
  });
}

/** Lowercases DNS names and email domains and canonicalises IPs, so one name has one spelling. */
export function normaliseName(name: GeneralName): GeneralName {
  switch (name.type) {
    case 'dns':
      return { type: 'dns', value: name.value.toLowerCase() };
    case 'ip':
      return { type: 'ip', value: canonicalIp(name.value) ?? name.value };
    case 'email': {
      const at = name.value.lastIndexOf('@');
      return at < 0
        ? name
        : { type: 'email', value: name.value.slice(0, at + 1) + name.value.slice(at + 1).toLowerCase() };
    }
    case 'uri':
    case 'dirName':
    case 'other':
      return name;
  }
}

/** The rule a single (normalised) name breaks under the profile, with a reason, or undefined. */
export function nameViolation(
  profile: Profile,
  name: GeneralName,
): { rule: PolicyRule; reason: string } | undefined {
  switch (name.type) {
    case 'dns': {
      const problem = dnsNameProblem(name.value, true);
      if (problem) return { rule: 'san_syntax', reason: `the DNS name ${problem}` };
      if (isWildcard(name.value) && !profile.allowWildcards)
        return { rule: 'wildcard_not_allowed', reason: 'the profile allows no wildcards' };
      if (!profile.names.dns.some((p) => dnsMatchesPattern(name.value, p))) {
        return {
          rule: 'dns_not_allowed',
          reason: `no DNS pattern matches (allowed: ${list(profile.names.dns)})`,
        };
      }
      return undefined;
    }
    case 'ip':
      if (!canonicalIp(name.value)) return { rule: 'san_syntax', reason: 'not an IPv4 or IPv6 address' };
      if (!ipInRanges(name.value, profile.names.ip))
        return { rule: 'ip_not_allowed', reason: `outside the allowed ranges (${list(profile.names.ip)})` };
      return undefined;
    case 'email': {
      const problem = emailProblem(name.value);
      if (problem) return { rule: 'san_syntax', reason: `the address ${problem}` };
      if (!profile.names.email.some((p) => emailMatchesPattern(name.value, p))) {
        return {
          rule: 'email_not_allowed',
          reason: `no email pattern matches (allowed: ${list(profile.names.email)})`,
        };
      }
      return undefined;
    }
    case 'uri': {
      const problem = uriProblem(name.value);
      if (problem) return { rule: 'san_syntax', reason: `the URI ${problem}` };
      if (!profile.names.uri.some((p) => uriMatchesPattern(name.value, p))) {
        return {
          rule: 'uri_not_allowed',
          reason: `no URI pattern matches (allowed: ${list(profile.names.uri)})`,
        };
      }
      return undefined;
    }
    case 'dirName':
    case 'other':
      return { rule: 'name_type_not_allowed', reason: 'only DNS, IP, email and URI names are certified' };
  }
}

function list(items: readonly string[]): string {
  return items.length === 0 ? 'none' : items.join(', ');
}

export interface PolicyRequest {
  /** Requested SANs, as GeneralNames or as text (`DNS:x`, `IP:x`, or bare). */
  readonly sans: readonly (string | GeneralName)[];
  readonly publicKey: KeyObject;
  /** Requested lifetime; the profile's default when absent. */
  readonly lifetimeMs?: number;
}

export interface PolicyResult {
  /** The names to certify: normalised, de-duplicated, in request order. */
  readonly names: readonly GeneralName[];
  readonly lifetimeMs: number;
  readonly key: KeyInfo;
  /** Names left out in `drop` mode, each with the rule that refused it. */
  readonly dropped: readonly { readonly san: string; readonly rule: PolicyRule }[];
}

export interface PolicyOptions {
  /** `reject` (default) refuses the whole request on the first disallowed name; `drop` leaves such names out. */
  readonly onDisallowed?: 'reject' | 'drop';
}

/** Checks the key against the profile's key rules. */
export function checkKey(profile: Profile, publicKey: KeyObject): KeyInfo {
  const key = describeKey(publicKey);
  if (key.family !== 'ec' && key.family !== 'rsa' && key.family !== 'ed25519') {
    throw violation(profile, 'key_type_not_allowed', `a ${key.label} key cannot be certified`, {
      key: key.label,
    });
  }
  if (!profile.keyTypes.includes(key.family)) {
    throw violation(
      profile,
      'key_type_not_allowed',
      `${key.family} keys are not allowed (allowed: ${list(profile.keyTypes)})`,
      {
        key: key.label,
      },
    );
  }
  if (key.family === 'ec' && !(profile.ecCurves as readonly string[]).includes(key.curve ?? '')) {
    throw violation(
      profile,
      'ec_curve_not_allowed',
      `curve ${key.curve} is not allowed (allowed: ${list(profile.ecCurves)})`,
      {
        key: key.label,
      },
    );
  }
  if (key.family === 'rsa' && (key.bits ?? 0) < profile.minRsaBits) {
    throw violation(
      profile,
      'rsa_key_too_small',
      `an RSA key of ${key.bits} bits is below the minimum of ${profile.minRsaBits}`,
      {
        key: key.label,
      },
    );
  }
  return key;
}

/** Vets a request against a profile: names, key, lifetime. Throws POLICY_VIOLATION naming the SAN and rule. */
export function applyProfile(
  profile: Profile,
  request: PolicyRequest,
  options: PolicyOptions = {},
): PolicyResult {
  const key = checkKey(profile, request.publicKey);

  const lifetimeMs = request.lifetimeMs ?? profile.defaultLifetimeMs;
  if (!Number.isFinite(lifetimeMs) || lifetimeMs < 1000) {
    throw violation(profile, 'lifetime_invalid', 'the lifetime must be at least one second', { lifetimeMs });
  }
  if (lifetimeMs > profile.maxLifetimeMs) {
    throw violation(
      profile,
      'lifetime_too_long',
      `a lifetime of ${lifetimeMs} ms is over the maximum of ${profile.maxLifetimeMs} ms`,
      {
        lifetimeMs,
        maxLifetimeMs: profile.maxLifetimeMs,
      },
    );
  }

  const names: GeneralName[] = [];
  const seen = new Set<string>();
  const dropped: { san: string; rule: PolicyRule }[] = [];
  for (const raw of request.sans) {
    const name = normaliseName(typeof raw === 'string' ? parseSanText(raw) : raw);
    const text = formatGeneralName(name);
    if (seen.has(text)) continue;
    seen.add(text);
    const bad = nameViolation(profile, name);
    if (bad) {
      if (options.onDisallowed === 'drop') {
        dropped.push({ san: text, rule: bad.rule });
        continue;
      }
      throw violation(profile, bad.rule, `${text} is refused: ${bad.reason}`, { san: text });
    }
    names.push(name);
  }
  if (names.length === 0) {
    throw violation(profile, 'san_required', 'at least one allowed subject alternative name is needed', {
      dropped: dropped.map((d) => d.san),
    });
  }
  if (names.length > profile.maxNames) {
    throw violation(
      profile,
      'too_many_names',
      `${names.length} names are over the limit of ${profile.maxNames}`,
      { count: names.length },
    );
  }
  return { names, lifetimeMs, key, dropped };
}
