import { ValidationError } from '../core/errors.js';
import type { Role } from './roles.js';

/**
 * Scopes: name patterns over resources, e.g. `cert:web-*`, `ca:default`, `vpn:office/*`, `*`.
 *
 *   scope   = "*" | kind ":" pattern
 *   kind    = "cert" | "ca" | "vpn" | "acme" | "profile" | "token"
 *   pattern = segment *( "/" segment )
 *   segment = "**" | 1*( a-z / 0-9 / "." / "_" / "-" / "*" )
 *
 * `*` inside a segment matches any run of characters (none included) but never crosses `/`, so
 * `vpn:office/*` names the peers of `office` and not a deeper level. A whole `**` segment matches one or
 * more segments: `vpn:office/**`, `vpn:**`. The bare scope `*` matches every resource of every kind.
 * Names are matched as given, in full: `cert:web-*` matches `web-1` but not `web` or `web-1/x`.
 */

export const RESOURCE_KINDS = ['cert', 'ca', 'vpn', 'acme', 'profile', 'token'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

/** A named thing an action touches. VPN peers are `network/peer`. */
export interface Resource {
  readonly kind: ResourceKind;
  readonly name: string;
}

export const MAX_SCOPES = 64;
const MAX_SCOPE_LENGTH = 200;
const SEGMENT = /^(?:\*\*|[a-z0-9._*-]+)$/;

/** Why `scope` is not valid, or undefined when it is. */
export function scopeProblem(scope: string): string | undefined {
  if (scope === '*') return undefined;
  if (scope.length > MAX_SCOPE_LENGTH) return `longer than ${MAX_SCOPE_LENGTH} characters`;
  const colon = scope.indexOf(':');
  if (colon === -1)
    return `use kind:pattern with kind one of ${RESOURCE_KINDS.join(', ')}, or * for everything`;
  const kind = scope.slice(0, colon);
  if (!(RESOURCE_KINDS as readonly string[]).includes(kind))
    return `unknown kind "${kind}"; use one of ${RESOURCE_KINDS.join(', ')}`;
  const pattern = scope.slice(colon + 1);
  if (pattern === '') return 'the pattern after the colon is empty';
  for (const segment of pattern.split('/')) {
    if (segment === '') return 'empty path segment (leading, trailing or doubled /)';
    if (segment !== '**' && segment.includes('**')) return '** must be a whole segment, e.g. vpn:office/**';
    if (!SEGMENT.test(segment))
      return 'patterns use lowercase letters, digits, . _ - and the wildcards * and **';
  }
  return undefined;
}

/**
 * Validates and normalizes (dedupes, keeps order) scopes given at token creation. Throws ValidationError
 * INVALID_ARGUMENT naming the first bad scope.
 */
export function validateScopes(scopes: readonly string[]): string[] {
  if (scopes.length > MAX_SCOPES) {
    throw new ValidationError('INVALID_ARGUMENT', `a token may have at most ${MAX_SCOPES} scopes`, {
      details: { field: 'scopes', count: scopes.length },
    });
  }
  scopes.forEach((scope, i) => {
    const problem = typeof scope === 'string' ? scopeProblem(scope) : 'not a string';
    if (problem !== undefined) {
      throw new ValidationError('INVALID_ARGUMENT', `scope ${JSON.stringify(scope)} is invalid: ${problem}`, {
        details: { field: `scopes[${i}]`, scope },
      });
    }
  });
  return [...new Set(scopes)];
}

const compiled = new Map<string, { kind: string; name: RegExp }>();

function compile(scope: string): { kind: string; name: RegExp } {
  let c = compiled.get(scope);
  if (c === undefined) {
    const colon = scope.indexOf(':');
    const source = scope
      .slice(colon + 1)
      .split('/')
      .map((segment) =>
        segment === '**'
          ? '[^/]+(?:/[^/]+)*'
          : segment
              .split('*')
              .map((literal) => literal.replace(/[.]/g, '\\.'))
              .join('[^/]*'),
      )
      .join('/');
    c = { kind: scope.slice(0, colon), name: new RegExp(`^${source}$`) };
    if (compiled.size < 10_000) compiled.set(scope, c);
  }
  return c;
}

/** Does one valid scope cover the resource? Invalid scopes match nothing. */
export function scopeMatches(scope: string, resource: Resource): boolean {
  if (scope === '*') return true;
  if (scopeProblem(scope) !== undefined) return false;
  const c = compile(scope);
  return c.kind === resource.kind && c.name.test(resource.name);
}

/**
 * What a principal's scopes mean for its role: no scopes is everything for admin, operator and reader,
 * and nothing for issuer and service (deny by default). Admin is never narrowed: it can mint tokens, so a
 * scope would not bind it (token creation refuses scoped admin tokens).
 */
export function effectiveScopes(role: Role, scopes: readonly string[]): readonly string[] {
  if (role === 'admin') return ['*'];
  if (scopes.length > 0) return scopes;
  switch (role) {
    case 'operator':
    case 'reader':
      return ['*'];
    case 'issuer':
    case 'service':
      return [];
  }
}

export function formatResource(resource: Resource): string {
  return `${resource.kind}:${resource.name}`;
}
