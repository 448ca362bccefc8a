import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from '../helpers/keys.js';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { kw, initAndServe } from '../helpers/cli.js';
import { filesUnder } from '../helpers/files.js';
import { parseWgQuick } from '../../src/vpn/wg-quick.js';

describe('keywright vpn, as a user runs it', () => {
  test('network, peers (server-made and client-side keys), configs, a peer token, rotation', async (t) => {
    const { root: base, dir, daemon, env } = await initAndServe(t, 'kw-e2e-vpn-');
    const ok = async (args: string[], e: Record<string, string> = env) => {
      const res = await kw(args, e);
      assert.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}${res.stdout}`);
      return res;
    };

    await ok([
      'vpn',
      'network',
      'create',
      'office',
      '--cidr',
      '10.8.0.0/24',
      '--cidr',
      'fd08::/64',
      '--topology',
      'hub',
      '--listen-port',
      '51820',
      '--dns',
      '10.8.0.1',
      '--psk-rotation',
      '1d',
    ]);
    const overlap = await kw(['vpn', 'network', 'create', 'other', '--cidr', '10.8.0.0/16', '--json'], env);
    assert.equal(overlap.code, 6, overlap.stdout);
    assert.equal(overlap.json<{ error: { code: string } }>().error.code, 'VPN_CONFLICT');
    assert.match(overlap.json<{ error: { message: string } }>().error.message, /other .*office/);

    await ok(['vpn', 'peer', 'add', 'office', 'gw', '--role', 'hub', '--endpoint', 'gw.example:51820']);
    const alice = (await ok(['vpn', 'peer', 'add', 'office', 'alice', '--keepalive', '25', '--json'])).json<{
      addresses: string[];
    }>();
    assert.deepEqual(alice.addresses, ['10.8.0.2', 'fd08::2']);
    const laptopKey = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x!;
    const laptopPub = Buffer.from(laptopKey, 'base64url').toString('base64');
    await ok(['vpn', 'peer', 'add', 'office', 'laptop', '--public-key', laptopPub]);

    const badKey = await kw(['vpn', 'peer', 'add', 'office', 'bad', '--public-key', 'c2hvcnQ='], env);
    assert.equal(badKey.code, 2, badKey.stderr);
    assert.match(badKey.stderr, /publicKey: .*32 bytes.*\[INVALID_ARGUMENT\]/);
    const dup = await kw(['vpn', 'peer', 'add', 'office', 'alice'], env);
    assert.equal(dup.code, 6);
    assert.match(dup.stderr, /VPN_CONFLICT/);
    const missing = await kw(['vpn', 'peer', 'config', 'nowhere', 'x'], env);
    assert.equal(missing.code, 5);
    assert.match(missing.stderr, /VPN_NOT_FOUND/);

    const aliceCfg = parseWgQuick((await ok(['vpn', 'peer', 'config', 'office', 'alice'])).stdout);
    assert.deepEqual(aliceCfg.interface.addresses, ['10.8.0.2/24', 'fd08::2/64']);
    assert.deepEqual(
      aliceCfg.peers.map((p) => [p.comment, p.allowedIps, p.keepalive]),
      [['gw', ['10.8.0.0/24', 'fd08::/64'], 25]],
    );
    const laptopCfg = (await ok(['vpn', 'peer', 'config', 'office', 'laptop'])).stdout;
    assert.match(laptopCfg, /^# PrivateKey = /m);
    const out = join(base, 'gw.conf');
    const written = (await ok(['vpn', 'peer', 'config', 'office', 'gw', '--out', out, '--json'])).json<{
      etag: string;
    }>();
    assert.match(written.etag, /^"/);
    assert.equal((await stat(out)).mode & 0o777, 0o600);
    const gwCfg = parseWgQuick(await readFile(out, 'utf8'));
    assert.deepEqual(
      gwCfg.peers.map((p) => p.comment),
      ['alice', 'laptop'],
    );
    assert.equal(gwCfg.peers.find((p) => p.comment === 'laptop')!.publicKey, laptopPub);

    // A service token for one peer reads its own config and nothing else.
    const svc = (
      await ok(['token', 'create', '--role', 'service', '--scope', 'vpn:office/alice', '--json'])
    ).json<{ token: string }>();
    const asAlice = { KEYWRIGHT_DATA_DIR: dir, KEYWRIGHT_TOKEN: svc.token };
    await ok(['vpn', 'peer', 'config', 'office', 'alice'], asAlice);
    const other = await kw(['vpn', 'peer', 'config', 'office', 'gw'], asAlice);
    assert.equal(other.code, 4, other.stderr);
    assert.match(other.stderr, /ACCESS_DENIED/);

    const rotated = (await ok(['vpn', 'rotate', 'office', '--psk-only', '--json'])).json<{
      psks: string[];
      changedConfigs: string[];
    }>();
    assert.deepEqual(rotated.psks, ['alice+gw', 'gw+laptop']);
    assert.deepEqual(rotated.changedConfigs, ['alice', 'gw', 'laptop']);
    const after = parseWgQuick((await ok(['vpn', 'peer', 'config', 'office', 'alice'])).stdout);
    assert.equal(after.interface.privateKey, aliceCfg.interface.privateKey, 'PSK-only: the key pair stays');
    assert.notEqual(after.peers[0]!.presharedKey, aliceCfg.peers[0]!.presharedKey);
    const keys = (await ok(['vpn', 'rotate', 'office', 'laptop', '--keys-only', '--json'])).json<{
      clientSideKeys: string[];
    }>();
    assert.deepEqual(keys.clientSideKeys, ['laptop']);

    const shown = await ok(['vpn', 'network', 'show', 'office', '--json']);
    const view = shown.json<{ generation: number; peers: Array<{ name: string; keyGeneration: number }> }>();
    assert.deepEqual(
      view.peers.map((p) => p.name),
      ['alice', 'gw', 'laptop'],
    );
    const secrets = [
      after.interface.privateKey!,
      after.peers[0]!.presharedKey!,
      aliceCfg.peers[0]!.presharedKey!,
    ];
    assert.ok(
      secrets.every((s) => !shown.stdout.includes(s)),
      'network show holds no secret',
    );
    const list = await ok(['vpn', 'network', 'list']);
    assert.match(list.stdout, /office\s+10\.8\.0\.0\/24,fd08::\/64\s+hub\s+3/);

    assert.equal(await daemon.stop(), 0, daemon.output());
    assert.ok(
      secrets.every((s) => !daemon.output().includes(s)),
      'no secret in the daemon log',
    );
    const verify = await kw(['audit', 'verify', '--data-dir', dir, '--json']);
    assert.equal(verify.code, 0, verify.stdout);
    const log = await readFile(join(dir, 'audit.log'), 'utf8');
    for (const action of [
      'vpn.network.create',
      'vpn.peer.add',
      'vpn.key.create',
      'vpn.psk.create',
      'vpn.config.export',
      'vpn.rotate',
    ]) {
      assert.ok(log.includes(`"action":"${action}"`), action);
    }
    // Nothing under the data dir holds a VPN private key or PSK in plaintext.
    for (const file of await filesUnder(dir)) {
      const text = await readFile(file, 'latin1');
      assert.ok(
        secrets.every((s) => !text.includes(s)),
        `${file} holds a VPN secret in plaintext`,
      );
    }
  });
});
