import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { AuditError, ValidationError, isAppError } from '../core/errors.js';
import { fsyncDir } from '../core/fs-durable.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';
import type { AuditEntry, AuditHead, AuditInput, AuditOutcome } from './entry.js';
import { AUDIT_OUTCOMES, GENESIS_HASH, sealEntry, serializeEntry, validateAuditInput } from './entry.js';
import type { AuditAppendHandle, AuditFileIo } from './io.js';
import { nodeAuditIo } from './io.js';
import { readLastLine, readLogLines } from './lines.js';
import { checkEntryLine, scanChain, type AuditVerifyFailure, type ChainScan } from './verify.js';

/** What other modules depend on to record events; AuditLog implements it. */
export interface AuditRecorder {
  /** Resolves once the entry is durable; rejects with AuditError (refuse the operation) otherwise. */
  append(input: AuditInput, options?: AppendOptions): Promise<AuditEntry>;
}

export interface AppendOptions {
  /**
   * The entry records a secret being handed out (a bundle or VPN configuration pull), not a change:
   * nothing is committed after it, so under `exportDurability: 'written'` it resolves as soon as its
   * line is in the file, with the fdatasync started at once in the background (see AuditLogOptions).
   */
  readonly disclosure?: boolean;
}

/**
 * When a disclosure's append resolves. 'synced': after its fdatasync, like every change. 'written':
 * after the write, so the entry survives a crash of keywright before the secret leaves; a power cut in
 * the next few milliseconds can lose the newest such entries (never one a later synced entry follows,
 * and never in a way that breaks the chain). Vault's file audit device does not fsync at all.
 */
export type ExportDurability = 'written' | 'synced';

export interface AuditLogOptions {
  readonly path: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** File operations; tests inject failures and count fsyncs here. */
  readonly io?: AuditFileIo;
  /** Recent entries kept in memory so tail() and query() rarely read the file; default 10 000. */
  readonly recentEntries?: number;
  /**
   * Open checks only the last entry (the head new entries chain onto) and leaves the rest of the chain
   * to verifyChain(), which the daemon runs once it is up: verifying a long log took most of a start.
   * A torn last line still makes open verify and repair at once. Default false: open verifies it all.
   */
  readonly deferVerification?: boolean;
  /** Default 'synced'; the daemon takes `audit.exportDurability` from its configuration. */
  readonly exportDurability?: ExportDurability;
}

export interface AuditQuery {
  /** Entries at or after this time (ISO string or Date); pages forward. */
  readonly since?: Date | string;
  /** Entries with a greater seq; pages forward (pass the last seq of the previous page). */
  readonly afterSeq?: number;
  /** Exact action, or a prefix ending in `*` (`cert.*`). */
  readonly action?: string;
  /** Exact subject, or a prefix ending in `*` (`cert:web*`). */
  readonly subject?: string;
  readonly actor?: string;
  readonly outcome?: AuditOutcome;
  readonly limit: number;
}

export interface AuditStats {
  /** Entries made durable. */
  readonly appended: number;
  /** write + fsync rounds that succeeded (group commits). */
  readonly batches: number;
  readonly failedBatches: number;
}

export const MAX_AUDIT_QUERY_LIMIT = 1000;
const DEFAULT_RECENT = 10_000;
/** Bounds one write; a larger backlog simply takes several rounds. */
const MAX_BATCH = 1024;

interface Pending {
  readonly input: AuditInput;
  readonly time: string;
  /** Resolved after the write, before the fdatasync (a disclosure under 'written'). */
  readonly early: boolean;
  readonly resolve: (entry: AuditEntry) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The append-only, hash-chained audit log in one JSON-lines file. Appends are serialized and committed
 * in groups: whatever arrives while one write + fsync is in flight goes out in the next, in call order.
 * An append resolves only after its line is fsync'd (disclosures under 'written': after the write, the
 * fdatasync following in the background); on any failure the head stays where it was and the caller
 * must refuse the operation (fail closed). docs/audit.md describes the format.
 */
