/**
 * Profiles from configuration (`ca.profiles`), layered over the built-ins: a configured profile starts
 * from `base` (or the built-in of the same name, else `server`) and replaces the fields it gives. Each CA
 * gets the built-ins plus the configured profiles whose `cas` include it (all when `cas` is absent).
 * Patterns are checked once here, so a typo fails at start-up with CONFIG_INVALID, not at issuance.
 */
import { ConfigError } from '../core/errors.js';
import type { CaProfileConfig } from '../config/schema.js';
import { parseCidr } from '../pki/ip.js';
import { dnsNameProblem, emailProblem, uriProblem } from './names.js';
import { BUILTIN_PROFILES, type Profile } from './profiles.js';

type BuiltinName = keyof typeof BUILTIN_PROFILES;

function invalid(index: number, field: string, message: string): ConfigError {
  const path = `ca.profiles.${index}.${field}`;
  return new ConfigError('CONFIG_INVALID', `${path}: ${message}`, {
    details: { issues: [{ path, message }] },
  });
}

function dnsPatternProblem(pattern: string): string | undefined {
  if (pattern === '**') return undefined;
  const rest = pattern.startsWith('**.')
    ? pattern.slice(3)
    : pattern.startsWith('*.')
      ? pattern.slice(2)
      : pattern;
  return dnsNameProblem(rest, false);
}

function emailPatternProblem(pattern: string): string | undefined {
  if (pattern === '*') return undefined;
  if (pattern.startsWith('*@')) return dnsPatternProblem(pattern.slice(2));
  return emailProblem(pattern);
}

function uriPatternProblem(pattern: string): string | undefined {
  if (pattern === '*') return undefined;
  return uriProblem(pattern.endsWith('*') ? `${pattern.slice(0, -1)}x` : pattern);
}

/** One configured profile as a Profile; throws CONFIG_INVALID naming the field. */
export function profileFromConfig(p: CaProfileConfig, index = 0): Profile {
  const baseName: BuiltinName = p.base ?? (p.name in BUILTIN_PROFILES ? (p.name as BuiltinName) : 'server');
  const base = BUILTIN_PROFILES[baseName];
  const names = {
    dns: p.names?.dns ?? base.names.dns,
    ip: p.names?.ip ?? base.names.ip,
    email: p.names?.email ?? base.names.email,
    uri: p.names?.uri ?? base.names.uri,
  };
  names.dns.forEach((d, i) => {
    const problem = dnsPatternProblem(d.toLowerCase());
    if (problem) throw invalid(index, `names.dns.${i}`, `the pattern "${d}" ${problem}`);
  });
  names.ip.forEach((r, i) => {
    if (!parseCidr(r)) throw invalid(index, `names.ip.${i}`, `"${r}" is not an IP range such as 10.0.0.0/8`);
  });
  names.email.forEach((e, i) => {
    const problem = emailPatternProblem(e);
    if (problem) throw invalid(index, `names.email.${i}`, `the pattern "${e}" ${problem}`);
  });
  names.uri.forEach((u, i) => {
    const problem = uriPatternProblem(u);
    if (problem) throw invalid(index, `names.uri.${i}`, `the pattern "${u}" ${problem}`);
  });
  const profile: Profile = {
    name: p.name,
    description: p.description ?? `${base.description} (configured)`,
    names,
    allowWildcards: p.allowWildcards ?? base.allowWildcards,
    maxNames: p.maxNames ?? base.maxNames,
    keyTypes: p.keyTypes ?? base.keyTypes,
    ecCurves: p.ecCurves ?? base.ecCurves,
    minRsaBits: p.minRsaBits ?? base.minRsaBits,
    defaultLifetimeMs: p.defaultLifetime ?? Math.min(base.defaultLifetimeMs, p.maxLifetime ?? Infinity),
    maxLifetimeMs: p.maxLifetime ?? base.maxLifetimeMs,
    ...(p.keyUsages ? { keyUsages: p.keyUsages } : base.keyUsages ? { keyUsages: base.keyUsages } : {}),
    extKeyUsages: p.extKeyUsages ?? base.extKeyUsages,
  };
  if (profile.defaultLifetimeMs > profile.maxLifetimeMs) {
    throw invalid(index, 'defaultLifetime', 'is longer than maxLifetime');
  }
  if (profile.maxLifetimeMs < 60_000) throw invalid(index, 'maxLifetime', 'must be at least 1 minute');
  return profile;
}

/** Checks every configured profile (at start-up); throws CONFIG_INVALID on the first bad one. */
export function validateProfileConfig(configured: readonly CaProfileConfig[]): void {
  configured.forEach((p, i) => profileFromConfig(p, i));
}

/** The profiles of one CA: the built-ins, then the configured profiles for it (a same name replaces). */
export function profilesForCa(
  ca: string,
  configured: readonly CaProfileConfig[],
): Readonly<Record<string, Profile>> {
  const out: Record<string, Profile> = { ...BUILTIN_PROFILES };
  configured.forEach((p, i) => {
    if (p.cas === undefined || p.cas.includes(ca)) out[p.name] = profileFromConfig(p, i);
  });
  return out;
}
