import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { isAppError } from '../../../src/core/errors.js';
import { MS } from '../../../src/core/duration.js';
import { x25519PrivateKeyFromRaw, x25519RawPublic } from '../../../src/keys/generate.js';
import { CLIENT_KEY_PLACEHOLDER, parseWgQuick } from '../../../src/vpn/wg-quick.js';
import { RETIRED_COLLECTION } from '../../../src/vpn/model.js';
import { createMemoryStore } from '../../../src/store/memory/index.js';
import { SEALED_BLOB_PREFIX } from '../../../src/store/port.js';
import { allConfigs, snapshot, vpnSetup, WHO } from './setup.js';

const publicOf = (privateKeyB64: string) =>
  x25519RawPublic(createPublicKey(x25519PrivateKeyFromRaw(Buffer.from(privateKeyB64, 'base64')))).toString(
    'base64',
  );

async function rejectsWith(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<Error> {
  let caught: unknown;
  await p.catch((e: unknown) => (caught = e));
  assert.ok(isAppError(caught), `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

describe('VPN networks and peers', () => {
  test('a 3-peer mesh: every pair shares one PSK and sees the other’s real public key', async (t) => {
    const { vpn } = await vpnSetup(t);
    await vpn.createNetwork(
      { name: 'office', cidrs: ['10.8.0.0/24', 'fd00:8::/64'], listenPort: 51820 },
      WHO,
    );
    for (const name of ['alice', 'bob', 'carol']) {
      await vpn.addPeer('office', { name, endpoint: `${name}.example:51820` }, WHO);
    }
    const configs = await allConfigs(vpn, 'office');
    const detail = vpn.getNetwork('office');
    assert.deepEqual(
      detail.peers.map((p) => [p.name, p.addresses]),
      [
        ['alice', ['10.8.0.1', 'fd00:8::1']],
        ['bob', ['10.8.0.2', 'fd00:8::2']],
        ['carol', ['10.8.0.3', 'fd00:8::3']],
      ],
    );
    for (const [name, cfg] of configs) {
      const self = detail.peers.find((p) => p.name === name)!;
      assert.equal(
        publicOf(cfg.interface.privateKey!),
        self.publicKey,
        `${name}'s private key matches its public key`,
      );
      assert.deepEqual(
        cfg.interface.addresses,
        self.addresses.map((a, i) => `${a}/${i === 0 ? 24 : 64}`),
      );
      assert.equal(cfg.interface.listenPort, 51820);
      assert.equal(cfg.peers.length, 2);
      for (const entry of cfg.peers) {
        const other = detail.peers.find((p) => p.publicKey === entry.publicKey);
        assert.ok(other && other.name !== name && other.name === entry.comment);
        assert.deepEqual(entry.allowedIps, [`${other.addresses[0]}/32`, `${other.addresses[1]}/128`]);
        assert.equal(entry.endpoint, `${other.name}.example:51820`);
        const back = configs.get(other.name)!.peers.find((p) => p.publicKey === self.publicKey)!;
        assert.equal(entry.presharedKey, back.presharedKey, `${name}<->${other.name} share one PSK`);
      }
    }
    const psks = new Set([...configs.values()].flatMap((c) => c.peers.map((p) => p.presharedKey)));
    assert.equal(psks.size, 3, 'three pairs, three distinct PSKs');
    assert.equal(detail.psks.length, 3);
  });

  test('hub and spokes: spokes reach only the hub, which carries the whole pool and routed networks', async (t) => {
    const { vpn } = await vpnSetup(t);
    await vpn.createNetwork(
      { name: 'corp', cidrs: ['10.9.0.0/24'], topology: 'hub', dns: ['10.9.0.1'] },
      WHO,
    );
    await vpn.addPeer('corp', { name: 's1', keepalive: 25 }, WHO); // before the hub: reaches nobody yet
    assert.equal((await vpn.exportConfig('corp', 's1', WHO)).text.includes('[Peer]'), false);
    await vpn.addPeer(
      'corp',
      { name: 'hub', role: 'hub', endpoint: 'vpn.example:51820', allowedIps: ['192.168.10.0/24'] },
      WHO,
    );
    await vpn.addPeer('corp', { name: 's2', allowedIps: ['192.168.20.0/24'] }, WHO);
    const c = await allConfigs(vpn, 'corp');
    const hub = c.get('hub')!;
    assert.deepEqual(hub.interface.addresses, ['10.9.0.2/24'], 'the hub got the next free address');
    assert.deepEqual(
      hub.peers.map((p) => [p.comment, p.allowedIps]),
      [
        ['s1', ['10.9.0.1/32']],
        ['s2', ['10.9.0.3/32', '192.168.20.0/24']],
      ],
    );
    assert.ok(hub.peers.every((p) => p.keepalive === undefined && p.endpoint === undefined));
    const s1 = c.get('s1')!;
    assert.deepEqual(s1.interface.dns, ['10.9.0.1']);
    assert.equal(s1.peers.length, 1);
    assert.deepEqual(s1.peers[0]!.allowedIps, ['10.9.0.0/24', '192.168.10.0/24', '192.168.20.0/24']);
    assert.equal(s1.peers[0]!.endpoint, 'vpn.example:51820');
    assert.equal(s1.peers[0]!.keepalive, 25);
    assert.deepEqual(
      c.get('s2')!.peers[0]!.allowedIps,
      ['10.9.0.0/24', '192.168.10.0/24'],
      'not its own network',
    );
    assert.deepEqual(
      vpn.getNetwork('corp').psks.map((k) => k.peers),
      [
        ['hub', 's1'],
        ['hub', 's2'],
      ],
      'PSKs only for pairs that talk',
    );
  });

  test('client-side key: only the public key is stored; the config has a placeholder', async (t) => {
    const { vpn, store } = await vpnSetup(t);
    await vpn.createNetwork({ name: 'lab', cidrs: ['10.7.0.0/29'] }, WHO);
    await vpn.addPeer('lab', { name: 'srv' }, WHO);
    const laptopPub = x25519RawPublic(createPublicKey(x25519PrivateKeyFromRaw(Buffer.alloc(32, 7)))).toString(
      'base64',
    );
    const view = await vpn.addPeer('lab', { name: 'laptop', publicKey: laptopPub }, WHO);
    assert.equal(view.keySource, 'client');
    assert.equal(view.publicKey, laptopPub);
    const text = (await vpn.exportConfig('lab', 'laptop', WHO)).text;
    assert.ok(text.includes(CLIENT_KEY_PLACEHOLDER));
    assert.equal(parseWgQuick(text).interface.privateKey, undefined);
    const keyBlobs = (await store.listBlobs('sealed/vpn/lab/key/')).map((k) => k.split('/')[4]);
    assert.deepEqual(keyBlobs, ['srv'], 'no sealed key for the client-side peer');
    const srv = parseWgQuick((await vpn.exportConfig('lab', 'srv', WHO)).text);
    assert.equal(srv.peers[0]!.publicKey, laptopPub);
  });

  test('addresses: given ones must be in the pool and free; .0 and broadcast are never handed out', async (t) => {
    const { vpn } = await vpnSetup(t);
    await vpn.createNetwork({ name: 'tiny', cidrs: ['10.6.0.0/29'] }, WHO);
    await vpn.addPeer('tiny', { name: 'a', addresses: ['10.6.0.6'] }, WHO);
    const b = await vpn.addPeer('tiny', { name: 'b' }, WHO);
    assert.deepEqual(b.addresses, ['10.6.0.1']);
    for (const name of ['c', 'd', 'e', 'f']) await vpn.addPeer('tiny', { name }, WHO);
    const all = vpn
      .getNetwork('tiny')
      .peers.flatMap((p) => p.addresses)
      .sort();
    assert.deepEqual(all, ['10.6.0.1', '10.6.0.2', '10.6.0.3', '10.6.0.4', '10.6.0.5', '10.6.0.6']);
  });
});

