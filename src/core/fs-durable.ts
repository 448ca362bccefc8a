import { open, rename, rm, mkdir } from 'node:fs/promises';
import { dirname, basename, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Durable, atomic file replacement: write a temp file beside the target, fsync it, rename it over the
 * target, fsync the directory. A crash at any point leaves either the old or the new content, and once
 * this resolves the new content survives power loss. The one place that does this; everything that
 * persists (store, audit, key files, deploy targets, agent) uses it.
 */
export async function writeFileDurable(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // the umask may have narrowed or widened the create mode
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/** fsync a directory so a rename or create inside it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * mkdir -p with a mode, then make every new directory entry durable. Each level mkdir created is an
 * entry in its parent, so the parent of every created level is fsynced, outermost first: syncing only
 * the last parent would leave the upper levels (and so the whole path) able to vanish on power loss.
 */
export async function mkdirDurable(dir: string, mode = 0o700): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode });
  if (first === undefined) return;
  for (const parent of createdLevelParents(first, dir)) await fsyncDir(parent);
}

/**
 * The directories whose entries changed when `mkdir -p target` created `first` and everything below it:
 * the parent of each created level, outermost first.
 */
export function createdLevelParents(first: string, target: string): string[] {
  const top = resolve(first);
  const parents: string[] = [];
  for (let level = resolve(target); ; level = dirname(level)) {
    parents.push(dirname(level));
    if (level === top || dirname(level) === level) break;
  }
  return parents.reverse();
}
