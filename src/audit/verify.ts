import type { AuditEntry, AuditHead } from './entry.js';
import { GENESIS_HASH, entryHash, entryShapeProblem, serializeEntry } from './entry.js';
import type { LogLine } from './lines.js';
import { readLogLines } from './lines.js';

/**
 * The chain verifier, shared by `verifyAuditLog` (read-only, for `keywright audit verify`),
 * `AuditLog.open` (which repairs a torn tail and refuses anything else) and `AuditLog.verifyChain` (the
 * same check run after start-up, when open was told to defer it). It reports the FIRST line at
 * which the chain cannot be continued, classified as:
 * - edited: the entry's content does not match its own hash, its bytes are not the serialization of its
 *   content, or its `prev` names no entry (the entry before it was rewritten with a recomputed hash);
 * - removed: seq jumps ahead and the skipped seq appears nowhere later in the file;
 * - reordered: seq repeats or goes backwards, or jumps ahead to a seq whose predecessor appears later,
 *   or `prev` names an entry further down the file;
 * - truncated: the last line has no newline or is not JSON: a write cut short by a crash;
 * - malformed: a line other than the last is not JSON, or JSON that is not an audit entry.
 */

export type AuditProblem = 'edited' | 'removed' | 'reordered' | 'truncated' | 'malformed';

export type AuditVerifyResult =
  | { readonly ok: true; readonly entries: number; readonly head: AuditHead }
  | {
      readonly ok: false;
      readonly line: number;
      /** The seq the line claims, or null when it cannot be read. */
      readonly seq: number | null;
      readonly problem: AuditProblem;
      readonly message: string;
    };

export type AuditVerifyFailure = Extract<AuditVerifyResult, { ok: false }>;

export interface ChainScan {
  readonly result: AuditVerifyResult;
  /** The last verified entry (seq 0 and GENESIS_HASH before the first). */
  readonly head: AuditHead;
  /** Byte length of the verified prefix of the file. */
  readonly verifiedBytes: number;
  /** Where the offending line starts and ends, when there is one. */
  readonly problemRange?: { readonly start: number; readonly end: number };
}

/** Verifies the audit log at `path` without writing to it. */
export async function verifyAuditLog(path: string): Promise<AuditVerifyResult> {
  return (await scanChain(path)).result;
}

export interface ScanOptions {
  /** Stop at this byte offset (the acknowledged size), so appends made meanwhile are not read. */
  readonly limit?: number;
  /** Checked before each line: an aborted scan rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** Walks the chain; `onEntry` sees each verified entry in order (used to fill the recent-entries ring). */
export async function scanChain(
  path: string,
  onEntry?: (entry: AuditEntry) => void,
  options: ScanOptions = {},
): Promise<ChainScan> {
  let head: AuditHead = { seq: 0, hash: GENESIS_HASH };
  let entries = 0;
  let verifiedBytes = 0;
  const lines = readLogLines(path, options.limit)[Symbol.asyncIterator]();
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      const next = await lines.next();
      if (next.done === true) break;
      const l = next.value;
      const failed = (problem: AuditProblem, seq: number | null, message: string): ChainScan => ({
        result: { ok: false, line: l.line, seq, problem, message },
        head,
        verifiedBytes,
        problemRange: { start: l.start, end: l.end },
      });

      const checked = checkEntryLine(l);
      if (!checked.ok) return failed(checked.problem, checked.seq, checked.message);
      const { entry } = checked;

      const expected = head.seq + 1;
      if (entry.seq <= head.seq) {
        return failed(
          'reordered',
          entry.seq,
          `seq ${entry.seq} follows seq ${head.seq}: entries are out of order`,
        );
      }
      if (entry.seq > expected) {
        const later = await findLater(lines, (o) => o.seq === expected);
        return later === undefined
          ? failed(
              'removed',
              entry.seq,
              `seq ${expected}${entry.seq - 1 > expected ? `..${entry.seq - 1}` : ''} missing before seq ${entry.seq}: entries were removed`,
            )
          : failed(
              'reordered',
              entry.seq,
              `seq ${entry.seq} comes before seq ${expected}, which is on line ${later}: entries were moved`,
            );
      }
      if (entry.prev !== head.hash) {
        const later = await findLater(lines, (o) => o.hash === entry.prev);
        return later === undefined
          ? failed(
              'edited',
              entry.seq,
              `prev does not match the hash of seq ${head.seq}: the entry before it was rewritten with a recomputed hash, or this one was forged`,
            )
          : failed(
              'reordered',
              entry.seq,
              `prev names the entry on line ${later}, further down: entries were moved`,
            );
      }
      head = { seq: entry.seq, hash: entry.hash };
      entries += 1;
      verifiedBytes = l.end;
      onEntry?.(entry);
    }
  } finally {
    await lines.return?.(undefined);
  }
  return { result: { ok: true, entries, head }, head, verifiedBytes };
}

export type CheckedLine =
  | { readonly ok: true; readonly entry: AuditEntry }
  | {
      readonly ok: false;
      readonly problem: AuditProblem;
      readonly seq: number | null;
      readonly message: string;
    };

/**
 * The checks one line must pass on its own, whatever is around it: a whole line, JSON, an entry whose
 * hash matches its content, written byte for byte as keywright writes it. The chain links are checked
 * by the caller.
 */
export function checkEntryLine(l: Pick<LogLine, 'text' | 'terminated' | 'last'>): CheckedLine {
  const failed = (problem: AuditProblem, seq: number | null, message: string): CheckedLine => ({
    ok: false,
    problem,
    seq,
    message,
  });
  if (!l.terminated)
    return failed('truncated', readSeq(l.text), 'the last line has no newline: an append was cut short');
  let parsed: unknown;
  try {
    parsed = JSON.parse(l.text);
  } catch {
    return l.last
      ? failed('truncated', null, 'the last line is not JSON: an append was cut short')
      : failed('malformed', null, 'the line is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return failed('malformed', null, 'the line is not a JSON object');
  }
  const obj = parsed as Record<string, unknown>;
  const seq = Number.isSafeInteger(obj.seq) ? (obj.seq as number) : null;
  if (typeof obj.hash !== 'string') return failed('malformed', seq, 'the entry has no hash');
  if (entryHash(obj) !== obj.hash)
    return failed('edited', seq, 'the entry does not match its own hash: its content was changed');
  const shape = entryShapeProblem(obj);
  if (shape !== undefined) return failed('malformed', seq, `not an audit entry: ${shape}`);
  const entry = obj as unknown as AuditEntry;
  if (serializeEntry(entry) !== `${l.text}\n`) {
    return failed(
      'edited',
      entry.seq,
      'the line is not byte-for-byte what was written (spacing, member order or duplicate members changed)',
    );
  }
  return { ok: true, entry };
}

function readSeq(text: string): number | null {
  const m = /^\{"seq":(\d{1,15})[,}]/.exec(text);
  return m?.[1] === undefined ? null : Number(m[1]);
}

/** Looks through the rest of the file for a line whose parsed object satisfies `test`; returns its line number. */
async function findLater(
  lines: AsyncIterator<LogLine>,
  test: (obj: Record<string, unknown>) => boolean,
): Promise<number | undefined> {
  for (;;) {
    const next = await lines.next();
    if (next.done === true) return undefined;
    try {
      const obj: unknown = JSON.parse(next.value.text);
      if (typeof obj === 'object' && obj !== null && test(obj as Record<string, unknown>))
        return next.value.line;
    } catch {
      // unreadable lines cannot be the one we look for
    }
  }
}
