/**
 * `GET /v1/backup` against a real daemon (HTTPS, lowdb on real files), then `restoreBackup` into a fresh
 * data dir and a second daemon on it: admin only, no KEK and no plaintext key in the file, consistent
 * while writes go on, and the restored daemon serves the same certificates and keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { restoreBackup } from '../../../src/app/backup/restore.js';
import { verifyBackupFile } from '../../../src/app/backup/file.js';
import { runCli } from '../../../src/cli/program.js';
import {
  decodeBackup,
  encodeBackup,
  fileFromBuffer,
  type BackupFileMeta,
} from '../../../src/app/backup/format.js';
import { gzipSync } from 'node:zlib';
import { startDaemon } from '../../../src/app/daemon.js';
import { parseConfig } from '../../../src/config/load.js';
import { verifyAuditLog } from '../../../src/audit/verify.js';
import { isAppError } from '../../../src/core/errors.js';
import { freePort } from '../../helpers/net.js';
import { tempDir } from '../../helpers/tmp.js';
import { createCertificate, httpsCall, startTestDaemon, type TestDaemon } from '../agent/daemon.js';

async function takeBackup(d: TestDaemon, token = d.adminToken) {
  return d.call('GET', '/v1/backup', { token });
}

async function* once(b: Buffer) {
  yield b;
}

/** The files of a backup, decoded (and so verified). */
async function filesOf(body: Buffer) {
  const files = new Map<string, { meta: BackupFileMeta; data: Buffer }>();
  const { header } = await decodeBackup('backup', once(body), {
    async open(meta) {
      const parts: Buffer[] = [];
      return {
        write: async (d) => void parts.push(Buffer.from(d)),
        close: async () => void files.set(meta.path, { meta, data: Buffer.concat(parts) }),
        abort: async () => undefined,
      };
    },
  });
  return { header, files };
}

test('admin only; the file holds sealed keys, the audit log to its own entry, never the KEK or a key in clear', async (t) => {
  const d = await startTestDaemon(t);
  await createCertificate(d, 'web');
  for (const role of ['operator', 'issuer', 'reader', 'service']) {
    const r = await takeBackup(d, await d.token(role, ['*']));
    assert.equal(r.status, 403, `${role}: ${r.status}`);
    assert.equal(r.json.code, 'ACCESS_DENIED');
  }
  assert.equal((await d.call('GET', '/v1/backup')).status, 401);

  const bundle = await d.call('GET', '/v1/certificates/web/bundle?format=json', { token: d.adminToken });
  assert.equal(bundle.status, 200);
  const keyPem = bundle.json.privateKey as string;
  const pemBody = keyPem.replace(/-----[^-]+-----|\s/g, '');
  const der = createPrivateKey(keyPem).export({ format: 'der', type: 'pkcs8' });
  const masterKey = await readFile(join(d.dataDir, 'master.key'));

  const r = await takeBackup(d);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers['content-type'], 'application/gzip');
  const { header, files } = await filesOf(r.body);
  const plain = gunzipSync(r.body);
  const everything = Buffer.concat([plain, ...[...files.values()].map((f) => f.data)]);
  for (const [what, needle] of [
    ['the PEM body of the key', Buffer.from(pemBody)],
    ['the DER of the key', der],
    ['master.key', masterKey],
    ['master.key in base64', Buffer.from(masterKey.toString('base64'))],
    ['a PEM private key', Buffer.from('PRIVATE KEY')],
    ['the admin token', Buffer.from(d.adminToken)],
  ] as const) {
    assert.equal(everything.indexOf(needle), -1, `the backup holds ${what}`);
  }
  assert.ok(!header.files.some((p) => p.includes('master')), 'no master.key in the list');
  assert.ok(files.has('kek.json') && files.has('ca.pem') && files.has('keywright.json'));
  assert.equal(files.get('ca.pem')!.meta.mode, 0o644);
  assert.ok(
    header.files.some((p) => p.startsWith('blobs/sealed/')),
    'sealed blobs are in it',
  );

  // The audit log ends with this backup's own entry, and its chain verifies.
  const log = files.get('audit.log')!.data.toString('utf8').trim().split('\n');
  const last = JSON.parse(log.at(-1)!) as { action: string; seq: number; hash: string; actor: string };
  assert.equal(last.action, 'backup.create');
  assert.deepEqual({ seq: last.seq, hash: last.hash }, header.audit);
  const tail = await d.call('GET', '/v1/audit?action=backup.create', { token: d.adminToken });
  assert.equal(tail.json.entries.length, 1, 'refused callers left no backup.create entry');
});

