import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { kw, startServe, initAndServe } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';

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
