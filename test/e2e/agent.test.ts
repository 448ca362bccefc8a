import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BIN, kw, initAndServe } from '../helpers/cli.js';

async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('keywright agent, as a user runs it', () => {
  test('--once, unchanged, an unwritable --out, then watching through a renewal and SIGTERM', async (t) => {
    const { root, dir, url, env: admin } = await initAndServe(t, 'kw-e2e-agent-');

    const issued = await kw(
      ['cert', 'issue', 'web', '--san', 'web.internal', '--ttl', '30d', '--json'],
      admin,
    );
    assert.equal(issued.code, 0, issued.stderr);
    const created = await kw(
      ['token', 'create', '--role', 'service', '--scope', 'cert:web', '--json'],
      admin,
    );
    assert.equal(created.code, 0, created.stderr);
    const tokenFile = join(root, 'agent.token');
    await writeFile(tokenFile, `${created.json<{ token: string }>().token}\n`, { mode: 0o600 });

    const out = join(root, 'live', 'web');
    const marker = join(root, 'reloads');
    const reload = [process.execPath, '-e', 'require("fs").appendFileSync(process.argv[1], "x")', marker];
    // No KEYWRIGHT_DATA_DIR: the agent runs on another machine, with only the URL, the root and a token.
    const agentArgs = ['agent', '--server', url, '--ca-file', join(dir, 'ca.pem'), '--token-file', tokenFile];
    const first = await kw([
      ...agentArgs,
      '--cert',
      'web',
      '--out',
      out,
      '--once',
      '--json',
      '--',
      ...reload,
    ]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(
      { changed: first.json().changed, reloaded: first.json().reloaded },
      { changed: true, reloaded: true },
    );
    assert.equal((await stat(join(out, 'privkey.pem'))).mode & 0o777, 0o600);
    assert.equal(await readFile(marker, 'utf8'), 'x');

    const second = await kw([...agentArgs, '--cert', 'web', '--out', out, '--once', '--', ...reload]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /web: version 1 is current/);
    assert.equal(await readFile(marker, 'utf8'), 'x', 'nothing changed: no reload');

    await writeFile(join(root, 'blocker'), '');
    const bad = await kw([...agentArgs, '--cert', 'web', '--out', join(root, 'blocker', 'web'), '--once']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /AGENT_OUTPUT_UNWRITABLE/);
    const wrongCert = await kw([...agentArgs, '--cert', 'db', '--out', join(root, 'db'), '--once']);
    assert.equal(wrongCert.code, 4, wrongCert.stderr);

    const watcher = spawn(
      process.execPath,
      [BIN, ...agentArgs, '--cert', 'web', '--out', out, '--wait', '60', '--', ...reload],
      {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', KEYWRIGHT_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let log = '';
    watcher.stdout.on('data', (d: Buffer) => (log += d.toString()));
    watcher.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = once(watcher, 'exit');
    t.after(() => watcher.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, 1500));
    const renewed = await kw(['cert', 'renew', 'web', '--json'], admin);
    assert.equal(renewed.code, 0, renewed.stderr);
    await until('the watcher to reload', async () => (await readFile(marker, 'utf8')) === 'xx');
    watcher.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, log);
    assert.doesNotMatch(log, /kw_[A-Za-z0-9_-]{43}|PRIVATE KEY/, 'no secret in the agent log');
  });
  test('--vpn NET/PEER --out FILE --once: writes the config 0600, runs the command, then reports it current', async (t) => {
    const { root, dir, url, env: admin } = await initAndServe(t, 'kw-e2e-agent-vpn-');
    for (const args of [
      ['vpn', 'network', 'create', 'office', '--cidr', '10.8.0.0/29'],
      ['vpn', 'peer', 'add', 'office', 'alice'],
      ['vpn', 'peer', 'add', 'office', 'bob'],
    ]) {
      const r = await kw(args, admin);
      assert.equal(r.code, 0, r.stderr);
    }
    const created = await kw(
      ['token', 'create', '--role', 'service', '--scope', 'vpn:office/alice', '--json'],
      admin,
    );
    assert.equal(created.code, 0, created.stderr);
    const tokenFile = join(root, 'agent.token');
    await writeFile(tokenFile, `${created.json<{ token: string }>().token}\n`, { mode: 0o600 });
    const conf = join(root, 'wireguard', 'wg0.conf');
    const marker = join(root, 'runs');
    const cmd = [process.execPath, '-e', 'require("fs").appendFileSync(process.argv[1], "x")', marker];
    const agentArgs = ['agent', '--server', url, '--ca-file', join(dir, 'ca.pem'), '--token-file', tokenFile];

    const first = await kw([
      ...agentArgs,
      '--vpn',
      'office/alice',
      '--out',
      conf,
      '--once',
      '--json',
      '--',
      ...cmd,
    ]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(
      { changed: first.json().changed, reloaded: first.json().reloaded, subject: first.json().subject },
      { changed: true, reloaded: true, subject: 'vpn:office/alice' },
    );
    assert.equal((await stat(conf)).mode & 0o777, 0o600);
    assert.match(await readFile(conf, 'utf8'), /^PrivateKey = /m);
    const again = await kw([...agentArgs, '--vpn', 'office/alice', '--out', conf, '--once', '--', ...cmd]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /office\/alice: the config in .* is current/);
    assert.equal(await readFile(marker, 'utf8'), 'x', 'nothing changed: the command did not run');

    const other = await kw([...agentArgs, '--vpn', 'office/bob', '--out', join(root, 'bob.conf'), '--once']);
    assert.equal(other.code, 4, other.stderr);
    const both = await kw([...agentArgs, '--vpn', 'office/alice', '--cert', 'web', '--out', conf, '--once']);
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /either --cert NAME or --vpn/);
  });
});