export class AuditLog implements AuditRecorder {
  readonly path: string;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #io: AuditFileIo;
  readonly #recentCap: number;
  #recent: AuditEntry[] = [];
  #head: AuditHead;
  /** Bytes of acknowledged content; the file must be exactly this long before each write. */
  #size: number;
  #pending: Pending[] = [];
  #draining: Promise<void> | undefined;
  #broken: AuditError | undefined;
  /** Kept open between commits; dropped (and reopened by the next commit) after any failure. */
  #handle: AuditAppendHandle | undefined;
  /** The head and size open trusted without verifying the chain before them (deferVerification). */
  #unverified: { readonly head: AuditHead; readonly bytes: number } | undefined;
  #verification: Promise<AuditError | undefined> | undefined;
  readonly #stopVerification = new AbortController();
  #closed = false;
  #stats = { appended: 0, batches: 0, failedBatches: 0 };
  readonly #exportDurability: ExportDurability;
  /** Acknowledged bytes not yet covered by a finished fdatasync (written disclosures only). */
  #unsynced = false;
  #backgroundSync: Promise<void> | undefined;

  private constructor(options: AuditLogOptions, head: AuditHead, size: number) {
    this.path = options.path;
    this.#clock = options.clock ?? systemClock;
    this.#logger = (options.logger ?? silentLogger).child({ module: 'audit' });
    this.#io = options.io ?? nodeAuditIo;
    this.#recentCap = recentCapacity(options);
    this.#head = head;
    this.#size = size;
    this.#exportDurability = options.exportDurability ?? 'synced';
  }

