/**
 * `keywright agent --vpn` against a real daemon over HTTPS: the peer's wg-quick config written 0600, the
 * command only when it changed, a rotation picked up by the long poll, a token for another peer
 * refused with nothing written, a client-side key put in locally, and wg-quick parsing the result.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from '../../helpers/keys.js';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runVpnAgent, readWireguardKey, type PullOutcome } from '../../../src/agent/index.js';
import { isAppError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { requirePeer, runPeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';
import { startTestDaemon, type TestDaemon } from './daemon.js';

/** A command that appends one line per run: the peer and the file it was told about. */
function recorder(file: string): string[] {
  return [
    process.execPath,
    '-e',
    'require("node:fs").appendFileSync(process.argv[1], process.env.KEYWRIGHT_VPN_PEER + " " + process.env.KEYWRIGHT_VPN_CONFIG + "\\n")',
    file,
  ];
}

async function runs(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A WireGuard key pair as `wg genkey`/`wg pubkey` print them (base64 of the raw 32 bytes). */
function wgKeyPair(): { privateKey: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('x25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64url').toString('base64');
  return { privateKey: b64(jwk.d), publicKey: b64(jwk.x) };
}

async function office(d: TestDaemon, bobPublicKey: string): Promise<void> {
  const token = d.adminToken;
  const net = await d.call('POST', '/v1/vpn/networks', {
    token,
    body: { name: 'office', cidrs: ['10.8.0.0/29'], listenPort: 51820, topology: 'hub' },
  });
  assert.equal(net.status, 201, net.text);
  for (const body of [
    { name: 'gw', role: 'hub', endpoint: 'gw.example:51820' },
    { name: 'alice' },
    { name: 'bob', publicKey: bobPublicKey },
  ]) {
    const r = await d.call('POST', '/v1/vpn/networks/office/peers', { token, body });
    assert.equal(r.status, 201, r.text);
  }
}

async function rotate(d: TestDaemon, body: Record<string, unknown>): Promise<void> {
  const r = await d.call('POST', '/v1/vpn/networks/office/rotate', { token: d.adminToken, body });
  assert.equal(r.status, 200, r.text);
}

async function exportsOf(d: TestDaemon, subject: string): Promise<number> {
  const r = await d.call('GET', '/v1/audit?action=vpn.config.export&limit=1000', { token: d.adminToken });
  return (r.json.entries as Array<{ subject: string }>).filter((e) => e.subject === subject).length;
}

describe('keywright agent --vpn', () => {
  test('--once writes the config 0600 and runs the command; unchanged runs nothing; wg-quick parses it', async (t) => {
    const d = await startTestDaemon(t);
    await office(d, wgKeyPair().publicKey);
    const token = await d.token('service', ['vpn:office/alice']);
    const dir = await tempDir(t, 'kw-agent-vpn-');
    const conf = join(dir, 'wireguard', 'wg0.conf');
    const marker = join(dir, 'runs');
    const base = {
      server: d.url,
      ca: d.ca,
      token,
      network: 'office',
      peer: 'alice',
      outFile: conf,
      exec: recorder(marker),
      once: true,
    };

    const first = await runVpnAgent(base, { logger: silentLogger });
    assert.deepEqual(
      { subject: first?.subject, changed: first?.changed, reloaded: first?.reloaded },
      { subject: 'vpn:office/alice', changed: true, reloaded: true },
    );
    assert.equal((await stat(conf)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'wireguard'))).mode & 0o777, 0o700);
    const text = await readFile(conf, 'utf8');
    const served = await d.call('GET', '/v1/vpn/networks/office/peers/alice/config', { token });
    assert.equal(text, served.text, 'the file is what the daemon serves');
    assert.match(text, /^PrivateKey = [A-Za-z0-9+/]{43}=$/m);
    assert.deepEqual(await runs(marker), [`alice ${conf}`]);
    const state = await readFile(join(dir, 'wireguard', '.wg0.conf.keywright-agent.json'), 'utf8');
    assert.doesNotMatch(state, /PrivateKey|PresharedKey|kw_/, 'the state file holds no secret');
    assert.equal(await exportsOf(d, 'vpn:office/alice'), 2); // the agent's pull and the check above

    const second = await runVpnAgent(base, { logger: silentLogger });
    assert.deepEqual(
      { changed: second?.changed, reloaded: second?.reloaded },
      { changed: false, reloaded: false },
    );
    assert.deepEqual(await runs(marker), [`alice ${conf}`], 'nothing runs when nothing changed');
    assert.equal(await exportsOf(d, 'vpn:office/alice'), 2, 'a current agent gets a 304: nothing exported');

    const wgQuick = requirePeer(t, 'wg-quick', 'wireguard-tools');
    if (wgQuick) {
      const strip = runPeer(wgQuick, ['strip', conf]);
      assert.equal(strip.status, 0, strip.stderr);
      assert.match(strip.stdout, /^\[Interface\]$/m);
      assert.match(strip.stdout, /^PrivateKey = /m);
      assert.doesNotMatch(strip.stdout, /^Address\s*=/m, 'wg-quick-only keys stripped');
    }
  });

  test('watching: a rotation is picked up by the long poll and the command runs once', async (t) => {
    const d = await startTestDaemon(t);
    await office(d, wgKeyPair().publicKey);
    const token = await d.token('service', ['vpn:office/alice']);
    const dir = await tempDir(t, 'kw-agent-vpn-');
    const conf = join(dir, 'wg0.conf');
    const marker = join(dir, 'runs');
    const abort = new AbortController();
    t.after(() => abort.abort());
    const pulls: PullOutcome[] = [];
    const agent = runVpnAgent(
      {
        server: d.url,
        ca: d.ca,
        token,
        network: 'office',
        peer: 'alice',
        outFile: conf,
        exec: recorder(marker),
        waitSeconds: 30,
        backoff: { baseMs: 100, maxMs: 400 },
      },
      { logger: silentLogger, signal: abort.signal, onPull: (o) => pulls.push(o) },
    );
    await until('the first pull', () => pulls.length >= 1);
    const before = await readFile(conf, 'utf8');
    await new Promise((r) => setTimeout(r, 300)); // now it is long-polling

    const rotatedAt = Date.now();
    await rotate(d, { peer: 'alice', what: 'keys' });
    await until('the rotation on disk', async () => (await runs(marker)).length === 2);
    assert.ok(Date.now() - rotatedAt < 3000, `ran ${Date.now() - rotatedAt} ms after the rotation`);
    const after = await readFile(conf, 'utf8');
    assert.notEqual(after, before);
    const served = await d.call('GET', '/v1/vpn/networks/office/peers/alice/config', { token });
    assert.equal(after, served.text);
    await new Promise((r) => setTimeout(r, 800));
    assert.equal((await runs(marker)).length, 2, 'one rotation, one run');
    abort.abort();
    await agent;
    assert.ok(pulls.every((p) => p.subject === 'vpn:office/alice'));
  });

  test('a token scoped to another peer is refused with a clear error and nothing is written', async (t) => {
    const d = await startTestDaemon(t);
    await office(d, wgKeyPair().publicKey);
    const bobToken = await d.token('service', ['vpn:office/bob']);
    const dir = await tempDir(t, 'kw-agent-vpn-');
    const conf = join(dir, 'wg', 'wg0.conf');
    const marker = join(dir, 'runs');
    await assert.rejects(
      runVpnAgent(
        {
          server: d.url,
          ca: d.ca,
          token: bobToken,
          network: 'office',
          peer: 'alice',
          outFile: conf,
          exec: recorder(marker),
          once: true,
        },
        { logger: silentLogger },
      ),
      (err) =>
        isAppError(err) &&
        err.code === 'ACCESS_DENIED' &&
        /vpn:office\/alice|office\/alice/.test(err.message),
    );
    assert.deepEqual(await readdir(join(dir, 'wg')), [], 'nothing written');
    assert.deepEqual(await runs(marker), []);
    assert.equal(await exportsOf(d, 'vpn:office/alice'), 0);
  });

  test('a client-side-key peer: the key file is put in locally; without it nothing is written', async (t) => {
    const d = await startTestDaemon(t);
    const bob = wgKeyPair();
    await office(d, bob.publicKey);
    const token = await d.token('service', ['vpn:office/bob']);
    const dir = await tempDir(t, 'kw-agent-vpn-');
    const conf = join(dir, 'wg0.conf');
    const keyFile = join(dir, 'bob.key');
    await writeFile(keyFile, `${bob.privateKey}\n`, { mode: 0o600 });
    const base = {
      server: d.url,
      ca: d.ca,
      token,
      network: 'office',
      peer: 'bob',
      outFile: conf,
      once: true,
    };

    await assert.rejects(
      runVpnAgent(base, { logger: silentLogger }),
      (err) => isAppError(err) && err.code === 'INVALID_ARGUMENT' && /--private-key-file/.test(err.message),
    );
    await assert.rejects(stat(conf), { code: 'ENOENT' });

    const privateKey = await readWireguardKey(keyFile, '--private-key-file');
    const done = await runVpnAgent({ ...base, privateKey }, { logger: silentLogger });
    assert.equal(done?.changed, true);
    const text = await readFile(conf, 'utf8');
    assert.ok(text.includes(`PrivateKey = ${bob.privateKey}\n`));
    assert.doesNotMatch(text, /client-side key/);
    const served = await d.call('GET', '/v1/vpn/networks/office/peers/bob/config', { token });
    assert.doesNotMatch(served.text, new RegExp(bob.privateKey.replace(/[+/]/g, '\\$&')), 'never sent');

    // A key file for a peer whose key the daemon holds is refused rather than silently ignored.
    const aliceToken = await d.token('service', ['vpn:office/alice']);
    await assert.rejects(
      runVpnAgent(
        { ...base, token: aliceToken, peer: 'alice', outFile: join(dir, 'alice.conf'), privateKey },
        { logger: silentLogger },
      ),
      (err) => isAppError(err) && err.code === 'INVALID_ARGUMENT',
    );
    await assert.rejects(stat(join(dir, 'alice.conf')), { code: 'ENOENT' });
    await assert.rejects(readWireguardKey(conf, '--private-key-file'), (err) => {
      return isAppError(err) && err.code === 'KEY_INVALID' && !err.message.includes(bob.privateKey);
    });
  });
});
