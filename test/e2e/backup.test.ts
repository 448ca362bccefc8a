import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { copyFile, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeBackup, fileFromBuffer } from '../../src/app/backup/format.js';
import { backupHeader } from '../helpers/backup.js';
import { BIN, kw, startServe, initAndServe } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';

/** Needs the built CLI: `npm run build` first. */
test('backup create from a running daemon, restore into a fresh dir, serve: same certificate, same key', async (t) => {
  const { root: base, dir, adminToken, daemon, env } = await initAndServe(t, 'kw-e2e-backup-');
  const issued = await kw(['cert', 'issue', 'web', '--san', 'web.internal', '--ttl', '30d', '--json'], env);
  assert.equal(issued.code, 0, issued.stderr);
  const before = join(base, 'before');
  assert.equal((await kw(['cert', 'bundle', 'web', '--out', before], env)).code, 0);

  const file = join(base, 'kw.backup');
  const created = await kw(['backup', 'create', file, '--json'], env);
  assert.equal(created.code, 0, created.stderr + created.stdout);
  const summary = created.json<{
    file: string;
    size: number;
    records: number;
    files: number;
    audit: { seq: number; hash: string };
    kek: { source: string };
    note: string;
  }>();
  assert.equal(summary.file, file);
  assert.equal(summary.size, (await stat(file)).size);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.ok(summary.records > 0 && summary.files > 3 && summary.audit.seq > 0);
  assert.equal(summary.kek.source, 'file');
  assert.match(summary.note, /keep your master key/);
  const human = await kw(['backup', 'create', file, '--force'], env);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /keep your master key/);

  const again = await kw(['backup', 'create', file], env);
  assert.equal(again.code, 6, 'an existing FILE is not overwritten without --force');
  assert.match(again.stderr, /BACKUP_TARGET_EXISTS/);

  // Offline only: refused while the daemon holds the data dir, naming its pid.
  const busy = await kw(['backup', 'restore', file, '--data-dir', dir, '--force']);
  assert.equal(busy.code, 6, busy.stderr);
  assert.match(busy.stderr, new RegExp(`in use by pid ${daemon.child.pid}.*STORE_LOCKED`));

  assert.equal(await daemon.stop('SIGTERM'), 0);

  // A damaged backup is refused with its own code, and nothing is created.
  const damaged = join(base, 'damaged.backup');
  const bytes = await readFile(file);
  await writeFile(damaged, bytes.subarray(0, bytes.length - 100));
  const bad = await kw(['backup', 'restore', damaged, '--data-dir', join(base, 'never')]);
  assert.equal(bad.code, 9, bad.stderr);
  assert.match(bad.stderr, /BACKUP_INVALID/);
  assert.ok(!existsSync(join(base, 'never')));
  // verify: offline, every digest, what the backup holds; the damaged copy fails it the same way.
  const verified = await kw(['backup', 'verify', file, '--json']);
  assert.equal(verified.code, 0, verified.stderr);
  const v = verified.json<{ ok: boolean; records: number; audit: { seq: number } }>();
  assert.equal(v.ok, true);
  assert.equal(v.audit.seq, summary.audit.seq + 1, 'the --force backup made after the first');
  const badVerify = await kw(['backup', 'verify', damaged]);
  assert.equal(badVerify.code, 9, badVerify.stderr);
  assert.match(badVerify.stderr, /BACKUP_INVALID/);
  const missing = await kw(['backup', 'verify', join(base, 'nope.backup')]);
  assert.equal(missing.code, 2, missing.stderr);

  const restoredDir = join(base, 'restored');
  const restored = await kw(['backup', 'restore', file, '--data-dir', restoredDir, '--json']);
  assert.equal(restored.code, 0, restored.stderr + restored.stdout);
  assert.match(restored.json<{ next: string }>().next, /master\.key/);
  assert.ok(!(await readdir(restoredDir)).includes('master.key'), 'the backup brought no master key');
  assert.equal((await kw(['audit', 'verify', '--data-dir', restoredDir])).code, 0);
  await copyFile(join(dir, 'master.key'), join(restoredDir, 'master.key'));

  const port2 = await freePort();
  await startServe(
    t,
    ['--data-dir', restoredDir, '--listen', `127.0.0.1:${port2}`],
    {},
    `https://127.0.0.1:${port2}/healthz`,
  );
  const after = join(base, 'after');
  const pulled = await kw(['cert', 'bundle', 'web', '--out', after], {
    KEYWRIGHT_DATA_DIR: restoredDir,
    KEYWRIGHT_TOKEN: adminToken,
  });
  assert.equal(pulled.code, 0, pulled.stderr);
  for (const name of ['cert.pem', 'chain.pem', 'privkey.pem']) {
    assert.ok(
      (await readFile(join(after, name))).equals(await readFile(join(before, name))),
      `${name} is the same after the restore`,
    );
  }
});

/** A valid backup of a few MiB (noise does not compress, so its first half is mid-stream). */
async function validBackup(): Promise<Buffer> {
  const files = [
    fileFromBuffer('keywright.json', 0o600, Buffer.from('{"schemaVersion":1,"collections":{}}')),
    fileFromBuffer('kek.json', 0o600, Buffer.from('{"v":1,"source":"file","primary":"0011223344556677"}\n')),
    fileFromBuffer('audit.log', 0o600, randomBytes(3 * 1024 * 1024)),
  ];
  const header = backupHeader(
    files.map((f) => f.path),
    { audit: { seq: 1, hash: 'a'.repeat(64) } },
  );
  const lines: Buffer[] = [];
  for await (const line of encodeBackup(header, files)) lines.push(line);
  return gzipSync(Buffer.concat(lines));
}