  /**
   * Opens (creating it 0600 if absent) and verifies the whole chain (or, with deferVerification, its
   * last entry only: see verifyChain). A torn last line is cut off durably and an `audit.recovered`
   * entry records it; any other break throws AuditError AUDIT_INTEGRITY.
   */
  static async open(options: AuditLogOptions): Promise<AuditLog> {
    const { path } = options;
    await createIfAbsent(path);
    if (options.deferVerification === true) {
      const head = await headFromLastLine(path);
      if (head !== undefined) {
        const log = new AuditLog(options, head.head, head.bytes);
        if (head.bytes > 0) log.#unverified = head;
        return log;
      }
      // No whole entry at the end: a torn tail to repair, or damage to report, both as below.
    }
    const recent: AuditEntry[] = [];
    const cap = recentCapacity(options);
    let scan;
    try {
      scan = await scanChain(path, (entry) => {
        recent.push(entry);
        if (recent.length > cap * 2) recent.splice(0, recent.length - cap);
      });
    } catch (cause) {
      throw ioError(path, 'reading', cause);
    }
    const log = new AuditLog(options, scan.head, scan.verifiedBytes);
    log.#recent = recent.slice(-cap);
    const { result } = scan;
    if (result.ok) return log;
    if (result.problem !== 'truncated' || scan.problemRange === undefined) {
      throw brokenChain(path, result, 'Refusing to start on a broken audit log');
    }
    const cutBytes = scan.problemRange.end - scan.problemRange.start;
    await cutTornTail(path, scan.problemRange.start);
    log.#logger.warn(
      { path, line: result.line, bytes: cutBytes },
      'audit log had a torn last line (crash mid-append); cut it off',
    );
    await log.append({
      actor: 'system',
      action: 'audit.recovered',
      subject: 'audit:log',
      outcome: 'success',
      details: { line: result.line, truncatedBytes: cutBytes, reason: result.message },
    });
    return log;
  }

  get head(): AuditHead {
    return this.#head;
  }

  get stats(): AuditStats {
    return { ...this.#stats };
  }

  /**
   * Why every append is refused until a restart: a broken chain (found by verifyChain), a file changed
   * on disk outside keywright, or a failed write that could not be cut back off. Undefined while
   * appends work (a single failed write that was rolled back does not count: the next may succeed).
   */
  get refusal(): AuditError | undefined {
    return this.#broken;
  }

  /**
   * Verifies the chain up to the head open trusted (deferVerification), in the background: the file is
   * read in 64 KiB steps, each about 10 ms of hashing. On a break, every later append is refused
   * with AUDIT_INTEGRITY, the same code, line and problem open would have refused to start with.
   * Resolves with that error, or undefined when the chain is whole (at once if open verified it);
   * never rejects. Entries appended meanwhile chain onto the head and are not read again.
   */
  verifyChain(): Promise<AuditError | undefined> {
    this.#verification ??= this.#verifyDeferred();
    return this.#verification;
  }

  async #verifyDeferred(): Promise<AuditError | undefined> {
    const trusted = this.#unverified;
    if (trusted === undefined) return undefined;
    const older: AuditEntry[] = [];
    let scan: ChainScan;
    try {
      scan = await scanChain(
        this.path,
        (entry) => {
          older.push(entry);
          if (older.length > this.#recentCap * 2) older.splice(0, older.length - this.#recentCap);
        },
        { limit: trusted.bytes, signal: this.#stopVerification.signal },
      );
    } catch (cause) {
      if (this.#stopVerification.signal.aborted) return undefined; // closed meanwhile
      return this.#refuseFromNowOn(ioError(this.path, 'verifying', cause));
    }
    const { result } = scan;
    if (!result.ok) return this.#refuseFromNowOn(brokenChain(this.path, result, 'Refusing appends'));
    if (scan.head.hash !== trusted.head.hash || scan.verifiedBytes !== trusted.bytes) {
      return this.#refuseFromNowOn(
        new AuditError(
          'AUDIT_INTEGRITY',
          `audit log ${this.path} changed on disk outside keywright since it was opened ` +
            `(its chain now ends at seq ${scan.head.seq}, not ${trusted.head.seq}); refusing appends: restart the daemon to verify it`,
          { details: { path: this.path, seq: scan.head.seq, expected: trusted.head.seq } },
        ),
      );
    }
    this.#unverified = undefined;
    // The ring so far holds only entries appended since open: put the verified ones before them.
    this.#recent = [...older.slice(-this.#recentCap), ...this.#recent];
    if (this.#recent.length > this.#recentCap * 2)
      this.#recent.splice(0, this.#recent.length - this.#recentCap);
    this.#logger.info({ path: this.path, entries: result.entries }, 'audit log chain verified');
    return undefined;
  }

  #refuseFromNowOn(error: AuditError): AuditError {
    this.#broken ??= error;
    this.#logger.error(
      { path: this.path, code: error.code, ...error.details },
      `${error.message} (found after start-up; every operation that must be audited is refused)`,
    );
    return error;
  }

  async append(input: AuditInput, options?: AppendOptions): Promise<AuditEntry> {
    validateAuditInput(input);
    if (this.#closed) {
      throw new AuditError(
        'AUDIT_WRITE_FAILED',
        `audit log ${this.path} is closed; the operation was refused`,
        {
          details: { path: this.path },
          retryable: false,
        },
      );
    }
    const time = this.#clock.now().toISOString();
    return new Promise<AuditEntry>((resolve, reject) => {
      const early = options?.disclosure === true && this.#exportDurability === 'written';
      this.#pending.push({ input, time, early, resolve, reject });
      // Drain on a microtask so appends made in the same tick share the first write.
      this.#draining ??= Promise.resolve().then(() => this.#drain());
    });
  }

  /** The last `n` entries (1..MAX_AUDIT_QUERY_LIMIT), oldest first. */
  tail(n: number): Promise<AuditEntry[]> {
    return this.query({ limit: n });
  }

  /**
   * Matching entries, oldest first. With `since` or `afterSeq`: the first `limit` from that point
   * (page forward with afterSeq = last seq returned). Without: the most recent `limit`. Time filtering
   * assumes the log's times do not go backwards (they are taken in seq order from one clock).
   */
  async query(q: AuditQuery): Promise<AuditEntry[]> {
    checkLimit(q.limit, 'limit');
    const match = compileQuery(q);
    const start = startFilter(q);
    const first = this.#recent[0];
    // An empty ring is whole only for an empty log: after a deferred open it starts empty.
    const ringIsWhole = (first?.seq ?? this.#head.seq + 1) === 1;
    if (start !== undefined) {
      const ringCovers = ringIsWhole || (first !== undefined && start.beforeRing(first));
      const source = ringCovers ? this.#recent : this.#scanFile();
      return collectForward(source, start.test, match, q.limit);
    }
    const out: AuditEntry[] = [];
    for (let i = this.#recent.length - 1; i >= 0 && out.length < q.limit; i--) {
      const e = this.#recent[i]!;
      if (match(e)) out.push(e);
    }
    if (out.length === q.limit || ringIsWhole) return out.reverse();
    const window: AuditEntry[] = [];
    for await (const e of this.#scanFile()) {
      if (!match(e)) continue;
      window.push(e);
      if (window.length > q.limit) window.shift();
    }
    return window;
  }

  /** Waits for queued appends, then refuses new ones; stops a verification still running. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopVerification.abort();
    await this.#draining;
    await this.#backgroundSync;
    await this.#verification;
    await this.#dropHandle();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length > 0) await this.#commit(this.#pending.splice(0, MAX_BATCH));
    } finally {
      this.#draining = undefined;
    }
  }

  /** Settles every append of the batch; never throws, so the drain loop keeps going. */
  async #commit(batch: Pending[]): Promise<void> {
    const entries: AuditEntry[] = [];
    let { seq, hash } = this.#head;
    let size: number;
    try {
      for (const p of batch) {
        const entry = sealEntry(p.input, ++seq, p.time, hash);
        hash = entry.hash;
        entries.push(entry);
      }
      const data = Buffer.from(entries.map(serializeEntry).join(''), 'utf8');
      size = data.length;
      // A batch of written disclosures only is not synced here: that fdatasync runs beside the next writes.
      await this.#writeDurably(data, batch.every((p) => p.early) ? 'write' : 'write+sync');
    } catch (err) {
      this.#stats.failedBatches += 1;
      const error = isAppError(err) ? err : ioError(this.path, 'appending to', err);
      this.#logger.error(
        { path: this.path, code: error.code, entries: batch.length },
        'audit append failed; operations refused',
      );
      for (const p of batch) p.reject(error);
      return;
    }
    this.#size += size;
    this.#head = { seq, hash };
    this.#stats.appended += entries.length;
    this.#stats.batches += 1;
    this.#recent.push(...entries);
    if (this.#recent.length > this.#recentCap * 2)
      this.#recent.splice(0, this.#recent.length - this.#recentCap);
    batch.forEach((p, i) => p.resolve(entries[i]!));
  }

  async #writeDurably(data: Buffer, mode: 'write' | 'write+sync'): Promise<void> {
    if (this.#broken !== undefined) throw this.#broken;
    const fh = await this.#checkedHandle();
    try {
      await fh.write(data);
      if (mode === 'write+sync') await fh.sync(); // also covers written disclosures before it
    } catch (err) {
      await this.#rollBack(fh);
      await this.#dropHandle();
      throw err;
    }
    if (mode === 'write') this.#syncInBackground(fh);
  }

  /**
   * fdatasync after written disclosures, one at a time, again while more were written meanwhile. Their
   * appends have resolved and their secrets may be out: a failed sync cannot be rolled back, so every
   * later append is refused until a restart (which verifies the log and cuts a torn tail).
   */
  #syncInBackground(fh: AuditAppendHandle): void {
    this.#unsynced = true;
    this.#backgroundSync ??= (async () => {
      try {
        // A dropped handle was dropped by a failed commit, whose roll-back synced the file.
        while (this.#unsynced && this.#broken === undefined && this.#handle === fh) {
          this.#unsynced = false;
          await fh.sync();
        }
      } catch (cause) {
        this.#broken ??= new AuditError(
          'AUDIT_WRITE_FAILED',
          `audit log ${this.path}: fdatasync failed after entries were acknowledged; ` +
            'refusing further appends: restart the daemon so it can verify the log',
          { cause, details: { path: this.path }, retryable: false },
        );
        this.#logger.error({ path: this.path, code: this.#broken.code }, this.#broken.message);
      } finally {
        this.#backgroundSync = undefined;
      }
    })();
  }

  /**
   * The append handle, checked before each write: the path must still name the file it has open, and
   * the file must be exactly the acknowledged bytes long. A handle whose file was replaced or moved is
   * dropped and the path opened again once (as a new handle per commit would have), so a removed log
   * fails the write and is never silently recreated or written behind the operator's back.
   */
  async #checkedHandle(): Promise<AuditAppendHandle> {
    for (let fresh = this.#handle === undefined; ; fresh = true) {
      const fh = (this.#handle ??= await this.#io.openAppend(this.path));
      let size: number;
      try {
        size = await fh.size();
      } catch (err) {
        await this.#dropHandle();
        if (fresh) throw err;
        continue;
      }
      if (size !== this.#size) {
        await this.#dropHandle();
        this.#broken = new AuditError(
          'AUDIT_INTEGRITY',
          `audit log ${this.path} changed on disk outside keywright (${size} bytes, expected ${this.#size}); ` +
            'refusing to append: restart the daemon to verify it',
          { details: { path: this.path, size, expected: this.#size } },
        );
        throw this.#broken;
      }
      return fh;
    }
  }

  async #dropHandle(): Promise<void> {
    const fh = this.#handle;
    this.#handle = undefined;
    await fh?.close().catch(() => undefined); // after a successful sync, close cannot lose the data
  }

  /** Cuts a failed batch's bytes back off so the next append continues a clean chain. */
  async #rollBack(fh: { truncate(n: number): Promise<void>; sync(): Promise<void> }): Promise<void> {
    try {
      await fh.truncate(this.#size);
      await fh.sync();
    } catch (cause) {
      this.#broken = new AuditError(
        'AUDIT_WRITE_FAILED',
        `audit log ${this.path} may hold a partial write that could not be removed; ` +
          'refusing further appends: restart the daemon so it can verify and repair the log',
        { cause, details: { path: this.path }, retryable: false },
      );
    }
  }

  /** Entries on disk up to the acknowledged size: a consistent snapshot while appends continue. */
  async *#scanFile(): AsyncGenerator<AuditEntry> {
    for await (const l of readLogLines(this.path, this.#size)) {
      try {
        yield JSON.parse(l.text) as AuditEntry;
      } catch (cause) {
        throw new AuditError(
          'AUDIT_INTEGRITY',
          `audit log ${this.path}, line ${l.line}: not JSON; it changed on disk`,
          {
            cause,
            details: { path: this.path, line: l.line },
          },
        );
      }
    }
  }
}