describe('bad input: a clear error and nothing stored', () => {
  test('each refusal leaves every record and blob as it was', async (t) => {
    const { vpn, store, audit } = await vpnSetup(t);
    await vpn.createNetwork({ name: 'office', cidrs: ['10.8.0.0/30'] }, WHO);
    await vpn.createNetwork({ name: 'hubnet', cidrs: ['10.20.0.0/24'], topology: 'hub' }, WHO);
    await vpn.addPeer('office', { name: 'alice' }, WHO);
    await vpn.addPeer('office', { name: 'bob', allowedIps: ['192.168.1.0/24'] }, WHO);
    await vpn.addPeer('hubnet', { name: 'h', role: 'hub' }, WHO);
    const before = await snapshot(store);
    const entriesBefore = (await audit.tail(1000)).length;
    const cases: Array<[string, () => Promise<unknown>, string, RegExp]> = [
      [
        'overlapping pool',
        () => vpn.createNetwork({ name: 'x', cidrs: ['10.8.0.0/16'] }, WHO),
        'VPN_CONFLICT',
        /10\.8\.0\.0\/16 of network x overlaps pool 10\.8\.0\.0\/30 of network office/,
      ],
      [
        'duplicate network',
        () => vpn.createNetwork({ name: 'office', cidrs: ['10.99.0.0/24'] }, WHO),
        'VPN_CONFLICT',
        /office exists/,
      ],
      [
        'host bits set',
        () => vpn.createNetwork({ name: 'x', cidrs: ['10.99.0.1/24'] }, WHO),
        'INVALID_ARGUMENT',
        /^cidrs\[0\]:/,
      ],
      [
        'not a CIDR',
        () => vpn.createNetwork({ name: 'x', cidrs: ['10.99.0.0'] }, WHO),
        'INVALID_ARGUMENT',
        /^cidrs\[0\]:/,
      ],
      [
        'two IPv4 pools',
        () => vpn.createNetwork({ name: 'x', cidrs: ['10.98.0.0/24', '10.99.0.0/24'] }, WHO),
        'INVALID_ARGUMENT',
        /^cidrs\[1\]:/,
      ],
      [
        'bad network name',
        () => vpn.createNetwork({ name: 'Office!', cidrs: ['10.99.0.0/24'] }, WHO),
        'INVALID_ARGUMENT',
        /^name:/,
      ],
      [
        'unknown network',
        () => vpn.addPeer('nowhere', { name: 'x' }, WHO),
        'VPN_NOT_FOUND',
        /no VPN network named nowhere/,
      ],
      [
        'duplicate peer',
        () => vpn.addPeer('office', { name: 'alice' }, WHO),
        'VPN_CONFLICT',
        /peer named alice/,
      ],
      [
        'exhausted pool',
        () => vpn.addPeer('office', { name: 'carol' }, WHO),
        'VPN_POOL_EXHAUSTED',
        /10\.8\.0\.0\/30/,
      ],
      [
        'address taken',
        () => vpn.addPeer('hubnet', { name: 'x', addresses: ['10.20.0.1'] }, WHO),
        'VPN_CONFLICT',
        /held by peer h/,
      ],
      [
        'address outside the pool',
        () => vpn.addPeer('hubnet', { name: 'x', addresses: ['10.21.0.1'] }, WHO),
        'INVALID_ARGUMENT',
        /^addresses\[0\]:/,
      ],
      [
        'broadcast address',
        () => vpn.addPeer('hubnet', { name: 'x', addresses: ['10.20.0.255'] }, WHO),
        'INVALID_ARGUMENT',
        /^addresses\[0\]:/,
      ],
      [
        'public key 31 bytes',
        () => vpn.addPeer('hubnet', { name: 'x', publicKey: Buffer.alloc(31, 1).toString('base64') }, WHO),
        'INVALID_ARGUMENT',
        /^publicKey:/,
      ],
      [
        'public key 33 bytes',
        () => vpn.addPeer('hubnet', { name: 'x', publicKey: Buffer.alloc(33, 1).toString('base64') }, WHO),
        'INVALID_ARGUMENT',
        /^publicKey:/,
      ],
      [
        'public key not base64',
        () => vpn.addPeer('hubnet', { name: 'x', publicKey: `${'!'.repeat(43)}=` }, WHO),
        'INVALID_ARGUMENT',
        /^publicKey:/,
      ],
      [
        'second hub',
        () => vpn.addPeer('hubnet', { name: 'x', role: 'hub' }, WHO),
        'VPN_CONFLICT',
        /has a hub already/,
      ],
      [
        'hub in a mesh',
        () => vpn.addPeer('office', { name: 'x', role: 'hub' }, WHO),
        'INVALID_ARGUMENT',
        /^role:/,
      ],
      [
        'route over the pool',
        () => vpn.addPeer('hubnet', { name: 'x', allowedIps: ['10.20.0.0/16'] }, WHO),
        'VPN_CONFLICT',
        /overlaps the pool/,
      ],
      [
        'bad endpoint',
        () => vpn.addPeer('hubnet', { name: 'x', endpoint: 'host-without-port' }, WHO),
        'INVALID_ARGUMENT',
        /^endpoint:/,
      ],
      [
        'bad keepalive',
        () => vpn.addPeer('hubnet', { name: 'x', keepalive: 70000 }, WHO),
        'INVALID_ARGUMENT',
        /^keepalive:/,
      ],
      [
        'unknown peer rotation',
        () => vpn.rotate('office', { peer: 'zed', what: 'all' }, WHO),
        'VPN_NOT_FOUND',
        /no peer named zed/,
      ],
      [
        'remove unknown peer',
        () => vpn.removePeer('office', 'zed', WHO),
        'VPN_NOT_FOUND',
        /no peer named zed/,
      ],
    ];
    for (const [what, run, code, pattern] of cases) {
      await t.test(what, async () => {
        await rejectsWith(run(), code, pattern);
        assert.equal(await snapshot(store), before, `${what}: the store is unchanged`);
      });
    }
    assert.equal((await audit.tail(1000)).length, entriesBefore, 'refusals write no audit entry');
  });

  test('a duplicate public key is a conflict naming the holder', async (t) => {
    const { vpn } = await vpnSetup(t);
    await vpn.createNetwork({ name: 'n', cidrs: ['10.5.0.0/24'] }, WHO);
    const a = await vpn.addPeer('n', { name: 'a' }, WHO);
    await rejectsWith(
      vpn.addPeer('n', { name: 'b', publicKey: a.publicKey }, WHO),
      'VPN_CONFLICT',
      /peer a of n/,
    );
    await vpn.addPeer('n', { name: 'c', allowedIps: ['172.16.0.0/16'] }, WHO);
    await rejectsWith(
      vpn.addPeer('n', { name: 'd', allowedIps: ['172.16.5.0/24'] }, WHO),
      'VPN_CONFLICT',
      /routed to peer c/,
    );
  });
});

