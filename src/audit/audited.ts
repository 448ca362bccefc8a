import type { AppendOptions, AuditRecorder } from './audit-log.js';
import type { AuditDetails } from './entry.js';

/** An audited operation: who does what to which subject, with optional non-secret details. */
export interface AuditedOperation {
  readonly actor: string;
  readonly action: string;
  readonly subject: string;
  readonly requestId?: string;
  readonly details?: AuditDetails;
  /** A secret handed out, not a change (AppendOptions.disclosure). */
  readonly disclosure?: boolean;
}

/**
 * Fail closed: the entry is appended (durable, or written for a disclosure) before `change` runs, so no
 * change exists without its entry, and if it cannot be written the change is never attempted. A change
 * that then fails gets a second entry with outcome "failure"; if even that cannot be written,
 * `onAuditError` hears of it and the change's own error is what the caller gets.
 */
export async function audited<T>(
  audit: AuditRecorder,
  what: AuditedOperation,
  change: () => Promise<T>,
  onAuditError: (err: unknown) => void = () => undefined,
): Promise<T> {
  const base = {
    actor: what.actor,
    action: what.action,
    subject: what.subject,
    ...(what.requestId === undefined ? {} : { requestId: what.requestId }),
  };
  const options: AppendOptions = { disclosure: what.disclosure === true };
  await audit.append(
    { ...base, outcome: 'success', ...(what.details ? { details: what.details } : {}) },
    options,
  );
  try {
    return await change();
  } catch (err) {
    await audit
      .append({
        ...base,
        outcome: 'failure',
        details: { code: (err as { code?: string }).code ?? 'INTERNAL' },
      })
      .catch(onAuditError);
    throw err;
  }
}
