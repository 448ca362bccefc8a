import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { StoreError } from '../../core/errors.js';
import { fsyncDir } from '../../core/fs-durable.js';
import type { Logger } from '../../core/logger.js';
import { describe } from '../describe-error.js';
import type { StoredRecord } from '../port.js';

/**
 * The store's write-ahead journal: one line per flush, appended and fdatasync'd, so a commit costs one
 * small append whatever the size of the store (rewriting the whole document per flush grew with it:
 * ~10 ms per 2 MB here). The document is rewritten only when the journal has grown past a threshold
 * (compaction, see open.ts), and a clean close leaves no journal at all.
 *
 * Line format: `<crc32 of the JSON, 8 hex>\t<JSON>\n`, the JSON being
 * `{"s":schemaVersion,"r":[[collection,id,record|null],…],"b":[[blobKey,base64|null],…]}` (null =
 * deleted). Replaying a line sets each record and blob to its final value in that flush, so replay is
 * idempotent: replaying lines already folded into the document changes nothing.
 *
 * A line whose fdatasync did not return was never acknowledged: a torn or unchecksummed LAST line is cut
 * off at open (with a warning). A bad line followed by more lines is damage, and the store refuses to
 * open without touching anything.
 */

export const JOURNAL_FILE = 'keywright.journal';
/** The segment being folded into the document while new flushes go to a fresh JOURNAL_FILE. */
export const JOURNAL_COMPACTING = 'keywright.journal.compacting';

export interface JournalEntry {
  readonly schemaVersion: number;
  readonly records: ReadonlyArray<readonly [collection: string, id: string, record: StoredRecord | null]>;
  readonly blobs: ReadonlyArray<readonly [key: string, bytes: Buffer | null]>;
}

export function encodeJournalEntry(entry: JournalEntry): Buffer {
  const json = JSON.stringify({
    s: entry.schemaVersion,
    r: entry.records,
    b: entry.blobs.map(([key, bytes]) => [key, bytes === null ? null : bytes.toString('base64')]),
  });
  const body = Buffer.from(json, 'utf8');
  const crc = crc32(body).toString(16).padStart(8, '0');
  return Buffer.concat([Buffer.from(`${crc}\t`), body, NEWLINE]);
}

const NEWLINE = Buffer.from('\n');

export interface ReadJournal {
  readonly entries: JournalEntry[];
  /** Bytes of whole, valid lines (the file is cut back to this when a torn tail was found). */
  readonly size: number;
}

/** Reads a journal segment; an absent file is an empty journal. Cuts off an unacknowledged torn tail. */
export async function readJournal(path: string, logger: Logger): Promise<ReadJournal> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], size: 0 };
    throw new StoreError('STORE_IO', `cannot read ${path}: ${describe(cause)}`, {
      cause,
      details: { file: path },
    });
  }
  const entries: JournalEntry[] = [];
  let pos = 0;
  let line = 0;
  while (pos < bytes.length) {
    line++;
    const end = bytes.indexOf(0x0a, pos);
    const entry = end < 0 ? undefined : parseLine(bytes.subarray(pos, end));
    if (entry === undefined) {
      // Appends are serialized and each waits for the previous fdatasync: only the last can be torn.
      const isLast = end < 0 || end === bytes.length - 1;
      if (!isLast) {
        throw new StoreError(
          'STORE_CORRUPT',
          `store journal ${path} is damaged at line ${line} (byte ${pos}), with more lines after it. keywright left it untouched; restore the data directory from a backup`,
          { details: { file: path, line } },
        );
      }
      await cutTornTail(path, pos, bytes.length - pos);
      logger.warn(
        { file: path, line, bytes: bytes.length - pos },
        'cut a torn last journal line (a flush interrupted before it was acknowledged)',
      );
      break;
    }
    entries.push(entry);
    pos = end + 1;
  }
  return { entries, size: pos };
}

function parseLine(line: Buffer): JournalEntry | undefined {
  const tab = line.indexOf(0x09);
  if (tab !== 8) return undefined;
  const body = line.subarray(9);
  if (crc32(body).toString(16).padStart(8, '0') !== line.subarray(0, 8).toString('latin1')) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const { s, r, b } = raw as { s?: unknown; r?: unknown; b?: unknown };
  if (typeof s !== 'number' || !Array.isArray(r) || !Array.isArray(b)) return undefined;
  return {
    schemaVersion: s,
    records: r as JournalEntry['records'],
    blobs: (b as [string, string | null][]).map(([key, text]) => [
      key,
      text === null ? null : Buffer.from(text, 'base64'),
    ]),
  };
}

async function cutTornTail(path: string, size: number, torn: number): Promise<void> {
  try {
    const fh = await open(path, 'r+');
    try {
      await fh.truncate(size);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (cause) {
    throw new StoreError(
      'STORE_IO',
      `cannot cut the torn last line (${torn} bytes) off ${path}: ${describe(cause)}`,
      { cause, details: { file: path } },
    );
  }
}

/** Appends lines durably; a failed append is cut back off so the file only ever holds whole lines. */
export type JournalAppend = (fh: FileHandle, data: Buffer) => Promise<void>;

export const appendDurably: JournalAppend = async (fh, data) => {
  await fh.write(data);
  await fh.datasync();
};

export class JournalWriter {
  readonly path: string;
  readonly #append: JournalAppend;
  #fh: FileHandle;
  #size: number;
  #broken: Error | undefined;

  private constructor(path: string, fh: FileHandle, size: number, append: JournalAppend) {
    this.path = path;
    this.#fh = fh;
    this.#size = size;
    this.#append = append;
  }

  /** Opens (creating, durably) the segment for appending; `size` is its length of whole lines. */
  static async open(
    path: string,
    size: number,
    append: JournalAppend = appendDurably,
  ): Promise<JournalWriter> {
    const fh = await open(path, 'a', 0o600);
    if (size === 0) {
      await fh.sync();
      await fsyncDir(dirname(path));
    }
    return new JournalWriter(path, fh, size, append);
  }

  get size(): number {
    return this.#size;
  }

  async append(data: Buffer): Promise<void> {
    if (this.#broken) throw this.#broken;
    try {
      await this.#append(this.#fh, data);
    } catch (err) {
      try {
        await this.#fh.truncate(this.#size);
        await this.#fh.sync();
      } catch (cause) {
        this.#broken = new StoreError(
          'STORE_IO',
          `store journal ${this.path} may end in a partial write that could not be cut off (${describe(cause)}); restart keywright to repair it`,
          { cause, details: { file: this.path } },
        );
      }
      throw err;
    }
    this.#size += data.length;
  }

  /** Renames the segment (it stays open for nobody: the caller opens a new one). */
  async retire(to: string): Promise<void> {
    await this.#fh.close();
    await rename(this.path, to);
    await fsyncDir(dirname(to));
  }

  async close(): Promise<void> {
    await this.#fh.close();
  }

  /** Closes and removes the segment: its content is in the document now. */
  async discard(): Promise<void> {
    await this.#fh.close().catch(() => undefined);
    await removeJournal(this.path);
  }
}

export async function removeJournal(path: string): Promise<void> {
  await rm(path, { force: true });
  await fsyncDir(dirname(path));
}
