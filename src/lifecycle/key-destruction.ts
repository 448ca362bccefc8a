/**
 * Key states of superseded versions (DESIGN §1): enabled → disabled → pending-destruction (a waiting
 * period, during which `cert key restore` can bring it back) → destroyed (the sealed blob erased, the
 * version and its audit entries kept). This module only plans: given the versions and the time, it
 * returns the transitions due; the lifecycle applies them in one store transaction and audits each.
 * One step per version per run, so every state is visible for at least one sweep.
 */
import type { KeyState, VersionRecord } from './records.js';

export interface KeyDestructionPolicy {
  /** pending-destruction → destroyed after this long (default 30 days). */
  readonly waitingPeriodMs: number;
  /** A superseded key stays disabled this long before destruction is scheduled (default 0). */
  readonly disabledGraceMs: number;
}

export const DEFAULT_KEY_DESTRUCTION: KeyDestructionPolicy = {
  waitingPeriodMs: 30 * 86_400_000,
  disabledGraceMs: 0,
};

export type KeyVersion = Pick<
  VersionRecord,
  | 'id'
  | 'certificate'
  | 'version'
  | 'status'
  | 'keyState'
  | 'keyBlob'
  | 'destroyAfter'
  | 'createdAt'
  | 'restoredAt'
>;

export interface KeyTransition {
  readonly versionId: string;
  readonly certificate: string;
  readonly version: number;
  readonly from: KeyState;
  readonly to: KeyState;
  /** Set when entering pending-destruction. */
  readonly destroyAfter?: string;
  /** The sealed blob to erase, when `to` is destroyed. */
  readonly eraseBlob?: string;
  readonly reason: string;
}

/** The transitions due now, oldest version first. */
export function planKeyTransitions(
  versions: readonly KeyVersion[],
  now: Date,
  policy: KeyDestructionPolicy = DEFAULT_KEY_DESTRUCTION,
): KeyTransition[] {
  const nowMs = now.getTime();
  const successorCreated = successorTimes(versions);
  const plan: KeyTransition[] = [];
  for (const v of [...versions].sort(
    (a, b) => a.certificate.localeCompare(b.certificate) || a.version - b.version,
  )) {
    // A key restored by an operator stays disabled until they decide otherwise: never re-scheduled.
    if (
      v.keyBlob === undefined ||
      v.keyState === 'destroyed' ||
      v.status === 'active' ||
      (v.keyState === 'disabled' && v.restoredAt !== undefined)
    )
      continue;
    const base = { versionId: v.id, certificate: v.certificate, version: v.version, from: v.keyState };
    switch (v.keyState) {
      case 'enabled':
        plan.push({
          ...base,
          to: 'disabled',
          reason: v.status === 'revoked' ? 'the certificate was revoked' : 'superseded by a newer version',
        });
        break;
      case 'disabled': {
        // superseded when its successor was created; a revoked version from its own creation at the latest
        const since = successorCreated.get(v.id) ?? Date.parse(v.createdAt);
        if (nowMs >= since + policy.disabledGraceMs) {
          plan.push({
            ...base,
            to: 'pending-destruction',
            destroyAfter: new Date(nowMs + policy.waitingPeriodMs).toISOString(),
            reason: `destruction scheduled after a waiting period of ${Math.round(policy.waitingPeriodMs / 86_400_000)} days`,
          });
        }
        break;
      }
      case 'pending-destruction': {
        const due = v.destroyAfter === undefined ? Number.NaN : Date.parse(v.destroyAfter);
        if (Number.isNaN(due)) {
          // no (valid) date recorded: start the waiting period now rather than destroy early
          plan.push({
            ...base,
            to: 'pending-destruction',
            destroyAfter: new Date(nowMs + policy.waitingPeriodMs).toISOString(),
            reason: 'waiting period restarted: no destruction date was recorded',
          });
        } else if (nowMs >= due) {
          plan.push({
            ...base,
            to: 'destroyed',
            eraseBlob: v.keyBlob,
            reason: `waiting period ended at ${v.destroyAfter!}`,
          });
        }
        break;
      }
    }
  }
  return plan;
}

export type RestorePlan =
  { readonly ok: true; readonly transition: KeyTransition } | { readonly ok: false; readonly reason: string };

/** `cert key restore`: a pending key goes back to disabled before its destruction date, never after. */
export function planKeyRestore(v: KeyVersion, now: Date): RestorePlan {
  if (v.keyBlob === undefined)
    return { ok: false, reason: `${v.id} was issued from a CSR: keywright never held its key` };
  if (v.keyState !== 'pending-destruction') {
    return {
      ok: false,
      reason: `the key of ${v.id} is ${v.keyState}; only a key pending destruction can be restored`,
    };
  }
  if (v.destroyAfter !== undefined && now.getTime() >= Date.parse(v.destroyAfter)) {
    return {
      ok: false,
      reason: `the waiting period of ${v.id} ended at ${v.destroyAfter}; the key is being destroyed`,
    };
  }
  return {
    ok: true,
    transition: {
      versionId: v.id,
      certificate: v.certificate,
      version: v.version,
      from: 'pending-destruction',
      to: 'disabled',
      reason: 'restored before its destruction date',
    },
  };
}

/** Each version's successor's creation time: when it was superseded. */
function successorTimes(versions: readonly KeyVersion[]): Map<string, number> {
  const byCert = new Map<string, KeyVersion[]>();
  for (const v of versions) byCert.set(v.certificate, [...(byCert.get(v.certificate) ?? []), v]);
  const out = new Map<string, number>();
  for (const list of byCert.values()) {
    list.sort((a, b) => a.version - b.version);
    for (let i = 0; i + 1 < list.length; i++) out.set(list[i]!.id, Date.parse(list[i + 1]!.createdAt));
  }
  return out;
}
