import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { isAppError } from '../../../src/core/errors.js';
import {
  decodeBackup,
  encodeBackup,
  fileFromBuffer,
  type BackupFileMeta,
  type BackupHeader,
  type BackupSink,
} from '../../../src/app/backup/format.js';
import { backupHeader } from '../../helpers/backup.js';

const FILES: Record<string, [number, Buffer]> = {
  'keywright.json': [0o600, Buffer.from('{"schemaVersion":1,"collections":{}}')],
  'blobs/sealed/cert/web/1/key': [0o600, Buffer.from('{"v":1,"ct":"AAAA"}')],
  'blobs/empty': [0o600, Buffer.alloc(0)],
  // more than one 1 MiB part, not a multiple of it
  'audit.log': [0o600, randomBytes(2 * 1024 * 1024 + 12_345)],
  'kek.json': [0o600, Buffer.from('{"v":1,"source":"file","primary":"0011223344556677"}\n')],
  'ca.pem': [0o644, Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')],
};

function header(files = Object.keys(FILES)): BackupHeader {
  return backupHeader(files, { blobs: 2 });
}

async function encode(h = header(), files = FILES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sources = Object.entries(files).map(([path, [mode, data]]) => fileFromBuffer(path, mode, data));
  for await (const line of encodeBackup(h, sources)) chunks.push(line);
  return gzipSync(Buffer.concat(chunks));
}

/** A sink that keeps what it is given, and remembers which files were closed (complete and checked). */
function collecting() {
  const got = new Map<string, { meta: BackupFileMeta; data: Buffer[] }>();
  const closed: string[] = [];
  const sink: BackupSink = {
    async open(meta) {
      const entry = { meta, data: [] as Buffer[] };
      got.set(meta.path, entry);
      return {
        write: async (d) => void entry.data.push(Buffer.from(d)),
        close: async () => void closed.push(meta.path),
        abort: async () => void got.delete(meta.path),
      };
    },
  };
  return { sink, got, closed };
}

async function* chunksOf(bytes: Buffer, size = 64 * 1024): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function refused(bytes: Buffer, pattern: RegExp): Promise<string[]> {
  const c = collecting();
  await assert.rejects(
    decodeBackup('b.kwbackup', chunksOf(bytes), c.sink),
    (err) =>
      isAppError(err, 'BACKUP_INVALID') && pattern.test(err.message) && err.details.file === 'b.kwbackup',
  );
  return c.closed;
}

/** The uncompressed lines, to damage them the way an editor would. */
function lines(bytes: Buffer): string[] {
  return gunzipSync(bytes).toString('utf8').split('\n').slice(0, -1);
}
const pack = (ls: string[]) => gzipSync(Buffer.from(ls.map((l) => `${l}\n`).join('')));

describe('backup file format', () => {
  test('round trip: every file, byte for byte, with its mode; the header as written', async () => {
    const bytes = await encode();
    assert.equal(bytes[0], 0x1f, 'gzip');
    const c = collecting();
    const decoded = await decodeBackup('b', chunksOf(bytes, 1000), c.sink);
    assert.deepEqual(decoded.header, header());
    assert.deepEqual(c.closed, Object.keys(FILES));
    for (const [path, [mode, data]] of Object.entries(FILES)) {
      const f = c.got.get(path)!;
      assert.equal(f.meta.mode, mode, path);
      assert.ok(Buffer.concat(f.data).equals(data), path);
    }
    const ls = lines(bytes);
    assert.ok(
      ls.every((l) => Buffer.byteLength(l) < 2 * 1024 * 1024),
      'no line over 2 MiB',
    );
    assert.equal(ls.filter((l) => l.startsWith('{"data"')).length, 3 + 1 + 0 + 1 + 1 + 1, 'parts');
  });

  test('the encoder refuses master.key and files the header does not list', async () => {
    await assert.rejects(
      encode(header(['master.key']), { 'master.key': [0o600, randomBytes(32)] }),
      /master key/,
    );
    await assert.rejects(encode(header(['keywright.json']), FILES), /not the file the header lists/);
  });

  test('truncated anywhere: refused', async () => {
    const bytes = await encode();
    for (const cut of [10, Math.floor(bytes.length / 2), bytes.length - 30, bytes.length - 1]) {
      await refused(bytes.subarray(0, cut), /truncated|ends/);
    }
  });

  test('a flipped byte in the compressed data: refused', async () => {
    const bytes = Buffer.from(await encode());
    bytes[Math.floor(bytes.length / 3)]! ^= 0x40;
    await refused(bytes, /damaged|not gzip|sha256|digest|JSON|truncated/);
  });

  test('not gzip, not a backup, another version', async () => {
    await refused(Buffer.from('hello\n'), /not gzip/);
    await refused(gzipSync('{"format":"tar"}\n'), /no keywright-backup header/);
    const ls = lines(await encode());
    await refused(
      pack([ls[0]!.replace('"version":1', '"version":2'), ...ls.slice(1)]),
      /version 2; this keywright reads 1/,
    );
  });

  test('an edited file: its digest names it, and the files before it were the only ones completed', async () => {
    const ls = lines(await encode());
    const i = ls.findIndex((l) => l.startsWith('{"path":"kek.json"'));
    const edited = Buffer.from('{"v":1,"source":"file","primary":"7766554433221100"}\n').toString('base64');
    ls[i + 1] = JSON.stringify({ data: edited });
    ls[i] = ls[i]!.replace(/"size":\d+/, `"size":${Buffer.from(edited, 'base64').length}`);
    const closed = await refused(pack(ls), /kek\.json does not match its sha256/);
    assert.ok(!closed.includes('kek.json'));
  });

  test('an edited header: the trailer digest does not match', async () => {
    const ls = lines(await encode());
    ls[0] = ls[0]!.replace('"records":0', '"records":5');
    await refused(pack(ls), /trailer digest does not match/);
  });

  test('a removed, a reordered and an added file; a missing trailer; bytes after it', async () => {
    const ls = lines(await encode());
    const start = (p: string) => ls.findIndex((l) => l.startsWith(`{"path":"${p}"`));
    const kek = start('kek.json');
    const ca = start('ca.pem');
    // removed: kek.json's two lines gone
    await refused(pack([...ls.slice(0, kek), ...ls.slice(ca)]), /should start file kek\.json/);
    // reordered: ca.pem before kek.json
    await refused(
      pack([...ls.slice(0, kek), ...ls.slice(ca, ca + 2), ...ls.slice(kek, ca), ...ls.slice(ca + 2)]),
      /should start file kek\.json/,
    );
    // added: a file the header does not list, where the trailer should be
    const extra = JSON.stringify({ path: 'blobs/x', mode: 384, size: 0, sha256: '0'.repeat(64), parts: 0 });
    await refused(pack([...ls.slice(0, -1), extra, ls.at(-1)!]), /should be the trailer/);
    await refused(pack(ls.slice(0, -1)), /truncated/);
    await refused(pack([...ls, '{"more":1}']), /follows the trailer/);
  });

  test('a header that lists master.key, a path outside the data dir, or lacks the store', async () => {
    const ls = lines(await encode());
    const h = JSON.parse(ls[0]!) as { files: string[] };
    for (const [files, why] of [
      [[...h.files, 'master.key'], /never holds the master key/],
      [[...h.files, '../etc/passwd'], /not a data-directory file/],
      [[...h.files, 'blobs/../../x'], /not a data-directory file/],
      // the store refuses a segment over 200 characters (it becomes a file name): so does a backup
      [[...h.files, `blobs/sealed/${'a'.repeat(300)}`], /not a data-directory file/],
      [h.files.filter((f) => f !== 'keywright.json'), /has no keywright\.json/],
    ] as const) {
      await refused(pack([JSON.stringify({ ...h, files }), ...ls.slice(1)]), why);
    }
  });
});
