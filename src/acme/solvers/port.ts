/**
 * The challenge-solver port (RFC 8555 §8). A solver makes one challenge answerable (`present`) and
 * removes what it made (`cleanup`). The order flow calls cleanup for everything it presented, always, in
 * a finally; a cleanup failure is logged and never replaces the order's own result.
 */
import type { Logger } from '../../core/logger.js';

export const CHALLENGE_TYPES = ['http-01', 'dns-01', 'tls-alpn-01'] as const;
export type ChallengeType = (typeof CHALLENGE_TYPES)[number];

export interface AcmeIdentifier {
  readonly type: 'dns' | 'ip';
  readonly value: string;
}

export interface ChallengeTask {
  readonly type: ChallengeType;
  /** The authorization's identifier; for a wildcard order the base name, with `wildcard` set (§7.1.4). */
  readonly identifier: AcmeIdentifier;
  readonly wildcard: boolean;
  readonly token: string;
  /** `token "." base64url(JWK thumbprint)` (§8.1). dns-01 publishes its SHA-256 digest instead (§8.4). */
  readonly keyAuthorization: string;
  /** The managed certificate this order is for, when known (solver choice, hook environment). */
  readonly certificateName?: string;
}

export interface SolverContext {
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

export interface ChallengeSolver {
  readonly type: ChallengeType;
  /** A short description for logs and errors, e.g. `http-01 responder 0.0.0.0:80`. */
  readonly description: string;
  /** Resolves once the CA may validate: the token is served, the TXT record is visible, … */
  present(task: ChallengeTask, ctx: SolverContext): Promise<void>;
  cleanup(task: ChallengeTask, ctx: SolverContext): Promise<void>;
}

/** The names a solver rule matches: `*.example.com` for wildcard identifiers (as written in the order). */
export function displayName(task: Pick<ChallengeTask, 'identifier' | 'wildcard'>): string {
  return task.wildcard ? `*.${task.identifier.value}` : task.identifier.value;
}