describe('rotation', () => {
  async function meshOfThree(t: Parameters<typeof vpnSetup>[0]) {
    const s = await vpnSetup(t);
    await s.vpn.createNetwork({ name: 'm', cidrs: ['10.4.0.0/24'] }, WHO);
    await s.vpn.addPeer('m', { name: 'a' }, WHO);
    await s.vpn.addPeer('m', { name: 'b' }, WHO);
    const cPub = x25519RawPublic(createPublicKey(x25519PrivateKeyFromRaw(Buffer.alloc(32, 9)))).toString(
      'base64',
    );
    await s.vpn.addPeer('m', { name: 'c', publicKey: cPub }, WHO);
    return s;
  }

  function keysOf(configs: Map<string, ReturnType<typeof parseWgQuick>>) {
    const priv = new Map([...configs].map(([n, c]) => [n, c.interface.privateKey]));
    const psk = new Map<string, string>();
    for (const [n, c] of configs)
      for (const p of c.peers) psk.set([n, p.comment].sort().join('+'), p.presharedKey!);
    return { priv, psk };
  }

  test('PSK-only rotation changes every PSK and no key pair, in one generation', async (t) => {
    const { vpn, events } = await meshOfThree(t);
    const before = keysOf(await allConfigs(vpn, 'm'));
    const etags = vpn.getNetwork('m').peers.map((p) => p.configEtag);
    const result = await vpn.rotate('m', { what: 'psk' }, WHO);
    assert.deepEqual(result.psks, ['a+b', 'a+c', 'b+c']);
    assert.deepEqual(result.keys, []);
    assert.deepEqual(result.changedConfigs, ['a', 'b', 'c']);
    const after = keysOf(await allConfigs(vpn, 'm'));
    assert.deepEqual(after.priv, before.priv);
    for (const [pair, v] of after.psk) assert.notEqual(v, before.psk.get(pair), pair);
    const detail = vpn.getNetwork('m');
    assert.equal(detail.generation, result.generation);
    assert.ok(detail.psks.every((k) => k.generation === result.generation));
    detail.peers.forEach((p, i) => assert.notEqual(p.configEtag, etags[i]));
    assert.deepEqual(events.at(-1), {
      type: 'rotated',
      network: 'm',
      generation: result.generation,
      peers: ['a', 'b', 'c'],
    });
  });

  test('key rotation of one peer changes its key pair and nothing else; others see the new public key', async (t) => {
    const { vpn } = await meshOfThree(t);
    const before = keysOf(await allConfigs(vpn, 'm'));
    const oldPub = vpn.getNetwork('m').peers.find((p) => p.name === 'a')!.publicKey;
    const result = await vpn.rotate('m', { peer: 'a', what: 'keys' }, WHO);
    assert.deepEqual(result.keys, ['a']);
    assert.deepEqual(result.psks, []);
    const configs = await allConfigs(vpn, 'm');
    const after = keysOf(configs);
    assert.notEqual(after.priv.get('a'), before.priv.get('a'));
    assert.equal(after.priv.get('b'), before.priv.get('b'));
    assert.deepEqual(after.psk, before.psk);
    const newPub = vpn.getNetwork('m').peers.find((p) => p.name === 'a')!.publicKey;
    assert.notEqual(newPub, oldPub);
    assert.equal(publicOf(after.priv.get('a')!), newPub);
    for (const n of ['b', 'c']) assert.ok(configs.get(n)!.peers.some((p) => p.publicKey === newPub));
  });

  test('peer rotation of a client-side key rotates only its PSKs', async (t) => {
    const { vpn } = await meshOfThree(t);
    const before = keysOf(await allConfigs(vpn, 'm'));
    const keysOnly = await vpn.rotate('m', { peer: 'c', what: 'keys' }, WHO);
    assert.deepEqual([keysOnly.keys, keysOnly.psks, keysOnly.clientSideKeys], [[], [], ['c']]);
    assert.deepEqual(keysOnly.changedConfigs, []);
    const all = await vpn.rotate('m', { peer: 'c', what: 'all' }, WHO);
    assert.deepEqual([all.keys, all.psks], [[], ['a+c', 'b+c']]);
    const after = keysOf(await allConfigs(vpn, 'm'));
    assert.deepEqual(after.priv, before.priv);
    assert.equal(after.psk.get('a+b'), before.psk.get('a+b'));
    assert.notEqual(after.psk.get('a+c'), before.psk.get('a+c'));
    assert.notEqual(after.psk.get('b+c'), before.psk.get('b+c'));
  });

  test('old material is disabled, then destroyed by the sweep after 30 days (audited, never the key)', async (t) => {
    const { vpn, store, clock, audit } = await meshOfThree(t);
    const blobsBefore = await store.listBlobs('sealed/vpn/m/');
    await vpn.rotate('m', { what: 'all' }, WHO);
    const retired = store.collection<{ id: string; destroyAfter: string }>(RETIRED_COLLECTION).list();
    assert.equal(retired.length, 2 + 3, 'two server key pairs and three PSKs disabled');
    assert.deepEqual(retired.map((r) => r.id).sort(), blobsBefore);
    assert.ok(retired.every((r) => r.destroyAfter === '2026-01-31T00:00:00.000Z'));
    assert.deepEqual(await vpn.destroyExpiredVpnKeys(clock.now()), { destroyed: 0 });
    clock.advance(30 * MS.d - 1);
    assert.deepEqual(await vpn.destroyExpiredVpnKeys(clock.now()), { destroyed: 0 });
    clock.advance(1);
    assert.deepEqual(await vpn.destroyExpiredVpnKeys(clock.now()), { destroyed: 5 });
    for (const key of blobsBefore) assert.equal(await store.getBlob(key), undefined, `${key} erased`);
    assert.equal(store.collection(RETIRED_COLLECTION).count(), 0);
    const destroyed = (await audit.tail(100)).filter((e) => e.action === 'vpn.key.destroy');
    assert.equal(destroyed.length, 5);
    assert.ok(destroyed.every((e) => e.actor === 'system'));
    // the current material still renders
    await allConfigs(vpn, 'm');
  });

  test('removing a peer removes it from every config and disables its key and PSKs', async (t) => {
    const { vpn, store } = await meshOfThree(t);
    const res = await vpn.removePeer('m', 'a', WHO);
    const configs = await allConfigs(vpn, 'm');
    assert.deepEqual([...configs.keys()], ['b', 'c']);
    for (const c of configs.values()) assert.ok(c.peers.every((p) => p.comment !== 'a'));
    assert.equal(store.collection(RETIRED_COLLECTION).count(), 3, 'a key pair and two PSKs');
    assert.equal(vpn.getNetwork('m').generation, res.generation);
    // the name can be reused: its new key has a new generation, so sealed blob ids never collide
    const again = await vpn.addPeer('m', { name: 'a' }, WHO);
    assert.ok(again.keyGeneration > res.generation);
  });

  test('rotateDue rotates each network on its own PSK and key schedule', async (t) => {
    const { vpn, clock } = await vpnSetup(t);
    await vpn.createNetwork(
      { name: 'daily', cidrs: ['10.1.0.0/24'], pskRotationMs: MS.d, keyRotationMs: 30 * MS.d },
      WHO,
    );
    await vpn.createNetwork({ name: 'never', cidrs: ['10.2.0.0/24'] }, WHO);
    for (const n of ['daily', 'never']) {
      await vpn.addPeer(n, { name: 'a' }, WHO);
      await vpn.addPeer(n, { name: 'b' }, WHO);
    }
    assert.deepEqual(await vpn.rotateDue(clock.now()), []);
    clock.advance(MS.d);
    const first = await vpn.rotateDue(clock.now());
    assert.deepEqual(
      first.map((r) => [r.network, r.psks.length, r.keys.length]),
      [['daily', 1, 0]],
    );
    assert.deepEqual(await vpn.rotateDue(clock.now()), [], 'not due again right away');
    clock.advance(29 * MS.d);
    const month = await vpn.rotateDue(clock.now());
    assert.deepEqual(
      month.map((r) => [r.network, r.psks.length, r.keys.length]),
      [['daily', 1, 2]],
    );
    assert.equal(vpn.getNetwork('never').generation, 3, 'created, two peers, never rotated');
  });
});

