import { mkdir, open, readdir, rename, rm, rmdir, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { systemClock, type Clock } from '../../core/clock.js';
import { AppError, isAppError } from '../../core/errors.js';
import { fsyncDir, pathExists } from '../../core/fs-durable.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { AuditLog } from '../../audit/audit-log.js';
import { acquireDataDirLock, LOCK_FILE } from '../../store/lock.js';
import { openLowdbStore } from '../../store/lowdb/open.js';
import { readKekState } from '../../keys/software/kek-state.js';
import { isInitializedStore } from '../services.js';
import { appPaths } from '../paths.js';
import { decodeBackup, type BackupHeader, type BackupSink } from './format.js';
import { openBackupFile } from './file.js';

export interface RestoreOptions {
  /** The backup file. */
  readonly file: string;
  readonly dataDir: string;
  /** Restore over a non-empty data dir, which is kept aside as `<dataDir>.replaced-<time>`. */
  readonly force?: boolean;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

export interface RestoreResult {
  readonly dataDir: string;
  /** Where the data dir that was there before now is; null when there was none (or it was empty). */
  readonly replaced: string | null;
  readonly backup: BackupHeader;
  /** The restored audit log's head: the `backup.restore` entry. */
  readonly audit: { readonly seq: number; readonly hash: string };
}

/**
 * Offline restore (DESIGN §3: offline commands take the lock). Refuses while a daemon holds the data
 * dir (STORE_LOCKED names its pid) and refuses a non-empty data dir without `force`. The backup is
 * decoded into a temp sibling directory, every digest checked and every file fsync'd, then checked as
 * a data dir: kek.json parses, the store opens and is initialized, the audit chain verifies to the
 * backup's head; a `backup.restore` entry is appended. Only then is it renamed into place (the old one
 * renamed aside first, never deleted). A crash before the renames leaves the old dir as it was (and a
 * `.restoring-` sibling to remove); between the two renames both are whole under their new names.
 */
export async function restoreBackup(o: RestoreOptions): Promise<RestoreResult> {
  const clock = o.clock ?? systemClock;
  const logger = (o.logger ?? silentLogger).child({ component: 'backup' });
  const dataDir = resolve(o.dataDir);
  const parent = dirname(dataDir);
  const existed = await pathExists(dataDir);
  // Opened before the lock, so an unreadable file is refused without touching the data dir.
  const source = await openBackupFile(o.file);
  const lock = await acquireDataDirLock(dataDir, { logger }).catch((err: unknown) => {
    source.destroy();
    throw err;
  });
  let temp: string | undefined;
  try {
    const present = (await readdir(dataDir)).filter((n) => n !== LOCK_FILE && !isLockTemp(n));
    if (present.length > 0 && o.force !== true) {
      throw new AppError(
        'BACKUP_TARGET_EXISTS',
        `${dataDir} is not empty (${present.length} entries); restore into a new --data-dir, or pass --force to put the backup in its place (the current directory is kept as ${basename(dataDir)}.replaced-<time>, never deleted)`,
        { details: { dataDir, entries: present.length } },
      );
    }
    temp = `${dataDir}.restoring-${randomBytes(4).toString('hex')}`;
    await mkdir(temp, { mode: 0o700 });
    const { header } = await decodeBackup(o.file, source, directorySink(temp));
    const head = await checkRestored(temp, header, clock, logger);
    await fsyncTree(temp);
    await fsyncDir(parent);

    let replaced: string | null = null;
    if (present.length > 0) {
      replaced = `${dataDir}.replaced-${stamp(clock)}`;
      await rename(dataDir, replaced);
      try {
        await rename(temp, dataDir);
      } catch (err) {
        const restored = temp;
        // Keep the restored tree if the old one cannot go back: then it is one of two whole copies.
        temp = undefined;
        await putBack(replaced, dataDir, restored, err);
        temp = restored; // the old directory is back in place: remove the restored copy below
        throw err;
      }
      temp = undefined;
      await fsyncDir(parent);
      // Our lock went aside with the old directory: take it out, so that copy is not left locked.
      await rm(join(replaced, LOCK_FILE), { force: true });
    } else {
      await lock.release();
      await rmdir(dataDir);
      await rename(temp, dataDir);
      temp = undefined;
      await fsyncDir(parent);
    }
    logger.info({ dataDir, replaced, auditSeq: head.seq }, 'restored a backup');
    return { dataDir, replaced, backup: header, audit: head };
  } catch (err) {
    if (temp !== undefined) await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    await lock.release();
    if (!existed) await rmdir(dataDir).catch(() => undefined); // we created it for the lock
    throw err;
  } finally {
    source.destroy(); // a refusal before decoding never read it
    await lock.release();
  }
}

/**
 * The restored directory must work as a data dir before it takes the place of anything: kek.json
 * parses, the store opens and holds a completed init, and the audit chain verifies up to the head the
 * backup names. Then the restore is recorded in that log.
 */
async function checkRestored(
  dir: string,
  header: BackupHeader,
  clock: Clock,
  logger: Logger,
): Promise<{ seq: number; hash: string }> {
  const invalid = (what: string, cause: unknown) =>
    new AppError(
      'BACKUP_INVALID',
      `the restored data directory does not check out: ${what}; nothing was replaced`,
      {
        cause,
        details: { ...(isAppError(cause) ? { cause: cause.code } : {}) },
      },
    );
  try {
    await readKekState(dir);
  } catch (cause) {
    throw invalid(`its kek.json: ${(cause as Error).message}`, cause);
  }
  let store;
  try {
    store = await openLowdbStore({ dataDir: dir, clock, logger });
  } catch (cause) {
    throw invalid(`its store does not open: ${(cause as Error).message}`, cause);
  }
  try {
    if (!isInitializedStore(store)) throw invalid('its store holds no completed init', undefined);
  } finally {
    await store.close();
  }
  let audit: AuditLog;
  try {
    audit = await AuditLog.open({ path: appPaths(dir).auditLog, clock, logger });
  } catch (cause) {
    throw invalid(`its audit log: ${(cause as Error).message}`, cause);
  }
  try {
    if (audit.head.seq !== header.audit.seq || audit.head.hash !== header.audit.hash) {
      throw invalid(
        `its audit log ends at seq ${audit.head.seq}, the header says ${header.audit.seq}`,
        undefined,
      );
    }
    const entry = await audit.append({
      actor: 'cli:backup',
      action: 'backup.restore',
      subject: 'backup',
      outcome: 'success',
      details: { createdAt: header.createdAt, backupSeq: header.audit.seq, keywright: header.keywright },
    });
    return { seq: entry.seq, hash: entry.hash };
  } finally {
    await audit.close();
  }
}

/** Writes each decoded file under `root` (parents 0700), fsync'd on close; a bad file is removed. */
function directorySink(root: string): BackupSink {
  return {
    async open(meta) {
      const path = join(root, ...meta.path.split('/'));
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const fh: FileHandle = await open(path, 'wx', meta.mode);
      return {
        // writeFile loops until every byte is written; write() may write fewer and say so.
        write: async (data) => {
          await fh.writeFile(data);
        },
        close: async () => {
          try {
            await fh.chmod(meta.mode); // the umask may have narrowed the create mode (ca.pem is 0644)
            await fh.sync();
          } finally {
            await fh.close();
          }
        },
        abort: async () => {
          await fh.close().catch(() => undefined);
          await rm(path, { force: true });
        },
      };
    },
  };
}

/**
 * The restored tree could not take the data dir's place after the old one went aside: move the old one
 * back, so the data dir is never left missing. If even that fails, say where both copies are.
 */
async function putBack(replaced: string, dataDir: string, temp: string, cause: unknown): Promise<void> {
  try {
    await rename(replaced, dataDir);
  } catch (again) {
    throw new AppError(
      'INTERNAL',
      `restore: the restored data could not be moved to ${dataDir} (${errCode(cause)}), nor the old data directory moved back (${errCode(again)}); the old one is ${replaced} and the verified restore is ${temp}: rename one of them to ${dataDir}`,
      { cause, details: { dataDir, replaced, restored: temp } },
    );
  }
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error';
}

/** fsync every directory of the tree, deepest first, so every entry the restore made is durable. */
async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await fsyncTree(join(dir, entry.name));
  }
  await fsyncDir(dir);
}

/** The lock's own temp files (keywright.lock.<hex>.tmp): a racing process may be between create and link. */
function isLockTemp(name: string): boolean {
  return name.startsWith(`${LOCK_FILE}.`) && name.endsWith('.tmp');
}

/** 2025-01-31T12:00:00.000Z → 20250131T120000Z: sortable, and safe in a file name. */
function stamp(clock: Clock): string {
  return clock.now().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
}
