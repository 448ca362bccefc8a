import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createReadStream, createWriteStream, existsSync, readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createGzip, gzipSync } from 'node:zlib';
import { isAppError } from '../../../src/core/errors.js';
import { saveBackup, verifyBackupFile } from '../../../src/app/backup/file.js';
import {
  encodeBackup,
  fileFromBuffer,
  type BackupFileSource,
  type BackupHeader,
} from '../../../src/app/backup/format.js';
import { tempDir } from '../../helpers/tmp.js';
import { backupHeader } from '../../helpers/backup.js';

const MiB = 1024 * 1024;

/**
 * `size` bytes of AES-256-CTR keystream: incompressible (so the gzip'd backup is as big as the file)
 * and reproducible, so it can be hashed in one pass and streamed in another without ever being held.
 */
async function noiseFile(path: string, size: number): Promise<BackupFileSource> {
  const chunks = async function* () {
    const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, 7), Buffer.alloc(16));
    const zeros = Buffer.alloc(MiB);
    for (let left = size; left > 0; left -= MiB) yield cipher.update(zeros.subarray(0, Math.min(MiB, left)));
  };
  const hash = createHash('sha256');
  for await (const c of chunks()) hash.update(c);
  return { path, mode: 0o600, size, sha256: hash.digest('hex'), chunks };
}

function header(files: readonly string[]): BackupHeader {
  return backupHeader(files, { records: 3 });
}

/** A valid backup whose audit.log is `auditBytes` of noise, as a gzip stream made while it is read. */
async function backupStream(auditBytes: number): Promise<Readable> {
  const files = [
    fileFromBuffer('keywright.json', 0o600, Buffer.from('{"schemaVersion":1,"collections":{}}')),
    fileFromBuffer('kek.json', 0o600, Buffer.from('{"v":1,"source":"file","primary":"0011223344556677"}\n')),
    await noiseFile('audit.log', auditBytes),
  ];
  // Not object mode: a handful of 1.4 MiB lines queued here would count against the code under test.
  return Readable.from(encodeBackup(header(files.map((f) => f.path)), files), {
    objectMode: false,
  }).pipe(createGzip({ level: 1 }));
}