describe('ETags and audit', () => {
  test('the ETag moves only for configs that change, and no audit entry holds a secret', async (t) => {
    const { vpn, audit } = await vpnSetup(t);
    await vpn.createNetwork({ name: 'h', cidrs: ['10.3.0.0/24'], topology: 'hub' }, WHO);
    await vpn.addPeer('h', { name: 'hub', role: 'hub' }, WHO);
    await vpn.addPeer('h', { name: 's1' }, WHO);
    await vpn.addPeer('h', { name: 's2' }, WHO);
    const etag = (p: string) => vpn.configState('h', p).etag;
    const [hub, s1, s2] = [etag('hub'), etag('s1'), etag('s2')];
    assert.equal((await vpn.exportConfig('h', 's1', WHO)).etag, s1);
    const r = await vpn.rotate('h', { peer: 's1', what: 'psk' }, WHO);
    assert.deepEqual(r.changedConfigs, ['hub', 's1']);
    assert.notEqual(etag('hub'), hub);
    assert.notEqual(etag('s1'), s1);
    assert.equal(etag('s2'), s2, 's2 does not talk to s1: its config is unchanged');

    const secrets: string[] = [];
    for (const p of ['hub', 's1', 's2']) {
      const cfg = parseWgQuick((await vpn.exportConfig('h', p, WHO)).text);
      secrets.push(cfg.interface.privateKey!, ...cfg.peers.map((x) => x.presharedKey!));
    }
    const log = JSON.stringify(await audit.tail(1000));
    for (const s of secrets) assert.ok(!log.includes(s), 'a key or PSK in the audit log');
    const exports = (await audit.tail(1000)).filter((e) => e.action === 'vpn.config.export');
    assert.ok(exports.length >= 4);
    assert.ok(exports.every((e) => e.subject.startsWith('vpn:h/') && e.actor === WHO.actor));
  });
});

