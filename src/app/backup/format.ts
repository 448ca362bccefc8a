import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { AppError } from '../../core/errors.js';
import { isBlobKey } from '../../store/names.js';

/**
 * The backup file (docs/storage.md "Backups"): gzip of JSON lines, one self-describing stream.
 *
 *   {"format":"keywright-backup","version":1,…header…,"files":[paths]}
 *   {"path":"keywright.json","mode":384,"size":N,"sha256":"…","parts":k}   then k lines {"data":"<base64>"}
 *   … one such group per file, in the header's order …
 *   {"end":true,"files":n,"sha256":"<SHA-256 of every byte above, uncompressed>"}
 *
 * Each file carries its own digest, and the trailer's digest covers the header, every file line and every
 * data line, so an edit anywhere, a reorder or a cut is found (gzip's CRC catches damage to the
 * compressed bytes first). Files are split into parts of at most PART_BYTES so no line gets huge.
 */

export const BACKUP_FORMAT = 'keywright-backup';
export const BACKUP_VERSION = 1;
const PART_BYTES = 1024 * 1024;
/** A part's base64 line plus its JSON; anything longer is not ours. */
const MAX_LINE_BYTES = 2 * PART_BYTES;

export interface BackupHeader {
  readonly format: typeof BACKUP_FORMAT;
  readonly version: typeof BACKUP_VERSION;
  readonly createdAt: string;
  /** The keywright version that wrote it. */
  readonly keywright: string;
  readonly storeSchemaVersion: number;
  readonly records: number;
  readonly blobs: number;
  /** The audit log's last entry in the backup: the `backup.create` entry of this backup. */
  readonly audit: { readonly seq: number; readonly hash: string };
  /** Which KEK opens the sealed blobs (from kek.json); the KEK itself is never in a backup. */
  readonly kek: { readonly source: string; readonly id: string };
  readonly files: readonly string[];
}

export interface BackupFileMeta {
  readonly path: string;
  readonly mode: number;
  readonly size: number;
  readonly sha256: string;
}

/** A file to write into a backup: its metadata and its bytes, produced once, in order. */
export interface BackupFileSource extends BackupFileMeta {
  chunks(): AsyncIterable<Buffer>;
}