async function bufferOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Yields `bytes`, then fails as a reset connection does. */
async function* breaksOff(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
  await new Promise((r) => setImmediate(r));
  throw Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

const after = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('backup files: saveBackup streams to a temp file, verifies, renames', () => {
  test('a backup much bigger than any buffer is never held whole (arrayBuffers after GC)', async (t) => {
    // Live memory, not garbage: force a GC before every sample so the figure does not depend on when
    // V8 chooses to collect.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const dir = await tempDir(t, 'kw-backup-file-');
    const file = join(dir, 'big.kwbackup');
    const size = 48 * MiB;
    // Made on disk first, so what is measured is saveBackup's memory, not the encoder's in this test.
    const made = join(dir, 'source');
    await pipeline(await backupStream(size), createWriteStream(made));
    const source = createReadStream(made);
    gc();
    gc();
    const base = process.memoryUsage();
    let peak = 0;
    let peakRss = 0;
    let samples = 0;
    const sample = () => {
      // Twice: V8 frees array buffers on a background sweeper, which the second collection waits for.
      gc();
      gc();
      const m = process.memoryUsage();
      peak = Math.max(peak, m.arrayBuffers - base.arrayBuffers);
      peakRss = Math.max(peakRss, m.rss - base.rss);
      samples++;
    };
    const timer = setInterval(sample, 100);
    let saved;
    try {
      saved = await saveBackup(file, async () => source);
    } finally {
      clearInterval(timer);
    }
    sample();
    t.diagnostic(
      `file ${(saved.size / MiB).toFixed(1)} MiB; peak live arrayBuffers +${(peak / MiB).toFixed(1)} MiB, rss +${(peakRss / MiB).toFixed(1)} MiB over ${samples} samples`,
    );
    assert.ok(saved.size > 40 * MiB, `the file is big (${saved.size})`);
    assert.equal(saved.bytes > size, true);
    assert.equal((await stat(file)).size, saved.size);
    assert.ok(samples >= 10, `sampled during the transfer (${samples})`);
    // Holding it whole would need at least the file's size; streaming needs a few MiB of buffers.
    assert.ok(peak < 16 * MiB, `peak live arrayBuffers grew ${(peak / MiB).toFixed(1)} MiB`);
    assert.deepEqual((await readdir(dir)).sort(), ['big.kwbackup', 'source']);
  });

  test('FILE is 0600 and verifies; its header and sizes are reported', async (t) => {
    const dir = await tempDir(t, 'kw-backup-file-');
    const file = join(dir, 'b.kwbackup');
    const saved = await saveBackup(file, async () => backupStream(3 * MiB + 5));
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(saved.header.audit.seq, 7);
    const again = await verifyBackupFile(file);
    assert.deepEqual(again.header, saved.header);
    assert.equal(again.bytes, saved.bytes);
  });

  test('a backup cut short, or a source that breaks off: no FILE, no temp file', async (t) => {
    const dir = await tempDir(t, 'kw-backup-file-');
    const file = join(dir, 'b.kwbackup');
    const whole = await bufferOf(await backupStream(3 * MiB));
    const half = whole.subarray(0, whole.length >> 1);
    await assert.rejects(
      saveBackup(file, async () => Readable.from([half]), { name: 'the backup the daemon sent' }),
      (err) => isAppError(err, 'BACKUP_INVALID') && /the backup the daemon sent/.test(err.message),
    );
    assert.deepEqual(await readdir(dir), []);
    await assert.rejects(
      saveBackup(file, async () => breaksOff(half)),
      (err) => (err as NodeJS.ErrnoException).code === 'ECONNRESET',
    );
    assert.deepEqual(await readdir(dir), []);
  });

  test('with force over an existing FILE: a failed download, an error answer or an abort leave it byte for byte', async (t) => {
    const dir = await tempDir(t, 'kw-backup-file-');
    const file = join(dir, 'b.kwbackup');
    const old = gzipSync('an older backup, kept as it was');
    await writeFile(file, old, { mode: 0o600 });
    const whole = await bufferOf(await backupStream(3 * MiB));
    const half = whole.subarray(0, whole.length >> 1);

    await assert.rejects(
      saveBackup(file, async () => breaksOff(half), { force: true }),
      /aborted/,
    );
    await assert.rejects(
      saveBackup(file, async () => Readable.from([half]), { force: true }),
      (err) => isAppError(err, 'BACKUP_INVALID'),
    );
    const denied = Object.assign(new Error('the daemon said no'), { code: 'ACCESS_DENIED' });
    await assert.rejects(
      saveBackup(
        file,
        async () => {
          throw denied;
        },
        { force: true },
      ),
      (err) => err === denied,
    );

    // Aborted mid-stream (SIGINT in the CLI): the source stalls after half, then the abort comes.
    const abort = new AbortController();
    const stalls = async function* () {
      yield half;
      await after(10_000);
    };
    const saving = saveBackup(file, async () => Readable.from(stalls()), {
      force: true,
      signal: abort.signal,
    });
    for (let i = 0; i < 200 && (await readdir(dir)).length < 2; i++) await after(10);
    const partial = (await readdir(dir)).find((n) => n.startsWith('.b.kwbackup.partial-'));
    assert.ok(partial !== undefined, 'the download goes to a hidden temp file beside FILE');
    abort.abort(new Error('interrupted'));
    await assert.rejects(saving, /interrupted/);

    assert.deepEqual(await readdir(dir), ['b.kwbackup'], 'no temp file left');
    assert.ok((await readFile(file)).equals(old), 'the old FILE is untouched');

    // And a good download does replace it.
    await saveBackup(file, async () => Readable.from([whole]), { force: true });
    assert.ok((await readFile(file)).equals(whole));
  });

  test('without force: a FILE that appeared meanwhile is not replaced (BACKUP_TARGET_EXISTS)', async (t) => {
    const dir = await tempDir(t, 'kw-backup-file-');
    const file = join(dir, 'b.kwbackup');
    const whole = await bufferOf(await backupStream(1024));
    await assert.rejects(
      saveBackup(file, async () => {
        await writeFile(file, 'someone else');
        return Readable.from([whole]);
      }),
      (err) => isAppError(err, 'BACKUP_TARGET_EXISTS'),
    );
    assert.deepEqual(await readdir(dir), ['b.kwbackup']);
    assert.equal(await readFile(file, 'utf8'), 'someone else');
  });
});

describe('backup files: verifyBackupFile', () => {
  /** Open descriptors of this process, once the count stops changing (closes land a tick later). */
  async function settledFds(expected: number): Promise<number> {
    let n = readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 100 && n !== expected; i++) {
      await after(10);
      n = readdirSync('/proc/self/fd').length;
    }
    return n;
  }

  test('a bad header followed by MiBs of junk: refused early, and the file is closed', async (t) => {
    if (!existsSync('/proc/self/fd')) return t.skip('no /proc/self/fd here');
    const dir = await tempDir(t, 'kw-backup-file-');
    const file = join(dir, 'junk.kwbackup');
    // Incompressible, so the file is many read-stream buffers long and decoding stops well before its end.
    await writeFile(
      file,
      gzipSync(Buffer.concat([Buffer.from('{"format":"nope"}\n'), randomBytes(8 * MiB)])),
    );
    const before = readdirSync('/proc/self/fd').length;
    await assert.rejects(verifyBackupFile(file), (err) => isAppError(err, 'BACKUP_INVALID'));
    assert.equal(await settledFds(before), before, 'the backup file descriptor is closed');
  });

  test('a directory or a missing path is INVALID_ARGUMENT naming it, not BACKUP_INVALID', async (t) => {
    const dir = await tempDir(t, 'kw-backup-file-');
    for (const path of [dir, join(dir, 'missing.kwbackup')]) {
      await assert.rejects(
        verifyBackupFile(path),
        (err) =>
          isAppError(err, 'INVALID_ARGUMENT') &&
          err.message.includes(path) &&
          /cannot read it \((EISDIR|ENOENT)\)/.test(err.message),
      );
    }
  });
});
