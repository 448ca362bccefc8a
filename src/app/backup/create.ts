import { open, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { AuditLog } from '../../audit/audit-log.js';
import { readLogLines } from '../../audit/lines.js';
import { canSnapshot, type Store, type StoreSnapshot } from '../../store/port.js';
import { KEK_STATE_FILE, readKekStateFile } from '../../keys/software/kek-state.js';
import { appPaths } from '../paths.js';
import { VERSION } from '../version.js';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  encodeBackup,
  fileFromBuffer,
  type BackupFileSource,
  type BackupHeader,
} from './format.js';

export interface BackupSourceOptions {
  readonly dataDir: string;
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly logger: Logger;
}

export interface OpenedBackup {
  readonly header: BackupHeader;
  /** A name for the file, from the snapshot time. */
  readonly filename: string;
  /** The gzip bytes; reading it to the end (or destroying it) releases the store snapshot. */
  readonly body: Readable;
}

const AUDIT_READ_BYTES = 1024 * 1024;

/**
 * A consistent backup of a running daemon's data directory: the store as of one commit (its snapshot:
 * the document and the sealed blobs, never plaintext), then a `backup.create` audit entry, then the
 * audit log up to and including that entry, kek.json (which KEK opens it, no key) and ca.pem. Never
 * master.key: without the KEK the backup opens nothing, by design.
 *
 * Fail closed: if the audit entry cannot be written, no backup is handed out. Writers wait only while
 * the snapshot copies the record maps; the blobs and the audit log are read while they go on.
 */
export async function openBackup(
  o: BackupSourceOptions,
  by: { readonly actor: string; readonly requestId?: string },
): Promise<OpenedBackup> {
  if (!canSnapshot(o.store)) {
    throw new AppError('INTERNAL', 'this store backend cannot take snapshots for a backup');
  }
  const createdAt = o.clock.now().toISOString();
  const snapshot = await o.store.snapshot();
  try {
    const kek = await readKekStateFile(o.dataDir);
    if (kek === undefined) {
      throw new AppError(
        'DAEMON_NOT_INITIALIZED',
        `${o.dataDir} has no ${KEK_STATE_FILE}: nothing to back up`,
      );
    }
    const { state: kekState, bytes: kekJson } = kek;
    const caPem = await readFile(appPaths(o.dataDir).rootCertificate).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    const entry = await o.audit.append({
      actor: by.actor,
      action: 'backup.create',
      subject: 'backup',
      outcome: 'success',
      ...(by.requestId === undefined ? {} : { requestId: by.requestId }),
      details: { records: snapshot.records, blobs: snapshot.blobs, schemaVersion: snapshot.schemaVersion },
    });
    const auditFile = await auditPrefix(o.audit.path, entry.seq, entry.hash);
    const extra: BackupFileSource[] = [auditFile, fileFromBuffer(KEK_STATE_FILE, 0o600, kekJson)];
    if (caPem !== undefined) extra.push(fileFromBuffer('ca.pem', 0o644, caPem));
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      createdAt,
      keywright: VERSION,
      storeSchemaVersion: snapshot.schemaVersion,
      records: snapshot.records,
      blobs: snapshot.blobs,
      audit: { seq: entry.seq, hash: entry.hash },
      kek: { source: kekState.source, id: kekState.primary },
      files: [...snapshot.paths, ...extra.map((f) => f.path)],
    };
    async function* files(): AsyncGenerator<BackupFileSource> {
      for await (const f of snapshot.files()) yield fileFromBuffer(f.path, f.mode, f.data);
      yield* extra;
    }
    const lines = releasing(snapshot, encodeBackup(header, files()));
    const source = Readable.from(lines);
    const body = source.pipe(createGzip());
    source.on('error', (err) => body.destroy(err));
    // pipe() does not pass a destroy upstream: a client that goes away must still end the reading.
    body.on('close', () => {
      source.destroy();
      snapshot.release();
    });
    o.logger.info(
      { records: snapshot.records, blobs: snapshot.blobs, auditSeq: entry.seq, actor: by.actor },
      'backup snapshot taken',
    );
    return {
      header,
      filename: `keywright-${createdAt.replace(/[:.]/g, '').replace(/-/g, '')}.kwbackup`,
      body,
    };
  } catch (err) {
    snapshot.release();
    throw err;
  }
}

async function* releasing(snapshot: StoreSnapshot, lines: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield* lines;
  } finally {
    snapshot.release();
  }
}

/**
 * The audit log up to the end of the entry `seq` (appends go on meanwhile): the log only grows, so that
 * prefix never changes, and it is read twice, once for its digest and once into the backup.
 */
async function auditPrefix(path: string, seq: number, hash: string): Promise<BackupFileSource> {
  let size: number | undefined;
  const marker = `{"seq":${seq},`;
  for await (const line of readLogLines(path)) {
    if (!line.text.startsWith(marker)) continue;
    if ((JSON.parse(line.text) as { hash?: unknown }).hash !== hash) break;
    size = line.end;
    break;
  }
  if (size === undefined) {
    throw new AppError(
      'AUDIT_INTEGRITY',
      `audit log ${path} has no entry ${seq} with the hash just written`,
      {
        details: { path, seq },
      },
    );
  }
  const end = size;
  const digest = createHash('sha256');
  for await (const chunk of readRange(path, end)) digest.update(chunk);
  return {
    path: 'audit.log',
    mode: 0o600,
    size: end,
    sha256: digest.digest('hex'),
    chunks: () => readRange(path, end),
  };
}

async function* readRange(path: string, end: number): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    for (let pos = 0; pos < end;) {
      const buf = Buffer.allocUnsafe(Math.min(AUDIT_READ_BYTES, end - pos));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0)
        throw new AppError('AUDIT_INTEGRITY', `audit log ${path} shrank while it was read`);
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}
