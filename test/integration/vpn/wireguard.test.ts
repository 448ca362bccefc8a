import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SealedBlob } from '../../../src/keys/port.js';
import { unsealPrivateKey } from '../../../src/keys/sealed-key.js';
import { x25519RawPrivate } from '../../../src/keys/generate.js';
import { PEERS_COLLECTION, peerKeyContext, type VpnPeerRecord } from '../../../src/vpn/model.js';
import { parseWgQuick } from '../../../src/vpn/wg-quick.js';
import { requirePeer, runPeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';
import { vpnSetup, WHO } from '../../unit/vpn/setup.js';

/** Secrets are compared by digest so a failing assertion never prints a key. */
const digest = (s: string | undefined) =>
  s === undefined ? '-' : createHash('sha256').update(s).digest('hex');

/** Private network namespaces (unshare -n) need root or user namespaces; treated like a missing peer. */
function requireNetns(t: TestContext): boolean {
  if (!requirePeer(t, 'unshare', 'util-linux') || !requirePeer(t, 'ip', 'iproute2')) return false;
  if (spawnSync('unshare', ['-n', 'true']).status === 0) return true;
  const reason = 'unshare -n is not permitted here (needs root or unprivileged user namespaces)';
  if (process.env.CI === 'true') throw new Error(`required under CI: ${reason}`);
  t.skip(reason);
  return false;
}

/** Writes a rendered config as wg-quick wants it: `<ifname>.conf`, mode 0600. */
async function writeConf(dir: string, ifname: string, text: string): Promise<string> {
  const path = join(dir, `${ifname}.conf`);
  await writeFile(path, text, { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}

// Inside `unshare -n`: a userspace wireguard-go interface, `wg setconf` with the stripped config (a
// clean rc only if wg parsed and applied every line), then `wg show dump` for comparison. The UAPI
// socket directory is shared between namespaces, hence the per-process interface name.
const VALIDATE_SH = `#!/bin/sh
CONF=$1
IF=wkv$$
export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
ip link set lo up
wireguard-go -f "$IF" >/dev/null 2>&1 &
GP=$!
for i in $(seq 50); do [ -S /var/run/wireguard/$IF.sock ] && break; sleep 0.1; done
TMP=$(mktemp)
wg-quick strip "$CONF" > "$TMP" 2>/dev/null || { kill $GP; rm -f "$TMP"; echo STRIP-FAILED >&2; exit 1; }
if timeout 10 wg setconf "$IF" "$TMP"; then wg show "$IF" dump; rc=0; else rc=1; fi
rm -f "$TMP"
kill $GP; wait $GP 2>/dev/null
exit $rc
`;

// Inside `unshare -n`: two wireguard-go peers whose UDP sockets stay on this namespace's loopback; their
// tun devices move into two more namespaces with the rendered addresses; a TCP client in one reaches a
// server in the other through the tunnel. (No ping: iputils-ping is not a test peer; TCP proves more.)
const PAIR_SH = `#!/bin/sh
set -e
A_CONF=$1; B_CONF=$2; A_ADDR=$3; B_ADDR=$4; B_IP=$5; NODE=$6
export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
ip link set lo up
A=wka$$; B=wkb$$
wireguard-go -f $A >/dev/null 2>&1 & PA=$!
wireguard-go -f $B >/dev/null 2>&1 & PB=$!
cleanup() { kill $PA $PB 2>/dev/null; wait $PA $PB 2>/dev/null; ip netns del nka$$ 2>/dev/null; ip netns del nkb$$ 2>/dev/null; rm -f "$TA" "$TB"; }
trap cleanup EXIT
for i in $(seq 50); do [ -S /var/run/wireguard/$A.sock ] && [ -S /var/run/wireguard/$B.sock ] && break; sleep 0.1; done
TA=$(mktemp); TB=$(mktemp)
wg-quick strip "$A_CONF" > "$TA" 2>/dev/null; wg-quick strip "$B_CONF" > "$TB" 2>/dev/null
# B (the side with no endpoint to dial) first: A's keepalive sends an initiation at once, and one
# sent before B listens is retried only after 5 s (REKEY_TIMEOUT).
wg setconf $B "$TB"; wg setconf $A "$TA"
ip netns add nka$$; ip netns add nkb$$
ip link set $A netns nka$$; ip link set $B netns nkb$$
ip -n nka$$ addr add $A_ADDR dev $A; ip -n nka$$ link set $A up
ip -n nkb$$ addr add $B_ADDR dev $B; ip -n nkb$$ link set $B up
ip netns exec nkb$$ "$NODE" -e "require('net').createServer(s=>{s.end('hello through wireguard\\\\n')}).listen(9000,'$B_IP');setTimeout(()=>process.exit(0),6000)" & PS=$!
sleep 0.3
set +e
ip netns exec nka$$ "$NODE" -e "const s=require('net').connect(9000,'$B_IP');s.setTimeout(2500,()=>{console.log('TIMEOUT');process.exit(1)});s.on('error',e=>{console.log('ERROR '+e.code);process.exit(1)});s.on('data',d=>{process.stdout.write('client got: '+d);process.exit(0)})"
rc=$?
kill $PS 2>/dev/null
echo "handshakes: $(ip netns exec nka$$ wg show $A latest-handshakes | awk '{print $2}')"
exit $rc
`;

interface Dump {
  privateKey: string;
  listenPort: string;
  peers: Map<string, { psk: string; endpoint: string; allowed: string[]; keepalive: string }>;
}

function parseDump(text: string): Dump {
  const [head, ...rows] = text
    .trim()
    .split('\n')
    .map((l) => l.split('\t'));
  const peers = new Map(
    rows.map((r) => [
      r[0]!,
      { psk: r[1]!, endpoint: r[2]!, allowed: r[3]!.split(',').sort(), keepalive: r[7]! },
    ]),
  );
  return { privateKey: head![0]!, listenPort: head![2]!, peers };
}

async function meshOfThree(t: TestContext) {
  const s = await vpnSetup(t);
  await s.vpn.createNetwork({ name: 'wgnet', cidrs: ['10.77.0.0/24', 'fd77::/64'] }, WHO);
  await s.vpn.addPeer(
    'wgnet',
    { name: 'a', listenPort: 51820, endpoint: '127.0.0.1:51820', keepalive: 15 },
    WHO,
  );
  await s.vpn.addPeer(
    'wgnet',
    { name: 'b', listenPort: 51821, endpoint: '127.0.0.1:51821', allowedIps: ['192.168.77.0/24'] },
    WHO,
  );
  await s.vpn.addPeer('wgnet', { name: 'c', endpoint: '[::1]:51822' }, WHO);
  return s;
}

describe('WireGuard keys and configs against wireguard-tools', () => {
  test('`wg pubkey` of every server-made private key (unsealed) is the stored public key, across rotations', async (t) => {
    const wg = requirePeer(t, 'wg', 'wireguard-tools');
    if (!wg) return;
    const { vpn, store, sealer } = await meshOfThree(t);
    let checked = 0;
    for (let round = 0; round < 3; round++) {
      for (const peer of store.collection<VpnPeerRecord>(PEERS_COLLECTION).list()) {
        const blob = JSON.parse((await store.getBlob(peer.keyBlob!))!.toString()) as SealedBlob;
        const key = await unsealPrivateKey(
          sealer,
          blob,
          peerKeyContext('wgnet', peer.name, peer.keyGeneration),
        );
        const raw = x25519RawPrivate(key);
        const res = runPeer(wg, ['pubkey'], `${raw.toString('base64')}\n`);
        raw.fill(0);
        assert.equal(res.status, 0, res.stderr);
        assert.equal(res.stdout.trim(), peer.publicKey, `${peer.name} generation ${peer.keyGeneration}`);
        // and the key in the rendered config is that same key
        const cfg = parseWgQuick((await vpn.exportConfig('wgnet', peer.name, WHO)).text);
        assert.equal(runPeer(wg, ['pubkey'], `${cfg.interface.privateKey}\n`).stdout.trim(), peer.publicKey);
        checked++;
      }
      await vpn.rotate('wgnet', { what: 'keys' }, WHO);
    }
    assert.equal(checked, 9);
  });

  test('wg-quick strip + wg setconf parse every rendered config (no interface needed)', async (t) => {
    const wg = requirePeer(t, 'wg', 'wireguard-tools');
    const wgQuick = requirePeer(t, 'wg-quick', 'wireguard-tools');
    if (!wg || !wgQuick) return;
    const { vpn } = await meshOfThree(t);
    const dir = await tempDir(t, 'kw-wg-');
    for (const peer of ['a', 'b', 'c']) {
      const path = await writeConf(dir, `kw${peer}`, (await vpn.exportConfig('wgnet', peer, WHO)).text);
      const strip = runPeer(wgQuick, ['strip', path]);
      assert.equal(strip.status, 0, strip.stderr);
      assert.doesNotMatch(strip.stdout, /^(Address|DNS)\s*=/m, 'wg-quick-only keys stripped');
      const stripped = join(dir, `${peer}.stripped`);
      await writeFile(stripped, strip.stdout, { mode: 0o600 });
      // wg parses the whole file before it talks to the kernel; without an interface it then fails on
      // the netlink call, and only that failure may appear.
      const set = runPeer(wg, ['setconf', `kwparse${peer}`, stripped]);
      assert.doesNotMatch(
        set.stderr,
        /parsing error|Line unrecognized|not the correct length|Unable to parse/i,
      );
      assert.match(set.stderr, /Unable to (modify|access) interface|No such device/);
    }
    // The check can fail: a broken key is refused by the same command.
    const broken = join(dir, 'broken.stripped');
    await writeFile(broken, '[Interface]\nPrivateKey = notakey\n', { mode: 0o600 });
    assert.match(
      runPeer(wg, ['setconf', 'kwparsex', broken]).stderr,
      /not the correct length|parsing error/i,
    );
  });

  test('a wireguard-go interface takes each rendered config as is (wg setconf rc 0, wg show matches)', async (t) => {
    if (!requirePeer(t, 'wg', 'wireguard-tools') || !requirePeer(t, 'wireguard-go') || !requireNetns(t))
      return;
    const { vpn } = await meshOfThree(t);
    const dir = await tempDir(t, 'kw-wg-');
    const script = join(dir, 'validate.sh');
    await writeFile(script, VALIDATE_SH);
    for (const peer of ['a', 'b', 'c']) {
      const text = (await vpn.exportConfig('wgnet', peer, WHO)).text;
      const cfg = parseWgQuick(text);
      const path = await writeConf(dir, `kv${peer}`, text);
      const res = runPeer('unshare', ['-n', 'sh', script, path]);
      assert.equal(res.status, 0, `wg setconf refused ${peer}'s config: ${res.stderr}`);
      const dump = parseDump(res.stdout);
      assert.ok(
        dump.privateKey === cfg.interface.privateKey,
        `${peer}: the interface runs with the rendered private key`,
      );
      if (cfg.interface.listenPort !== undefined)
        assert.equal(dump.listenPort, String(cfg.interface.listenPort));
      assert.deepEqual([...dump.peers.keys()].sort(), cfg.peers.map((p) => p.publicKey).sort());
      for (const p of cfg.peers) {
        const live = dump.peers.get(p.publicKey)!;
        assert.equal(digest(live.psk), digest(p.presharedKey), `${peer}→${p.comment}: PSK applied`);
        assert.deepEqual(live.allowed, [...p.allowedIps].sort());
        assert.equal(live.endpoint, p.endpoint);
        assert.equal(live.keepalive, p.keepalive === undefined ? 'off' : String(p.keepalive));
      }
    }
  });

  test('two peers come up in separate network namespaces and talk through the tunnel; after a PSK rotation only configs of the same generation do', async (t) => {
    if (!requirePeer(t, 'wg', 'wireguard-tools') || !requirePeer(t, 'wireguard-go') || !requireNetns(t))
      return;
    const { vpn } = await vpnSetup(t);
    await vpn.createNetwork({ name: 'tun', cidrs: ['10.78.0.0/24'], topology: 'hub' }, WHO);
    await vpn.addPeer(
      'tun',
      { name: 'hub', role: 'hub', listenPort: 51830, endpoint: '127.0.0.1:51830' },
      WHO,
    );
    await vpn.addPeer('tun', { name: 'spoke', listenPort: 51831, keepalive: 1 }, WHO);
    const dir = await tempDir(t, 'kw-wg-');
    const script = join(dir, 'pair.sh');
    await writeFile(script, PAIR_SH);
    const render = async (peer: string, tag: string) =>
      writeConf(dir, `k${tag}${peer.slice(0, 3)}`, (await vpn.exportConfig('tun', peer, WHO)).text);
    const up = (spokeConf: string, hubConf: string) =>
      runPeer('unshare', [
        '-n',
        'sh',
        script,
        spokeConf,
        hubConf,
        '10.78.0.2/24',
        '10.78.0.1/24',
        '10.78.0.1',
        process.execPath,
      ]);

    const started = Date.now();
    const [spoke1, hub1] = [await render('spoke', 'o'), await render('hub', 'o')];
    const first = up(spoke1, hub1);
    assert.equal(first.status, 0, `${first.stdout}\n${first.stderr}`);
    assert.match(first.stdout, /client got: hello through wireguard/);
    assert.match(first.stdout, /handshakes: [1-9]\d*/);

    await vpn.rotate('tun', { what: 'psk' }, WHO);
    const [spoke2, hub2] = [await render('spoke', 'n'), await render('hub', 'n')];
    const rotated = up(spoke2, hub2);
    assert.equal(rotated.status, 0, `${rotated.stdout}\n${rotated.stderr}`);
    assert.match(rotated.stdout, /client got: hello through wireguard/);

    const mixed = up(spoke1, hub2); // old PSK on one side, new on the other: no handshake
    assert.notEqual(mixed.status, 0, mixed.stdout);
    assert.match(mixed.stdout, /TIMEOUT|ERROR/);
    assert.match(mixed.stdout, /handshakes: 0/);
    t.diagnostic(`three tunnel runs took ${Date.now() - started} ms`);
  });
});