describe('fail closed', () => {
  test('no audit log, no change; a failed commit after its audit entry is followed by a failure entry', async (t) => {
    let failFlush = false;
    const store = createMemoryStore({
      beforeFlush: () => {
        if (failFlush) throw new Error('disk full (simulated)');
      },
    });
    const { vpn, audit } = await vpnSetup(t, { store });
    await vpn.createNetwork({ name: 'n', cidrs: ['10.5.0.0/24'] }, WHO);
    await vpn.addPeer('n', { name: 'a' }, WHO);
    const before = await snapshot(store);

    failFlush = true;
    await assert.rejects(vpn.addPeer('n', { name: 'b' }, WHO));
    assert.equal(await snapshot(store), before, 'the failed commit left nothing');
    const entries = (await audit.tail(20)).map((e) => [e.action, e.subject, e.outcome]);
    assert.deepEqual(entries.slice(-4), [
      ['vpn.peer.add', 'vpn:n/b', 'success'],
      ['vpn.key.create', 'vpn:n/b', 'success'],
      ['vpn.psk.create', 'vpn:n/a+b', 'success'],
      ['vpn.peer.add', 'vpn:n/b', 'failure'],
    ]);
    failFlush = false;

    await audit.close();
    await assert.rejects(vpn.rotate('n', { what: 'all' }, WHO), (e: unknown) => isAppError(e));
    await assert.rejects(vpn.exportConfig('n', 'a', WHO), (e: unknown) => isAppError(e));
    assert.equal(await snapshot(store), before, 'a change whose audit entry cannot be written is refused');
  });

  test('every blob the VPN writes is a sealed blob under sealed/, where KEK rotation looks', async (t) => {
    const { vpn, store } = await vpnSetup(t);
    await vpn.createNetwork({ name: 'n', cidrs: ['10.5.0.0/24'] }, WHO);
    for (const name of ['a', 'b', 'c']) await vpn.addPeer('n', { name }, WHO);
    await vpn.rotate('n', { what: 'all' }, WHO);
    const all = await store.listBlobs('');
    assert.equal(all.length, 2 * (3 + 3), 'three keys and three PSKs, current and disabled');
    assert.deepEqual(await store.listBlobs(SEALED_BLOB_PREFIX), all);
    for (const key of all) {
      const blob = JSON.parse((await store.getBlob(key))!.toString()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(blob).sort(), ['alg', 'ct', 'dek', 'iv', 'kek', 'tag', 'v']);
    }
  });
});
