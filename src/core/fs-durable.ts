import { open, rename, rm, mkdir, stat, type FileHandle } from 'node:fs/promises';
import { dirname, basename, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Durable, atomic file replacement: write a temp file beside the target, fsync it, rename it over the
 * target, fsync the directory. A crash at any point leaves either the old or the new content, and once
 * this resolves the new content survives power loss. The one place that does this; everything that
 * persists (store, audit, key files, deploy targets, agent) uses it.
 */
export async function writeFileDurable(
  path: string,
  data: string | Uint8Array | readonly Uint8Array[],
  mode = 0o600,
): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    if (Array.isArray(data)) await writeParts(fh, data as readonly Uint8Array[]);
    else await fh.writeFile(data as string | Uint8Array);
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

/**
 * Writes many buffers in order without concatenating them first: copying a large document into one
 * buffer blocks the event loop (29 MiB: ~80 ms), where writev runs on the threadpool.
 */
async function writeParts(fh: FileHandle, parts: readonly Uint8Array[]): Promise<void> {
  for (let i = 0; i < parts.length; i += WRITEV_PARTS) {
    const chunk = parts.slice(i, i + WRITEV_PARTS);
    const { bytesWritten } = await fh.writev(chunk);
    const total = chunk.reduce((n, b) => n + b.byteLength, 0);
    if (bytesWritten === total) continue;
    // a short write (rare for a regular file): write the rest of this chunk plainly
    let rest = Buffer.concat(chunk).subarray(bytesWritten);
    while (rest.length > 0) rest = rest.subarray((await fh.write(rest)).bytesWritten);
  }
}

/** Buffers per writev call (IOV_MAX is 1024 on Linux). */
const WRITEV_PARTS = 1024;

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

/** Whether anything (file, directory, link target) is at `path`; an error reading it counts as no. */
export function pathExists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