function recentCapacity(options: AuditLogOptions): number {
  const n = options.recentEntries ?? DEFAULT_RECENT;
  return Number.isSafeInteger(n) && n >= 1 ? n : DEFAULT_RECENT;
}

async function createIfAbsent(path: string): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'ax', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw ioError(path, 'creating', err);
  }
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsyncDir(dirname(path));
}

/** Truncation changes only the inode, so an fsync of the file makes it durable. */
async function cutTornTail(path: string, length: number): Promise<void> {
  try {
    const fh = await open(path, 'r+');
    try {
      await fh.truncate(length);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (cause) {
    throw ioError(path, 'repairing', cause);
  }
}

/**
 * Head and size from the last line alone, when it is a whole entry that checks out on its own; undefined
 * when it is not (torn or damaged), for open's full scan to repair or report.
 */
async function headFromLastLine(path: string): Promise<{ head: AuditHead; bytes: number } | undefined> {
  let tail;
  try {
    tail = await readLastLine(path);
  } catch (cause) {
    throw ioError(path, 'reading', cause);
  }
  if (tail.last === undefined) return { head: { seq: 0, hash: GENESIS_HASH }, bytes: 0 };
  const checked = checkEntryLine(tail.last);
  if (!checked.ok) return undefined;
  return { head: { seq: checked.entry.seq, hash: checked.entry.hash }, bytes: tail.size };
}

function brokenChain(path: string, result: AuditVerifyFailure, refusing: string): AuditError {
  return new AuditError(
    'AUDIT_INTEGRITY',
    `audit log ${path}, line ${result.line}: ${result.problem}: ${result.message}. ` +
      `${refusing}: keep a copy for investigation, then restore the log from a backup.`,
    { details: { path, line: result.line, seq: result.seq, problem: result.problem } },
  );
}

function ioError(path: string, doing: string, cause: unknown): AuditError {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new AuditError(
    'AUDIT_WRITE_FAILED',
    `${doing} the audit log ${path} failed${errno === undefined ? '' : ` (${errno})`}; the operation was refused`,
    { cause, details: { path, ...(errno === undefined ? {} : { errno }) } },
  );
}

function checkLimit(n: number, field: string): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_AUDIT_QUERY_LIMIT) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `${field} must be an integer from 1 to ${MAX_AUDIT_QUERY_LIMIT}`,
      {
        details: { field, value: n },
      },
    );
  }
}

