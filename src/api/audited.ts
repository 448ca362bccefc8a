import type { FastifyRequest } from 'fastify';
import type { ApiDeps } from './deps.js';
import { principalActor } from '../access/principal.js';
import { audited as auditedOperation } from '../audit/audited.js';

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

/** The request's audited operation (audit/audited.ts): its entry before the change, fail closed. */
export function audited<T>(
  deps: ApiDeps,
  request: FastifyRequest,
  what: AuditedAction,
  change: () => Promise<T>,
): Promise<T> {
  return auditedAs(deps, { actor: actorOf(request), requestId: request.id, log: request.log }, what, change);
}

/** audited() for a caller outside fastify (the bundle hot path). */
export function auditedAs<T>(
  deps: Pick<ApiDeps, 'audit'>,
  caller: AuditedCaller,
  what: AuditedAction,
  change: () => Promise<T>,
): Promise<T> {
  return auditedOperation(
    deps.audit,
    { ...what, actor: caller.actor, requestId: caller.requestId },
    change,
    (auditErr) => caller.log.error({ err: auditErr }, 'audit append failed after a failed change'),
  );
}
