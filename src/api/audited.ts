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

/** Who asks, as the audit log and the error log record it. */
export interface AuditedCaller {
  readonly actor: string;
  readonly requestId: string;
  readonly log: { error(obj: object, msg: string): void };
}

/**
 * Fail closed: the audit entry is written (and fsync'd) before the change is committed, so no change
 * exists without its entry; if the audit log cannot be written, the change is never attempted. A change
 * that then fails gets a second entry with outcome "failure".
 */
export function audited<T>(
  deps: ApiDeps,
  request: FastifyRequest,
  what: AuditedAction,
  change: () => Promise<T>,
): Promise<T> {
  return auditedAs(deps, { actor: actorOf(request), requestId: request.id, log: request.log }, what, change);
}

/** audited() for a caller outside fastify (the bundle hot path). */
export async function auditedAs<T>(
  deps: Pick<ApiDeps, 'audit'>,
  caller: AuditedCaller,
  what: AuditedAction,
  change: () => Promise<T>,
): Promise<T> {
  const base = {
    actor: caller.actor,
    action: what.action,
    subject: what.subject,
    requestId: caller.requestId,
  };
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
        caller.log.error({ err: auditErr }, 'audit append failed after a failed change'),
      );
    throw err;
  }
}
