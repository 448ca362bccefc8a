/**
 * Which solver answers which authorization: an ordered list of rules, first match wins (cert-manager's
 * solver selectors, simplified). A rule matches by identifier pattern and by certificate name pattern,
 * and only if the CA offers its challenge type for that authorization (a wildcard offers only dns-01).
 */
import { AcmeError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { AcmeSolverConfig } from '../../config/schema.js';
import { cidrContains, parseCidr, parseIp } from '../../pki/ip.js';
import { DnsHookSolver } from './dns01.js';
import { Http01ResponderSolver, WebrootSolver, type Http01Responder } from './http01.js';
import { TlsAlpnSolver } from './tls-alpn01.js';
import { displayName, type AcmeIdentifier, type ChallengeSolver, type ChallengeType } from './port.js';

export interface SolverRule {
  readonly solver: ChallengeSolver;
  readonly domains?: readonly string[] | undefined;
  readonly certificates?: readonly string[] | undefined;
}

/**
 * `*` matches everything; `*.example.com` any name below example.com (and the wildcard identifier
 * itself); an IP pattern matches that address or, written as a CIDR, any address inside it; anything
 * else matches the identifier exactly, ignoring case.
 */
export function identifierMatches(pattern: string, identifier: AcmeIdentifier, wildcard: boolean): boolean {
  if (pattern === '*') return true;
  if (identifier.type === 'ip') {
    const address = parseIp(identifier.value);
    if (address === undefined) return false;
    const cidr = parseCidr(pattern);
    if (cidr !== undefined) return cidrContains(cidr, address);
    const exact = parseIp(pattern);
    return exact !== undefined && exact.equals(address);
  }
  const name = displayName({ identifier, wildcard }).toLowerCase();
  const p = pattern.toLowerCase();
  if (p.startsWith('*.')) return name.endsWith(p.slice(1)) && name.length > p.length - 1;
  return name === p;
}

/** `web-*`: `*` is any run of characters. */
export function globMatches(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return re.test(value);
}

export interface SelectionInput {
  readonly identifier: AcmeIdentifier;
  readonly wildcard: boolean;
  readonly certificateName?: string | undefined;
  /** Challenge types the CA offered in this authorization. */
  readonly offered: readonly ChallengeType[];
}

export function selectSolver(rules: readonly SolverRule[], input: SelectionInput): ChallengeSolver {
  for (const rule of rules) {
    if (!input.offered.includes(rule.solver.type)) continue;
    if (rule.domains && !rule.domains.some((d) => identifierMatches(d, input.identifier, input.wildcard)))
      continue;
    if (rule.certificates) {
      const name = input.certificateName;
      if (name === undefined || !rule.certificates.some((c) => globMatches(c, name))) continue;
    }
    return rule.solver;
  }
  const name = displayName(input);
  throw new AcmeError(
    'ACME_SOLVER_FAILED',
    `no challenge solver for ${name}: the CA offers ${input.offered.join(', ') || 'no challenge'} and no rule in acme.solvers matches with one of those types${input.wildcard ? ' (wildcards need a dns01 solver)' : ''}`,
    { retryable: false, details: { identifier: name, offered: [...input.offered] } },
  );
}

/** Turns `acme.solvers` into rules. One responder and one listener per address are shared. */
export function buildSolverRules(
  configs: readonly AcmeSolverConfig[],
  deps: { readonly responder?: Http01Responder | undefined; readonly logger: Logger },
): SolverRule[] {
  const alpn = new Map<string, TlsAlpnSolver>();
  return configs.map((c) => {
    let solver: ChallengeSolver;
    if ('http01' in c) {
      if (c.http01.webroot !== undefined) solver = new WebrootSolver(c.http01.webroot);
      else if (deps.responder !== undefined) solver = new Http01ResponderSolver(deps.responder);
      else solver = unavailableResponder();
    } else if ('dns01' in c) {
      const d = c.dns01;
      solver = new DnsHookSolver({
        present: d.present,
        cleanup: d.cleanup,
        timeoutMs: d.timeout,
        resolvers: d.resolvers,
        checkPropagation: d.checkPropagation,
        propagationTimeoutMs: d.propagationTimeout,
        propagationIntervalMs: d.propagationInterval,
      });
    } else {
      const key = `${c.tlsAlpn01.listen.host}:${c.tlsAlpn01.listen.port}`;
      solver = alpn.get(key) ?? new TlsAlpnSolver(c.tlsAlpn01.listen, deps.logger);
      alpn.set(key, solver as TlsAlpnSolver);
    }
    return { solver, domains: c.domains, certificates: c.certificates };
  });
}

/** An http01 rule without a responder address fails with what to configure, only when it is needed. */
function unavailableResponder(): ChallengeSolver {
  const fail = () =>
    Promise.reject(
      new AcmeError(
        'ACME_SOLVER_FAILED',
        "http-01: keywright's responder has no address; set acme.http01.listen (or serve --http01-listen), or give the http01 solver a webroot",
        { retryable: false },
      ),
    );
  return {
    type: 'http-01',
    description: 'http-01 responder (not configured)',
    present: fail,
    cleanup: async () => undefined,
  };
}
