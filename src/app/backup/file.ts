import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../../core/errors.js';
import { fsyncDir, pathExists } from '../../core/fs-durable.js';
import { decodeBackup, type BackupHeader, type DecodedBackup } from './format.js';

/**
 * Backup files on disk: `backup verify` reads one, `backup create` writes one. Neither holds a backup in
 * memory: bytes go from the source to a temp file and from the file through the decoder as streams, so
 * a backup of any size costs a few MiB (the decoder's longest line, 2 MiB, and stream buffers).
 */

/** Refuses an existing FILE unless `force`: checked before asking the daemon, and again before the rename. */
export async function assertBackupTargetFree(path: string, force: boolean): Promise<void> {
  if (force || !(await pathExists(path))) return;
  throw new AppError('BACKUP_TARGET_EXISTS', `${path} exists; choose another file or pass --force`, {
    details: { file: path },
  });
}

/**
 * Opens a backup file for reading: INVALID_ARGUMENT (naming it) when it cannot be opened or is not a
 * regular file, so a directory or a permission problem is not reported as a damaged backup. The stream
 * reads from the handle that was checked and closes it when it ends or is destroyed.
 */
export async function openBackupFile(
  path: string,
  o: { readonly signal?: AbortSignal } = {},
): Promise<Readable> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    if (!(await fh.stat()).isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
  } catch (err) {
    await fh?.close().catch(() => undefined);
    throw new AppError(
      'INVALID_ARGUMENT',
      `backup file ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err, details: { field: 'file', file: path } },
    );
  }
  return fh.createReadStream(o.signal === undefined ? {} : { signal: o.signal });
}

/**
 * Checks a backup file offline, streaming it through the decoder (every digest, the trailer); throws
 * INVALID_ARGUMENT when it cannot be read, BACKUP_INVALID when it is not a whole backup. `name` is what
 * the errors call it (default: the path).
 */
export async function verifyBackupFile(
  path: string,
  o: { readonly name?: string; readonly signal?: AbortSignal } = {},
): Promise<DecodedBackup> {
  const stream = await openBackupFile(path, o);
  return decodeBackup(o.name ?? path, stream);
}

export interface SaveBackupOptions {
  /** Replace FILE if it exists. */
  readonly force?: boolean;
  /** Aborts the download or the check; the temp file is removed and FILE stays as it was. */
  readonly signal?: AbortSignal;
  /** What errors call the incoming backup (e.g. "the backup the daemon sent"). */
  readonly name?: string;
}

export interface SavedBackup {
  readonly file: string;
  /** Bytes on disk (gzip). */
  readonly size: number;
  readonly header: BackupHeader;
  /** Uncompressed bytes of the files it holds. */
  readonly bytes: number;
}

/**
 * Streams a backup into FILE: a temp file `.FILE.partial-<hex>` beside it (0600) is created first, so
 * a directory we cannot write to fails before `openSource` asks the daemon for anything. The source is
 * piped into it (never held whole), fsync'd, verified by reading it back as `backup verify` does, then
 * renamed over FILE and the directory fsync'd. On any failure (a broken-off source, an error answer, a
 * bad backup, an abort) the temp file is removed and FILE is untouched.
 */
export async function saveBackup(
  path: string,
  openSource: (signal: AbortSignal) => Promise<Readable | AsyncIterable<Buffer>>,
  o: SaveBackupOptions = {},
): Promise<SavedBackup> {
  const signal = o.signal ?? new AbortController().signal;
  const force = o.force === true;
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.partial-${randomBytes(6).toString('hex')}`);
  signal.throwIfAborted();
  const fh = await open(temp, 'wx', 0o600);
  let closed = false;
  try {
    const source = await openSource(signal);
    await pipeline(source, into(fh), { signal });
    await fh.sync();
    const { size } = await fh.stat();
    await fh.close();
    closed = true;
    const { header, bytes } = await verifyBackupFile(temp, {
      name: o.name ?? path,
      signal,
    });
    signal.throwIfAborted();
    // The target may have appeared while we downloaded.
    await assertBackupTargetFree(path, force);
    await rename(temp, path);
    await fsyncDir(dir);
    return { file: path, size, header, bytes };
  } catch (err) {
    if (!closed) await fh.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    // An abort surfaces as whatever it broke (a reset socket, a truncated read); say what happened.
    if (signal.aborted) throw signal.reason;
    throw err;
  }
}

/**
 * A Writable onto a file handle we keep: fh.createWriteStream() closes the handle when it ends (even
 * with autoClose off, once destroyed), and we need it open to fsync it.
 */
function into(fh: FileHandle): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      writeAll(fh, chunk).then(() => done(), done);
    },
  });
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let rest = data;
  while (rest.length > 0) rest = rest.subarray((await fh.write(rest)).bytesWritten);
}