function textFilter(pattern: string | undefined): (value: string) => boolean {
  if (pattern === undefined) return () => true;
  if (pattern.endsWith('*')) {
    const prefix = pattern.slice(0, -1);
    return (value) => value.startsWith(prefix);
  }
  return (value) => value === pattern;
}

function compileQuery(q: AuditQuery): (e: AuditEntry) => boolean {
  if (q.outcome !== undefined && !AUDIT_OUTCOMES.includes(q.outcome)) {
    throw new ValidationError('INVALID_ARGUMENT', 'outcome must be success, failure or denied', {
      details: { field: 'outcome' },
    });
  }
  const action = textFilter(q.action);
  const subject = textFilter(q.subject);
  return (e) =>
    action(e.action) &&
    subject(e.subject) &&
    (q.actor === undefined || e.actor === q.actor) &&
    (q.outcome === undefined || e.outcome === q.outcome);
}

interface StartFilter {
  readonly test: (e: AuditEntry) => boolean;
  /** Does the in-memory ring, starting at `first`, hold every entry this filter can accept? */
  readonly beforeRing: (first: AuditEntry) => boolean;
}

function startFilter(q: AuditQuery): StartFilter | undefined {
  if (q.since === undefined && q.afterSeq === undefined) return undefined;
  let sinceMs = -Infinity;
  if (q.since !== undefined) {
    sinceMs = typeof q.since === 'string' ? Date.parse(q.since) : q.since.getTime();
    if (Number.isNaN(sinceMs)) {
      throw new ValidationError('INVALID_ARGUMENT', 'since must be an ISO-8601 time', {
        details: { field: 'since' },
      });
    }
  }
  const afterSeq = q.afterSeq ?? 0;
  if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) {
    throw new ValidationError('INVALID_ARGUMENT', 'afterSeq must be a non-negative integer', {
      details: { field: 'afterSeq' },
    });
  }
  return {
    test: (e) => e.seq > afterSeq && Date.parse(e.time) >= sinceMs,
    // Entries before the ring have smaller seqs and (times not going backwards) no later times.
    beforeRing: (first) =>
      (q.afterSeq !== undefined && first.seq <= afterSeq + 1) ||
      (q.since !== undefined && Date.parse(first.time) < sinceMs),
  };
}

async function collectForward(
  source: Iterable<AuditEntry> | AsyncIterable<AuditEntry>,
  started: (e: AuditEntry) => boolean,
  match: (e: AuditEntry) => boolean,
  limit: number,
): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for await (const e of source) {
    if (!started(e) || !match(e)) continue;
    out.push(e);
    if (out.length === limit) break;
  }
  return out;
}