/** A stand-in daemon on 127.0.0.1 that answers GET /v1/backup as `handle` says; gone when the test ends. */
async function fakeDaemon(
  t: TestContext,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<string> {
  const server = createServer(handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Answers 200 with no length and no chunking, sends `body`, then closes: a clean end of a short body. */
async function closingDaemon(t: TestContext, body: Buffer): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/gzip\r\nconnection: close\r\n\r\n');
      socket.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const backupCreate = (url: string, file: string, ...more: string[]) =>
  kw(['--url', url, '--token', 'kw_test_token', 'backup', 'create', file, ...more]);

test('backup create: a download that breaks off or ends short leaves no FILE and no temp file', async (t) => {
  const dir = await tempDir(t, 'kw-e2e-backup-cut-');
  const whole = await validBackup();
  const half = whole.subarray(0, whole.length >> 1);
  const file = join(dir, 'kw.backup');

  // The connection is reset in the middle of a chunked 200.
  const resets = await fakeDaemon(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/gzip' });
    res.write(half, () => res.socket?.destroy());
  });
  const cut = await backupCreate(resets, file);
  assert.equal(cut.code, 8, cut.stderr);
  assert.match(cut.stderr, /broke off after \d+ bytes.*DAEMON_UNREACHABLE/s);
  assert.deepEqual(await readdir(dir), [], 'no FILE, no .partial file');

  // A body that ends cleanly but short is caught by the verification.
  const short = await backupCreate(await closingDaemon(t, half), file);
  assert.equal(short.code, 9, short.stderr);
  assert.match(short.stderr, /the backup the daemon sent is not a usable keywright backup.*BACKUP_INVALID/s);
  assert.deepEqual(await readdir(dir), []);

  // The same server with the whole backup: the CLI takes it (so the failures above were the cut).
  const ok = await backupCreate(await closingDaemon(t, whole), file, '--json');
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.json<{ size: number }>().size, whole.length);
  assert.ok((await readFile(file)).equals(whole));
  assert.deepEqual(await readdir(dir), ['kw.backup']);
});

test('backup create --force over an existing FILE: a failed download, an error answer or Ctrl-C leave it byte for byte', async (t) => {
  const dir = await tempDir(t, 'kw-e2e-backup-force-');
  const whole = await validBackup();
  const half = whole.subarray(0, whole.length >> 1);
  const file = join(dir, 'kw.backup');
  const old = randomBytes(4096);
  await writeFile(file, old, { mode: 0o600 });
  const unchanged = async (what: string) => {
    assert.deepEqual(await readdir(dir), ['kw.backup'], `${what}: no .partial file left`);
    assert.ok((await readFile(file)).equals(old), `${what}: the old FILE is byte for byte as it was`);
  };

  const resets = await fakeDaemon(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/gzip' });
    res.write(half, () => res.socket?.destroy());
  });
  const cut = await backupCreate(resets, file, '--force');
  assert.equal(cut.code, 8, cut.stderr);
  await unchanged('broken off');

  const short = await backupCreate(await closingDaemon(t, half), file, '--force');
  assert.equal(short.code, 9, short.stderr);
  await unchanged('short');

  const denied = await fakeDaemon(t, (_req, res) => {
    res.writeHead(403, { 'content-type': 'application/problem+json' });
    res.end(JSON.stringify({ code: 'ACCESS_DENIED', detail: 'backup.create needs the admin role' }));
  });
  const refused = await backupCreate(denied, file, '--force');
  assert.equal(refused.code, 4, refused.stderr);
  assert.match(refused.stderr, /admin role.*ACCESS_DENIED/s);
  await unchanged('error answer');

  // Without --force nothing is even asked for.
  let asked = 0;
  const counting = await fakeDaemon(t, (_req, res) => {
    asked++;
    res.end(whole);
  });
  const exists = await backupCreate(counting, file);
  assert.equal(exists.code, 6, exists.stderr);
  assert.match(exists.stderr, /BACKUP_TARGET_EXISTS/);
  assert.equal(asked, 0, 'refused before any request');
  await unchanged('no --force');

  // Ctrl-C while the body is still coming: the temp file goes, and the CLI dies of SIGINT as before.
  const stalls = await fakeDaemon(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/gzip' });
    res.write(half); // and nothing more until the test ends
  });
  const child = spawn(
    process.execPath,
    [BIN, '--url', stalls, '--token', 'kw_test_token', 'backup', 'create', file, '--force'],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' }, stdio: 'pipe' },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(() => child.kill('SIGKILL'));
  let partial: string | undefined;
  for (let i = 0; i < 300 && partial === undefined; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const name = (await readdir(dir)).find((n) => n.startsWith('.kw.backup.partial-'));
    if (name !== undefined && (await stat(join(dir, name)).catch(() => undefined))?.size === half.length)
      partial = name;
  }
  assert.ok(partial !== undefined, `the download went to a .partial file beside FILE: ${stderr}`);
  assert.equal((await stat(join(dir, partial))).mode & 0o777, 0o600);
  child.kill('SIGINT');
  const [code, signal] = await exited;
  assert.equal(signal, 'SIGINT', `exit ${code}: ${stderr}`);
  await unchanged('Ctrl-C');
});
