import { link, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { StoreError } from '../core/errors.js';
import { mkdirDurable } from '../core/fs-durable.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { describe } from './describe-error.js';

export const LOCK_FILE = 'keywright.lock';

export interface DataDirLock {
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): Promise<void>;
}

/**
 * The single-writer lock of a data directory (DESIGN §3): `keywright.lock` holding the owner's pid.
 * The daemon holds it while its store is open; offline commands (init, rotate-kek) take it too.
 *
 * The pid is written to a temp file which is then hard-linked to the lock name: link() fails if the
 * name exists, so creation is exclusive, and the lock never appears without its pid in it. A lock whose
 * pid is not alive (the owner crashed) is taken over with a warning. Creates the data dir (0700) if it
 * does not exist yet.
 */
export async function acquireDataDirLock(
  dataDir: string,
  options: { readonly logger?: Logger } = {},
): Promise<DataDirLock> {
  const logger = options.logger ?? silentLogger;
  const lockPath = join(dataDir, LOCK_FILE);
  try {
    await mkdirDurable(dataDir); // init takes the lock before anything else exists
  } catch (cause) {
    throw new StoreError('STORE_IO', `cannot create the data dir ${dataDir}: ${describe(cause)}`, {
      cause,
      details: { dataDir },
    });
  }
  const content = `${process.pid}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await tryCreate(lockPath, content)) return ownLock(lockPath, content);
    const existing = await readLock(lockPath);
    if (existing === undefined) continue; // released between our link and our read: try again
    const pid = parsePid(existing);
    if (pid !== undefined && isAlive(pid)) {
      throw new StoreError(
        'STORE_LOCKED',
        `data dir ${dataDir} is in use by pid ${pid}; stop that keywright first (if no keywright runs as pid ${pid}, remove ${lockPath})`,
        { details: { dataDir, pid } },
      );
    }
    logger.warn(
      { dataDir, stalePid: pid ?? null },
      'taking over a stale data directory lock: its owner is not running (it crashed or was killed)',
    );
    // Remove only what we judged stale; if another process took it over meanwhile, its content differs.
    if ((await readLock(lockPath)) === existing) await rm(lockPath, { force: true });
  }
  throw new StoreError('STORE_LOCKED', `data dir ${dataDir} is being locked by another process; try again`, {
    details: { dataDir },
  });
}

async function tryCreate(lockPath: string, content: string): Promise<boolean> {
  const tmp = `${lockPath}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
    await link(tmp, lockPath);
    return true;
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new StoreError('STORE_IO', `cannot create the lock ${lockPath}: ${describe(cause)}`, {
      cause,
      details: { file: lockPath },
    });
  } finally {
    await rm(tmp, { force: true });
  }
}

async function readLock(lockPath: string): Promise<string | undefined> {
  try {
    return await readFile(lockPath, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StoreError('STORE_IO', `cannot read the lock ${lockPath}: ${describe(cause)}`, {
      cause,
      details: { file: lockPath },
    });
  }
}

function ownLock(lockPath: string, content: string): DataDirLock {
  let released: Promise<void> | undefined;
  return {
    release() {
      released ??= (async () => {
        if ((await readLock(lockPath)) === content) await rm(lockPath, { force: true });
      })();
      return released;
    },
  };
}

function parsePid(text: string): number | undefined {
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** Signal 0 checks existence without signalling; EPERM means it exists but belongs to someone else. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