export function fileFromBuffer(path: string, mode: number, data: Buffer): BackupFileSource {
  return {
    path,
    mode,
    size: data.length,
    sha256: sha256Hex(data),
    async *chunks() {
      yield data;
    },
  };
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Modes a restored file may get: private, or world-readable for public certificates (ca.pem). */
const MODES: readonly number[] = [0o600, 0o644];
/** The data-dir files a backup may hold. Never master.key, master.key.next or the lock. */
const TOP_LEVEL_FILES: readonly string[] = ['keywright.json', 'kek.json', 'audit.log', 'ca.pem'];
const REQUIRED_FILES: readonly string[] = ['keywright.json', 'kek.json', 'audit.log'];
const KEK_FILES = /^master\.key(\.next)?$/;

/** Why `path` may not be in a backup, or undefined when it may. */
export function backupPathProblem(path: string): string | undefined {
  if (KEK_FILES.test(path)) return 'a keywright backup never holds the master key';
  if (TOP_LEVEL_FILES.includes(path)) return undefined;
  if (path.startsWith('blobs/')) {
    if (isBlobKey(path.slice('blobs/'.length))) return undefined;
  }
  return 'it is not a data-directory file keywright backs up';
}

/**
 * The uncompressed lines of a backup, header to trailer. The caller gzips them (node:zlib createGzip).
 * Refuses a file the header does not list, in its order, or that the format does not allow.
 */
export async function* encodeBackup(
  header: BackupHeader,
  files: AsyncIterable<BackupFileSource> | Iterable<BackupFileSource>,
): AsyncGenerator<Buffer> {
  for (const path of header.files) {
    const problem = backupPathProblem(path);
    if (problem !== undefined) throw new AppError('INTERNAL', `backup: ${path}: ${problem}`);
  }
  const digest = createHash('sha256');
  const line = (value: unknown): Buffer => {
    const bytes = Buffer.from(`${JSON.stringify(value)}\n`, 'utf8');
    digest.update(bytes);
    return bytes;
  };
  yield line(header);
  let index = 0;
  for await (const file of files) {
    if (header.files[index] !== file.path || !MODES.includes(file.mode)) {
      throw new AppError('INTERNAL', `backup: ${file.path} is not the file the header lists at ${index}`);
    }
    index++;
    yield line({
      path: file.path,
      mode: file.mode,
      size: file.size,
      sha256: file.sha256,
      parts: Math.ceil(file.size / PART_BYTES),
    });
    let written = 0;
    for await (const part of parts(file.chunks())) {
      written += part.length;
      yield line({ data: part.toString('base64') });
    }
    if (written !== file.size) {
      throw new AppError('INTERNAL', `backup: ${file.path} gave ${written} bytes, expected ${file.size}`);
    }
  }
  if (index !== header.files.length) {
    throw new AppError('INTERNAL', `backup: ${header.files.length - index} listed files were not given`);
  }
  const end = { end: true, files: index, sha256: digest.digest('hex') };
  yield Buffer.from(`${JSON.stringify(end)}\n`, 'utf8');
}

/** Re-cuts chunks of any size into parts of exactly PART_BYTES (the last one shorter). */
async function* parts(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let held: Buffer[] = [];
  let heldBytes = 0;
  for await (const chunk of chunks) {
    held.push(chunk);
    heldBytes += chunk.length;
    while (heldBytes >= PART_BYTES) {
      const all = held.length === 1 ? held[0]! : Buffer.concat(held);
      yield all.subarray(0, PART_BYTES);
      held = [all.subarray(PART_BYTES)];
      heldBytes -= PART_BYTES;
    }
  }
  if (heldBytes > 0) yield held.length === 1 ? held[0]! : Buffer.concat(held);
}

/** Where decoded files go; `open` is called once per file, in order, before its bytes. */
export interface BackupSink {
  open(meta: BackupFileMeta): Promise<BackupFileWriter>;
}

export interface BackupFileWriter {
  write(data: Buffer): Promise<void>;
  /** Called once every byte is written and its digest checked. */
  close(): Promise<void>;
  /** Called instead of close when the backup turns out to be bad. */
  abort(): Promise<void>;
}

/** Decodes without writing anything: a verification pass. */
export const discardSink: BackupSink = {
  open: async () => ({
    write: async () => undefined,
    close: async () => undefined,
    abort: async () => undefined,
  }),
};

export interface DecodedBackup {
  readonly header: BackupHeader;
  /** Uncompressed bytes. */
  readonly bytes: number;
}

/**
 * Reads a backup (the gzip bytes, as chunks), checking everything: the gzip stream, the header, every
 * file's path, mode, size and digest, the file list, the trailer's digest over everything, and that
 * nothing follows the trailer. Each file's bytes go to `sink` as they are checked; on any problem the
 * open file is aborted and AppError BACKUP_INVALID names `name`, the line and what is wrong.
 */
export async function decodeBackup(
  name: string,
  gzipChunks: AsyncIterable<Buffer>,
  sink: BackupSink = discardSink,
): Promise<DecodedBackup> {
  const lines = jsonLines(name, gzipChunks);
  try {
    return await decodeLines(name, lines, sink);
  } finally {
    // A bad line stops us before the end: return() runs jsonLines' finally, which closes the source.
    await lines.return(undefined);
  }
}

async function decodeLines(
  name: string,
  lines: AsyncGenerator<Buffer>,
  sink: BackupSink,
): Promise<DecodedBackup> {
  const digest = createHash('sha256');
  let lineNo = 0;
  const bad = (what: string, cause?: unknown) =>
    new AppError('BACKUP_INVALID', `${name} is not a usable keywright backup: ${what}; nothing was written`, {
      ...(cause === undefined ? {} : { cause }),
      details: { file: name, ...(lineNo > 0 ? { line: lineNo } : {}) },
    });
  const next = async (what: string): Promise<Record<string, unknown>> => {
    let r: IteratorResult<Buffer>;
    try {
      r = await lines.next();
    } catch (cause) {
      throw bad((cause as Error).message, cause);
    }
    lineNo++;
    if (r.done === true) throw bad(`it ends where ${what} should be (truncated)`);
    let value: unknown;
    try {
      value = JSON.parse(r.value.toString('utf8'));
    } catch {
      throw bad(`line ${lineNo} is not JSON`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw bad(`line ${lineNo} is not a JSON object`);
    (value as { [RAW]?: Buffer })[RAW] = r.value;
    return value as Record<string, unknown>;
  };
  const consume = (value: Record<string, unknown>) => {
    const raw = value as { [RAW]?: Buffer };
    digest.update(raw[RAW]!);
    digest.update(NEWLINE);
    delete raw[RAW];
  };

  const first = await next('the header');
  if (first.format !== BACKUP_FORMAT) throw bad('it has no keywright-backup header');
  if (first.version !== BACKUP_VERSION) {
    throw bad(
      `it is format version ${JSON.stringify(first.version)}; this keywright reads ${BACKUP_VERSION}`,
    );
  }
  const header = checkHeader(first, bad);
  consume(first);

  let bytes = 0;
  for (const [index, expected] of header.files.entries()) {
    const meta = await next(`file ${expected}`);
    if (meta.path !== expected) {
      throw bad(`line ${lineNo} should start file ${expected} (number ${index + 1} of the header's list)`);
    }
    const size = meta.size;
    const parts = meta.parts;
    if (!isCount(size) || !isCount(parts) || parts !== Math.ceil(size / PART_BYTES))
      throw bad(`${expected}: size or parts is malformed`);
    if (typeof meta.mode !== 'number' || !MODES.includes(meta.mode))
      throw bad(`${expected}: mode is not allowed`);
    if (typeof meta.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(meta.sha256))
      throw bad(`${expected}: sha256 is malformed`);
    consume(meta);
    const fileMeta: BackupFileMeta = { path: expected, mode: meta.mode, size, sha256: meta.sha256 };
    const writer = await sink.open(fileMeta);
    try {
      const hash = createHash('sha256');
      let got = 0;
      for (let p = 0; p < parts; p++) {
        const part = await next(`part ${p + 1} of ${expected}`);
        if (typeof part.data !== 'string' || !BASE64.test(part.data) || Object.keys(part).length !== 1)
          throw bad(`line ${lineNo} should be part ${p + 1} of ${expected}`);
        consume(part);
        const data = Buffer.from(part.data, 'base64');
        got += data.length;
        if (got > size) throw bad(`${expected} holds more than its ${size} bytes`);
        hash.update(data);
        await writer.write(data);
      }
      if (got !== size) throw bad(`${expected} holds ${got} bytes, its header says ${size}`);
      if (hash.digest('hex') !== meta.sha256)
        throw bad(`${expected} does not match its sha256 (edited or damaged)`);
      bytes += size;
    } catch (err) {
      await writer.abort();
      throw err;
    }
    await writer.close();
  }

  const end = await next('the trailer');
  if (end.end !== true)
    throw bad(`line ${lineNo} should be the trailer: the file list and the content disagree`);
  if (end.files !== header.files.length) throw bad('the trailer counts a different number of files');
  if (end.sha256 !== digest.digest('hex'))
    throw bad('the trailer digest does not match (edited or reordered)');
  let extra: IteratorResult<Buffer>;
  try {
    extra = await lines.next();
  } catch (cause) {
    throw bad((cause as Error).message, cause);
  }
  if (extra.done !== true) throw bad('something follows the trailer');
  return { header, bytes };
}

const RAW = Symbol('raw line');
const NEWLINE = Buffer.from('\n');
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function checkHeader(h: Record<string, unknown>, bad: (what: string) => AppError): BackupHeader {
  const field = (name: string, ok: boolean) => {
    if (!ok) throw bad(`header field ${name} is missing or malformed`);
  };
  field('createdAt', typeof h.createdAt === 'string' && !Number.isNaN(Date.parse(h.createdAt)));
  field('keywright', typeof h.keywright === 'string');
  field('storeSchemaVersion', isCount(h.storeSchemaVersion) && h.storeSchemaVersion > 0);
  field('records', isCount(h.records));
  field('blobs', isCount(h.blobs));
  const audit = h.audit as { seq?: unknown; hash?: unknown } | undefined;
  field(
    'audit',
    typeof audit === 'object' && audit !== null && isCount(audit.seq) && typeof audit.hash === 'string',
  );
  const kek = h.kek as { source?: unknown; id?: unknown } | undefined;
  field(
    'kek',
    typeof kek === 'object' && kek !== null && typeof kek.source === 'string' && typeof kek.id === 'string',
  );
  field('files', Array.isArray(h.files) && h.files.every((p) => typeof p === 'string'));
  const files = h.files as string[];
  for (const path of files) {
    const problem = backupPathProblem(path);
    if (problem !== undefined) throw bad(`it lists ${JSON.stringify(path.slice(0, 80))}: ${problem}`);
  }
  if (new Set(files).size !== files.length) throw bad('its file list names a file twice');
  for (const required of REQUIRED_FILES) {
    if (!files.includes(required)) throw bad(`it has no ${required}`);
  }
  return h as unknown as BackupHeader;
}

/** Gunzips and splits into lines (without their newline); a line must end in one. */
async function* jsonLines(name: string, gzipChunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const source = gzipChunks instanceof Readable ? gzipChunks : Readable.from(gzipChunks);
  const gunzip = source.pipe(createGunzip());
  source.on('error', (err) => gunzip.destroy(err));
  let carry: Buffer[] = [];
  let carried = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      let from = 0;
      for (;;) {
        const nl = chunk.indexOf(0x0a, from);
        if (nl === -1) {
          carry.push(chunk.subarray(from));
          carried += chunk.length - from;
          if (carried > MAX_LINE_BYTES) throw new Error(`a line is longer than ${MAX_LINE_BYTES} bytes`);
          break;
        }
        carry.push(chunk.subarray(from, nl));
        yield carry.length === 1 ? carry[0]! : Buffer.concat(carry);
        carry = [];
        carried = 0;
        from = nl + 1;
      }
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'Z_BUF_ERROR') throw new Error('the gzip stream ends early (truncated)', { cause: err });
    if (code === 'Z_DATA_ERROR')
      throw new Error('it is not gzip data, or its compressed bytes are damaged', { cause: err });
    throw err;
  } finally {
    // pipe() never ends its source when the destination stops: a file stream would keep its descriptor.
    gunzip.destroy();
    source.destroy();
  }
  if (carried > 0) throw new Error(`${name} ends in the middle of a line (truncated)`);
}