test('consistent while writes go on; restored, it serves the same certificates and keys', async (t) => {
  const d = await startTestDaemon(t);
  await createCertificate(d, 'web');
  const before = await d.call('GET', '/v1/certificates/web/bundle?format=json', { token: d.adminToken });

  // Writers issue certificates (records + sealed blobs in one transaction each) while backups are taken.
  let writing = true;
  let issued = 0;
  const writers = Array.from({ length: 3 }, async (_, w) => {
    for (let i = 0; writing; i++) {
      await createCertificate(d, `w${w}-${i}`);
      issued++;
    }
  });
  const backups = [];
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 150));
    const r = await takeBackup(d);
    assert.equal(r.status, 200, r.text);
    backups.push(r.body);
  }
  writing = false;
  await Promise.all(writers);
  assert.ok(issued > 3, `writers made progress during the backups (${issued})`);

  const body = backups.at(-1)!;
  const { header } = await filesOf(body);
  const root = await tempDir(t, 'kw-restore-');
  const file = join(root, 'b.kwbackup');
  await writeFile(file, body);

  // Refused while the daemon holds its data dir, naming the pid; nothing changes.
  await assert.rejects(
    restoreBackup({ file, dataDir: d.dataDir, force: true }),
    (err) => isAppError(err, 'STORE_LOCKED') && err.message.includes(`pid ${process.pid}`),
  );
  assert.deepEqual((await readdir(root)).sort(), ['b.kwbackup']);

  const dataDir = join(root, 'data');
  const result = await restoreBackup({ file, dataDir });
  assert.equal(result.replaced, null);
  assert.equal(result.audit.seq, header.audit.seq + 1);
  assert.deepEqual((await readdir(root)).sort(), ['b.kwbackup', 'data'], 'no temp directory left');
  const verified = await verifyAuditLog(join(dataDir, 'audit.log'));
  assert.ok(verified.ok);
  const log = (await readFile(join(dataDir, 'audit.log'), 'utf8')).trim().split('\n');
  assert.equal((JSON.parse(log.at(-1)!) as { action: string }).action, 'backup.restore');
  await copyFile(join(d.dataDir, 'master.key'), join(dataDir, 'master.key'));

  const port = await freePort();
  const config = parseConfig(
    { dataDir, listen: `127.0.0.1:${port}`, log: { level: 'silent' }, ca: { root: { key: 'ec-p256' } } },
    'test',
  );
  const restored = await startDaemon({ config, secrets: {} });
  t.after(() => restored.stop());
  const ca = await readFile(join(dataDir, 'ca.pem'), 'utf8');
  const call = (path: string) => httpsCall(restored.url, ca, 'GET', path, { token: d.adminToken });

  const after = await call('/v1/certificates/web/bundle?format=json');
  assert.equal(after.status, 200, after.text);
  assert.equal(after.json.certificate, before.json.certificate);
  assert.equal(after.json.privateKey, before.json.privateKey);

  // Consistency: every certificate of the snapshot has its sealed key and chain (one commit, whole),
  // and each has the audit entry that was written before it was committed.
  const list = await call('/v1/certificates');
  const names = (list.json.certificates as Array<{ name: string }>).map((c) => c.name);
  assert.ok(names.length >= 1 + 1, `the snapshot holds certificates issued meanwhile (${names.length})`);
  const subjects = new Set(log.map((l) => (JSON.parse(l) as { subject: string }).subject));
  for (const name of names) {
    const b = await call(`/v1/certificates/${name}/bundle?format=json`);
    assert.equal(b.status, 200, `${name}: ${b.text.slice(0, 200)}`);
    assert.ok(typeof b.json.privateKey === 'string', `${name} has its key`);
    assert.ok(subjects.has(`cert:${name}`), `${name} has its audit entries`);
  }

  // A second restore over it needs --force and keeps the restored one aside.
  await restored.stop();
  await assert.rejects(restoreBackup({ file, dataDir }), (err) => isAppError(err, 'BACKUP_TARGET_EXISTS'));
  const again = await restoreBackup({ file, dataDir, force: true });
  assert.ok(again.replaced !== null && again.replaced.startsWith(`${dataDir}.replaced-`));
  const kept = await readdir(again.replaced);
  assert.ok(kept.includes('master.key') && !kept.includes('keywright.lock'), kept.join(','));
});

