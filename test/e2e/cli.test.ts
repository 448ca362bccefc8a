import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile, copyFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { kw, startServe } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { filesUnder } from '../helpers/files.js';
import { tempDir } from '../helpers/tmp.js';

describe('keywright CLI and daemon, as a user runs them', () => {
  test('init, serve, status, tokens, audit verify, graceful stop, no secret on disk', async (t) => {
    const dir = join(await tempDir(t, 'kw-e2e-'), 'data');
    const init = await kw(['init', '--data-dir', dir, '--json']);
    assert.equal(init.code, 0, init.stderr);
    const { adminToken, adminTokenId } = init.json<{ adminToken: string; adminTokenId: string }>();
    assert.match(adminToken, /^kw_[A-Za-z0-9_-]{43}$/);

    const again = await kw(['init', '--data-dir', dir, '--json']);
    assert.equal(again.code, 6, 'a second init is a conflict');
    assert.equal(again.json<{ error: { code: string } }>().error.code, 'DAEMON_ALREADY_INITIALIZED');

    const port = await freePort();
    const daemon = await startServe(
      t,
      ['--data-dir', dir, '--listen', `127.0.0.1:${port}`],
      {},
      `https://127.0.0.1:${port}/healthz`,
    );

    // --data-dir is enough to find the daemon and trust its certificate; only the token is needed besides.
    const env = { KEYWRIGHT_DATA_DIR: dir, KEYWRIGHT_TOKEN: adminToken };
    const status = await kw(['status', '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(status.json<{ sealed: boolean }>().sealed, false);

    const noToken = await kw(['status'], { KEYWRIGHT_DATA_DIR: dir });
    assert.equal(noToken.code, 3);
    assert.match(noToken.stderr, /AUTH_REQUIRED/);

    const created = await kw(['token', 'create', '--role', 'reader', '--ttl', '30d', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const reader = created.json<{ id: string; token: string }>();
    const listed = await kw(['token', 'list', '--json'], env);
    const ids = listed.json<{ tokens: Array<{ id: string }> }>().tokens.map((x) => x.id);
    assert.deepEqual(ids.sort(), [adminTokenId, reader.id].sort());
    assert.ok(!listed.stdout.includes(reader.token));

    const readerStatus = await kw(['status', '--json'], {
      KEYWRIGHT_DATA_DIR: dir,
      KEYWRIGHT_TOKEN: reader.token,
    });
    assert.equal(readerStatus.code, 0);
    const readerDenied = await kw(['token', 'list'], {
      KEYWRIGHT_DATA_DIR: dir,
      KEYWRIGHT_TOKEN: reader.token,
    });
    assert.equal(readerDenied.code, 4, 'forbidden exits 4');

    assert.equal((await kw(['token', 'revoke', reader.id], env)).code, 0);
    const afterRevoke = await kw(['status'], { KEYWRIGHT_DATA_DIR: dir, KEYWRIGHT_TOKEN: reader.token });
    assert.equal(afterRevoke.code, 3, 'a revoked token is refused');

    // A second daemon on the same data dir is refused, naming the holder.
    const second = await kw(['serve', '--data-dir', dir, '--listen', `127.0.0.1:${await freePort()}`]);
    assert.equal(second.code, 6);
    assert.match(second.stderr, new RegExp(`in use by pid ${daemon.child.pid}`));

    const tail = await kw(['audit', 'tail', '--json'], env);
    const actions = tail.json<{ entries: Array<{ action: string }> }>().entries.map((e) => e.action);
    for (const a of ['kek.create', 'ca.create', 'token.create', 'token.revoke', 'cert.issue'])
      assert.ok(actions.includes(a), `${a} in ${actions.join(',')}`);

    assert.equal(await daemon.stop('SIGTERM'), 0, `graceful stop:\n${daemon.output()}`);
    assert.ok(!existsSync(join(dir, 'daemon.json')), 'daemon.json removed on stop');
    assert.ok(daemon.output().includes('"msg":"stopped"'), 'the daemon logged its graceful stop');
    assert.ok(
      !daemon.output().includes(adminToken) && !daemon.output().includes(reader.token),
      'no token in the daemon log',
    );
    assert.ok(!existsSync(join(dir, 'keywright.lock')), 'lock released on stop');

    const verify = await kw(['audit', 'verify', '--data-dir', dir, '--json']);
    assert.equal(verify.code, 0, verify.stdout);
    assert.ok(verify.json<{ entries: number }>().entries >= 6);

    // Nothing under the data dir holds a private key or a token in plaintext, and keys are 0600.
    for (const file of await filesUnder(dir)) {
      const text = await readFile(file, 'latin1');
      assert.ok(!/PRIVATE KEY/.test(text), `${file} holds a PEM private key`);
      assert.ok(!text.includes(adminToken) && !text.includes(reader.token), `${file} holds a token`);
      if (!file.endsWith('ca.pem')) assert.equal((await stat(file)).mode & 0o077, 0, `${file} is private`);
    }
  });

  test('audit verify reports the first edited line and exits non-zero', async (t) => {
    const base = await tempDir(t, 'kw-e2e-');
    const dir = join(base, 'data');
    assert.equal((await kw(['init', '--data-dir', dir])).code, 0);
    const copy = join(base, 'audit-copy.log');
    await copyFile(join(dir, 'audit.log'), copy);
    const lines = (await readFile(copy, 'utf8')).split('\n');
    lines[1] = lines[1]!.replace('"success"', '"failure"');
    await writeFile(copy, lines.join('\n'));
    const res = await kw(['audit', 'verify', '--file', copy]);
    assert.equal(res.code, 9, res.stderr);
    assert.match(res.stderr, /line 2/);
    assert.match(res.stderr, /AUDIT_INTEGRITY/);
  });

  test('invalid configuration names every bad field and starts nothing', async (t) => {
    const base = await tempDir(t, 'kw-e2e-');
    const cfg = join(base, 'kw.yaml');
    await writeFile(
      cfg,
      `dataDir: ${join(base, 'data')}\nlisten: everywhere\nlog: { level: chatty }\nbogus: 1\n`,
    );
    const res = await kw(['serve', '--config', cfg]);
    assert.equal(res.code, 2);
    for (const field of ['listen', 'log.level', 'bogus'])
      assert.match(res.stderr, new RegExp(`${field.replace('.', '\\.')}:`));
    assert.ok(!existsSync(join(base, 'data')), 'nothing was created');
  });

  test('declared certificates: an unknown issuer or a deploy path outside allowedDirs is refused at start, field named', async (t) => {
    const base = await tempDir(t, 'kw-e2e-');
    const dataDir = join(base, 'data');
    assert.equal((await kw(['init', '--data-dir', dataDir])).code, 0);
    const cfg = join(base, 'kw.yaml');
    const port = await freePort();
    await writeFile(
      cfg,
      JSON.stringify({
        dataDir,
        listen: `127.0.0.1:${port}`,
        certificates: [{ name: 'web', sans: ['web.internal'], issuer: 'acme:nope' }],
      }),
    );
    const unknown = await kw(['serve', '--config', cfg]);
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /certificates\[0\]\.issuer: unknown issuer "acme:nope"/);
    await writeFile(
      cfg,
      JSON.stringify({
        dataDir,
        listen: `127.0.0.1:${port}`,
        deploy: { allowedDirs: [join(base, 'ok')] },
        certificates: [
          { name: 'web', sans: ['web.internal'], deploy: [{ file: { dir: '/etc/elsewhere' } }] },
        ],
      }),
    );
    const outside = await kw(['serve', '--config', cfg]);
    assert.equal(outside.code, 2, outside.stderr);
    assert.match(outside.stderr, /certificates\[0\]\.deploy\[0\]\.file\.dir/);
    const list = await kw(['audit', 'verify', '--data-dir', dataDir, '--json']);
    assert.equal(list.code, 0);
  });

  test('env KEK: missing starts sealed (health only); wrong is refused', async (t) => {
    const base = await tempDir(t, 'kw-e2e-');
    const dir = join(base, 'data');
    const kek = randomBytes(32).toString('base64');
    const env = { KEYWRIGHT_MASTER_KEY_SOURCE: 'env', KEYWRIGHT_MASTER_KEY: kek };
    const init = await kw(['init', '--data-dir', dir, '--json'], env);
    assert.equal(init.code, 0, init.stderr);
    const { adminToken } = init.json<{ adminToken: string }>();

    const wrong = await kw(['serve', '--data-dir', dir, '--listen', `127.0.0.1:${await freePort()}`], {
      KEYWRIGHT_MASTER_KEY_SOURCE: 'env',
      KEYWRIGHT_MASTER_KEY: randomBytes(32).toString('base64'),
    });
    assert.equal(wrong.code, 9, wrong.stderr);
    assert.match(wrong.stderr, /KEK_WRONG/);
    assert.ok(!wrong.stderr.includes(kek));

    const port = await freePort();
    const sealed = await startServe(
      t,
      ['--data-dir', dir, '--listen', `127.0.0.1:${port}`],
      { KEYWRIGHT_MASTER_KEY_SOURCE: 'env' },
      `https://127.0.0.1:${port}/healthz`,
    );
    const res = await kw(['status', '--url', `https://127.0.0.1:${port}`, '--json'], {
      KEYWRIGHT_TOKEN: adminToken,
      NODE_TLS_REJECT_UNAUTHORIZED: '0',
    });
    assert.equal(res.code, 8, res.stdout);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'DAEMON_SEALED');
    assert.equal(await sealed.stop(), 0);
  });

  test('keys rotate-kek re-wraps every sealed key; the daemon starts on the new KEK', async (t) => {
    const base = await tempDir(t, 'kw-e2e-');
    const dir = join(base, 'data');
    const init = await kw(['init', '--data-dir', dir, '--json']);
    const { adminToken, kekId } = init.json<{ adminToken: string; kekId: string }>();
    const oldKek = await readFile(join(dir, 'master.key'), 'utf8');
    const rotated = await kw(['keys', 'rotate-kek', '--data-dir', dir, '--json']);
    assert.equal(rotated.code, 0, rotated.stdout + rotated.stderr);
    const r = rotated.json<{ previousKekId: string; kekId: string; rewrapped: number }>();
    assert.equal(r.previousKekId, kekId);
    assert.notEqual(r.kekId, kekId);
    assert.ok(r.rewrapped >= 2, 'root and intermediate keys re-wrapped');
    assert.notEqual(await readFile(join(dir, 'master.key'), 'utf8'), oldKek);
    const port = await freePort();
    const daemon = await startServe(
      t,
      ['--data-dir', dir, '--listen', `127.0.0.1:${port}`],
      {},
      `https://127.0.0.1:${port}/healthz`,
    );
    const status = await kw(['status', '--json'], { KEYWRIGHT_DATA_DIR: dir, KEYWRIGHT_TOKEN: adminToken });
    assert.equal(status.code, 0, status.stderr);
    assert.equal(await daemon.stop(), 0);
  });
});
