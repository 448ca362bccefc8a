import { mkdir, readFile, readdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fsyncDir } from '../../core/fs-durable.js';
import { assertBlobKey } from '../names.js';
import type { DurableWriter } from './document-file.js';

/**
 * The blob area: one file per key under `<dataDir>/blobs/`, the key's segments as directories
 * (`cert/web/3/chain` → `blobs/cert/web/3/chain`). Keys are validated against BLOB_KEY_PATTERN, whose
 * segments cannot be `.`/`..` or start with a dot, so a key cannot leave the area nor collide with the
 * `.name.xxxx.tmp` files writeFileDurable leaves behind if it crashes (those are simply never read).
 */
export class BlobDirectory {
  readonly root: string;
  readonly #write: DurableWriter;
  readonly #cache: ByteBoundedCache;
  /** Bumped by every write and removal, so a read that raced one does not cache what it saw. */
  #generation = 0;

  constructor(root: string, write: DurableWriter, cacheBytes = 4 * 1024 * 1024) {
    this.root = root;
    this.#write = write;
    this.#cache = new ByteBoundedCache(cacheBytes);
  }

  pathOf(key: string): string {
    assertBlobKey(key);
    return join(this.root, ...key.split('/'));
  }

  async write(key: string, bytes: Uint8Array): Promise<void> {
    const path = this.pathOf(key);
    this.#generation++;
    this.#cache.delete(key);
    await this.#ensureDir(dirname(path));
    await this.#write(path, bytes, 0o600);
    this.#generation++;
    this.#cache.delete(key);
  }

  async remove(key: string): Promise<void> {
    const path = this.pathOf(key);
    this.#generation++;
    this.#cache.delete(key);
    await rm(path, { force: true });
    this.#generation++;
    this.#cache.delete(key);
    await fsyncDir(dirname(path)).catch(ignoreMissing);
    await this.#pruneEmpty(dirname(path));
  }

  async read(key: string): Promise<Buffer | undefined> {
    const cached = this.#cache.get(key);
    if (cached !== undefined) return Buffer.from(cached);
    const generation = this.#generation;
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathOf(key));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
    if (generation === this.#generation) this.#cache.set(key, Buffer.from(bytes));
    return bytes;
  }

  /** Keys on disk starting with `prefix` (already validated), sorted. Temp files (dot names) are skipped. */
  async list(prefix: string): Promise<string[]> {
    const dirPart = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    const keys: string[] = [];
    const walk = async (dir: string, keyPrefix: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const entry of entries) {
        if (entry.name.startsWith('.')) continue;
        const key = keyPrefix + entry.name;
        if (entry.isDirectory()) await walk(join(dir, entry.name), `${key}/`);
        else if (entry.isFile() && key.startsWith(prefix)) keys.push(key);
      }
    };
    await walk(dirPart === '' ? this.root : join(this.root, ...dirPart.split('/').filter(Boolean)), dirPart);
    return keys.sort();
  }

  /** mkdir -p, then fsync the parent of every directory it created so the new entries survive power loss. */
  async #ensureDir(dir: string): Promise<void> {
    const first = await mkdir(dir, { recursive: true, mode: 0o700 });
    if (first === undefined) return;
    const created = relative(dirname(first), dir).split(sep);
    let parent = dirname(first);
    for (const segment of created) {
      await fsyncDir(parent);
      parent = join(parent, segment);
    }
  }

  /** Removes directories left empty, up to (not including) the blob root. */
  async #pruneEmpty(dir: string): Promise<void> {
    while (dir !== this.root && dir.startsWith(this.root + sep)) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty (or already gone): stop
      }
      dir = dirname(dir);
      await fsyncDir(dir).catch(ignoreMissing);
    }
  }
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

/** A small LRU by total bytes, for blobs served repeatedly (bundle pulls of hot certificates). */
class ByteBoundedCache {
  readonly #limit: number;
  readonly #entries = new Map<string, Buffer>();
  #bytes = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get(key: string): Buffer | undefined {
    const value = this.#entries.get(key);
    if (value !== undefined) {
      this.#entries.delete(key);
      this.#entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: Buffer): void {
    if (value.length > this.#limit / 16) return; // one big blob must not evict everything
    this.delete(key);
    this.#entries.set(key, value);
    this.#bytes += value.length;
    for (const [oldest, old] of this.#entries) {
      if (this.#bytes <= this.#limit) break;
      this.#entries.delete(oldest);
      this.#bytes -= old.length;
    }
  }

  delete(key: string): void {
    const value = this.#entries.get(key);
    if (value === undefined) return;
    this.#entries.delete(key);
    this.#bytes -= value.length;
  }
}