test('restore refuses a backup whose digests check out but whose audit chain does not; nothing changes', async (t) => {
  const d = await startTestDaemon(t);
  await createCertificate(d, 'web');
  const r = await takeBackup(d);
  assert.equal(r.status, 200, r.text);
  const { header, files } = await filesOf(r.body);
  // Someone who rewrites the backup can recompute its digests, but not the audit chain's hashes.
  const log = files.get('audit.log')!.data.toString('utf8').split('\n');
  log[1] = log[1]!.replace('"outcome":"success"', '"outcome":"failure"');
  files.set('audit.log', { ...files.get('audit.log')!, data: Buffer.from(log.join('\n')) });
  const lines: Buffer[] = [];
  const sources = header.files.map((p) => fileFromBuffer(p, files.get(p)!.meta.mode, files.get(p)!.data));
  for await (const line of encodeBackup(header, sources)) lines.push(line);
  const root = await tempDir(t, 'kw-restore-');
  const file = join(root, 'forged.kwbackup');
  await writeFile(file, gzipSync(Buffer.concat(lines)));

  const dataDir = join(root, 'data');
  await assert.rejects(
    restoreBackup({ file, dataDir }),
    (err) => isAppError(err, 'BACKUP_INVALID') && /audit log/.test(err.message),
  );
  assert.deepEqual(await readdir(root), ['forged.kwbackup'], 'no data dir, no temp directory');

  // Over an existing data dir, with --force: the old one stays exactly where and as it was.
  const good = join(root, 'good.kwbackup');
  await writeFile(good, r.body);
  await restoreBackup({ file: good, dataDir });
  const listing = (await readdir(dataDir)).sort();
  const document = await readFile(join(dataDir, 'keywright.json'));
  await assert.rejects(restoreBackup({ file, dataDir, force: true }), (err) =>
    isAppError(err, 'BACKUP_INVALID'),
  );
  assert.deepEqual((await readdir(root)).sort(), ['data', 'forged.kwbackup', 'good.kwbackup']);
  assert.deepEqual((await readdir(dataDir)).sort(), listing);
  assert.ok((await readFile(join(dataDir, 'keywright.json'))).equals(document));
});

test('keywright backup create (the CLI, streaming) of a daemon with 300 certificates: FILE verifies and restores', async (t) => {
  const d = await startTestDaemon(t);
  const count = 300;
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < count) await createCertificate(d, `c${next++}`);
    }),
  );
  t.diagnostic(`${count} certificates issued in ${Date.now() - started} ms`);
  const root = await tempDir(t, 'kw-backup-cli-');
  const caFile = join(root, 'ca.pem');
  await writeFile(caFile, d.ca);
  const file = join(root, 'kw.backup');
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  const args = ['--url', d.url, '--ca-file', caFile, '--token', d.adminToken, '--json'];
  const code = await runCli([...args, 'backup', 'create', file], { stdout, stderr, env: {} });
  assert.equal(code, 0, err);
  const summary = JSON.parse(out) as { file: string; size: number; records: number; blobs: number };
  assert.equal(summary.file, file);
  assert.equal(summary.size, (await stat(file)).size);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.deepEqual((await readdir(root)).sort(), ['ca.pem', 'kw.backup'], 'no .partial file left');

  const { header } = await verifyBackupFile(file);
  assert.deepEqual(
    { records: header.records, blobs: header.blobs },
    {
      records: summary.records,
      blobs: summary.blobs,
    },
  );
  assert.ok(
    header.records > count && header.blobs >= count,
    `${header.records} records, ${header.blobs} blobs`,
  );
  for (const name of ['c0', `c${count - 1}`]) {
    assert.ok(
      header.files.some((p) => p.startsWith('blobs/') && p.includes(`/${name}/`)),
      `${name}'s sealed blobs are in it`,
    );
  }

  const dataDir = join(root, 'data');
  const result = await restoreBackup({ file, dataDir });
  assert.equal(result.backup.records, header.records);
  assert.ok((await verifyAuditLog(join(dataDir, 'audit.log'))).ok);
  const restoredBlobs = await readdir(join(dataDir, 'blobs'), { recursive: true });
  assert.ok(restoredBlobs.length >= count, `${restoredBlobs.length} blob entries restored`);
});
