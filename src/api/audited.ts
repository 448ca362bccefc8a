import type { FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { principalActor } from '../access/principal.js';

export interface AuditedAction {
  readonly action: string;
  readonly subject: string;
  readonly details?: Readonly<Record<string, string | number | boolean>>;
  /** A secret handed out, not a change (AppendOptions.disclosure). */
  readonly disclosure?: boolean;
}

/** The actor recorded for a request: the token id (never the token), or the mTLS identity. */
export function actorOf(request: FastifyRequest): string {
  const p = request.principal;
  return p === undefined ? 'anonymous' : principalActor(p);
}

/**
 * Fail closed: the audit entry is written (and fsync'd) before the change is committed, so no change
 * exists without its entry; if the audit log cannot be written, the change is never attempted. A change
 * that then fails gets a second entry with outcome "failure".
 */
export async function audited<T>(
  deps: ApiDeps,
  request: FastifyRequest,
  what: AuditedAction,
  change: () => Promise<T>,
): Promise<T> {
  const base = { actor: actorOf(request), action: what.action, subject: what.subject, requestId: request.id };
  await deps.audit.append(
    { ...base, outcome: 'success', ...(what.details ? { details: what.details } : {}) },
    { disclosure: what.disclosure === true },
  );
  try {
    return await change();
  } catch (err) {
    await deps.audit
      .append({
        ...base,
        outcome: 'failure',
        details: { code: (err as { code?: string }).code ?? 'INTERNAL' },
      })
      .catch((auditErr: unknown) =>
        request.log.error({ err: auditErr }, 'audit append failed after a failed change'),
      );
    throw err;
  }
}
