import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createKeyRing } from '../../../src/keys/software/key-ring.js';
import { SoftwareSealer } from '../../../src/keys/software/sealer.js';
import { VpnService } from '../../../src/vpn/service.js';
import { parseWgQuick } from '../../../src/vpn/wg-quick.js';
import { startApi, type Harness, type HttpResult } from '../../helpers/api-harness.js';
import { snapshot } from '../../unit/vpn/setup.js';

function assertProblem(res: HttpResult, status: number, code: string, detail?: RegExp): void {
  assert.equal(res.status, status, res.text);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  assert.equal(res.json.code, code, res.text);
  if (detail) assert.match(res.json.detail, detail);
}

async function vpnApi(t: Parameters<typeof startApi>[0]): Promise<Harness> {
  const sealer = new SoftwareSealer(createKeyRing(randomBytes(32)));
  return startApi(t, { vpn: ({ store, audit }) => new VpnService({ store, sealer, audit }) });
}

async function officeWithTwoPeers(api: Harness) {
  const token = api.adminToken;
  const net = await api.call('POST', '/v1/vpn/networks', {
    token,
    body: { name: 'office', cidrs: ['10.8.0.0/29'], listenPort: 51820, dns: ['10.8.0.1'], topology: 'hub' },
  });
  assert.equal(net.status, 201, net.text);
  for (const body of [
    { name: 'gw', role: 'hub', endpoint: 'gw.example:51820' },
    { name: 'alice' },
    { name: 'bob' },
  ]) {
    const res = await api.call('POST', '/v1/vpn/networks/office/peers', { token, body });
    assert.equal(res.status, 201, res.text);
  }
}

describe('VPN API over real HTTP', () => {
  test('networks, peers and configs: ETag, If-None-Match 304, rotation moves the ETag, exports audited', async (t) => {
    const api = await vpnApi(t);
    const token = api.adminToken;
    await officeWithTwoPeers(api);

    const list = await api.call('GET', '/v1/vpn/networks', { token });
    assert.deepEqual(
      list.json.networks.map((n: any) => [n.name, n.peerCount, n.topology]),
      [['office', 3, 'hub']],
    );
    const detail = await api.call('GET', '/v1/vpn/networks/office', { token });
    assert.equal(detail.status, 200);
    assert.deepEqual(
      detail.json.peers.map((p: any) => [p.name, p.role, p.addresses[0], p.keySource]),
      [
        ['alice', 'spoke', '10.8.0.2', 'server'],
        ['bob', 'spoke', '10.8.0.3', 'server'],
        ['gw', 'hub', '10.8.0.1', 'server'],
      ],
    );

    const cfg = await api.call('GET', '/v1/vpn/networks/office/peers/alice/config', { token });
    assert.equal(cfg.status, 200, cfg.text);
    assert.match(String(cfg.headers['content-type']), /^text\/plain/);
    assert.equal(cfg.headers['cache-control'], 'no-store');
    const etag = String(cfg.headers.etag);
    assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
    const parsed = parseWgQuick(cfg.text);
    assert.deepEqual(parsed.interface.addresses, ['10.8.0.2/29']);
    assert.deepEqual(
      parsed.peers.map((p) => [p.comment, p.allowedIps, p.endpoint]),
      [['gw', ['10.8.0.0/29'], 'gw.example:51820']],
    );
    // The network view carries public keys only: none of alice's secrets.
    assert.ok(!detail.text.includes(parsed.interface.privateKey!));
    assert.ok(!detail.text.includes(parsed.peers[0]!.presharedKey!));

    const same = await api.call('GET', '/v1/vpn/networks/office/peers/alice/config', {
      token,
      headers: { 'if-none-match': etag },
    });
    assert.equal(same.status, 304);
    assert.equal(same.headers.etag, etag);
    assert.equal(same.text, '');

    const rotated = await api.call('POST', '/v1/vpn/networks/office/rotate', {
      token,
      body: { peer: 'bob', what: 'psk' },
    });
    assert.equal(rotated.status, 200, rotated.text);
    assert.deepEqual(rotated.json.psks, ['bob+gw']);
    assert.deepEqual(rotated.json.changedConfigs, ['bob', 'gw']);
    const aliceAgain = await api.call('GET', '/v1/vpn/networks/office/peers/alice/config', {
      token,
      headers: { 'if-none-match': etag },
    });
    assert.equal(aliceAgain.status, 304, 'alice does not talk to bob: unchanged');
    const all = await api.call('POST', '/v1/vpn/networks/office/rotate', { token, body: { what: 'all' } });
    assert.equal(all.status, 200);
    const fresh = await api.call('GET', '/v1/vpn/networks/office/peers/alice/config', {
      token,
      headers: { 'if-none-match': etag },
    });
    assert.equal(fresh.status, 200);
    assert.notEqual(fresh.headers.etag, etag);
    assert.notEqual(parseWgQuick(fresh.text).interface.privateKey, parsed.interface.privateKey);

    const removed = await api.call('DELETE', '/v1/vpn/networks/office/peers/bob', { token });
    assert.equal(removed.status, 200, removed.text);
    const gw = parseWgQuick(
      (await api.call('GET', '/v1/vpn/networks/office/peers/gw/config', { token })).text,
    );
    assert.deepEqual(
      gw.peers.map((p) => p.comment),
      ['alice'],
    );

    const log = await api.audit.tail(200);
    const exports = log.filter((e) => e.action === 'vpn.config.export');
    assert.equal(exports.length, 3, 'two 200s for alice and one for gw; 304s export nothing');
    assert.ok(exports.every((e) => e.requestId !== undefined && e.actor.startsWith('tok_')));
    assert.deepEqual(
      exports.map((e) => e.subject),
      ['vpn:office/alice', 'vpn:office/alice', 'vpn:office/gw'],
    );
    const text = JSON.stringify(log);
    assert.ok(!text.includes(parsed.interface.privateKey!) && !text.includes(parsed.peers[0]!.presharedKey!));
    for (const action of [
      'vpn.network.create',
      'vpn.peer.add',
      'vpn.key.create',
      'vpn.psk.create',
      'vpn.rotate',
      'vpn.peer.remove',
    ]) {
      assert.ok(
        log.some((e) => e.action === action),
        action,
      );
    }
  });

  test('a service token scoped to one peer reads only its own config', async (t) => {
    const api = await vpnApi(t);
    await officeWithTwoPeers(api);
    const { token: alice } = await api.tokens.create({
      role: 'service',
      scopes: ['vpn:office/alice'],
      createdBy: 'test',
    });
    const own = await api.call('GET', '/v1/vpn/networks/office/peers/alice/config', { token: alice });
    assert.equal(own.status, 200, own.text);
    assertProblem(
      await api.call('GET', '/v1/vpn/networks/office/peers/bob/config', { token: alice }),
      403,
      'ACCESS_DENIED',
      /not on vpn:office\/bob/,
    );
    // Denied before existence is checked: a scoped token learns nothing about other names.
    assertProblem(
      await api.call('GET', '/v1/vpn/networks/other/peers/x/config', { token: alice }),
      403,
      'ACCESS_DENIED',
    );
    assertProblem(await api.call('GET', '/v1/vpn/networks/office', { token: alice }), 403, 'ACCESS_DENIED');
    assertProblem(
      await api.call('POST', '/v1/vpn/networks/office/rotate', { token: alice, body: { what: 'all' } }),
      403,
      'ACCESS_DENIED',
    );
    const { token: reader } = await api.tokens.create({ role: 'reader', createdBy: 'test' });
    assert.equal((await api.call('GET', '/v1/vpn/networks/office', { token: reader })).status, 200);
    assertProblem(
      await api.call('GET', '/v1/vpn/networks/office/peers/alice/config', { token: reader }),
      403,
      'ACCESS_DENIED',
    );
    const { token: opAlice } = await api.tokens.create({
      role: 'operator',
      scopes: ['vpn:office'],
      createdBy: 'test',
    });
    const visible = await api.call('GET', '/v1/vpn/networks', { token: opAlice });
    assert.deepEqual(
      visible.json.networks.map((n: any) => n.name),
      ['office'],
    );
    assertProblem(
      await api.call('GET', '/v1/vpn/networks/office/peers/alice/config', { token: opAlice }),
      403,
      'ACCESS_DENIED',
    );
  });

  test('bad input: 400 naming the field, 404, 409; the store is unchanged after each', async (t) => {
    const api = await vpnApi(t);
    const token = api.adminToken;
    await officeWithTwoPeers(api);
    const before = await snapshot(api.store);
    const cases: Array<[string, string, string, unknown, number, string, RegExp]> = [
      [
        'bad CIDR',
        'POST',
        '/v1/vpn/networks',
        { name: 'x', cidrs: ['10.9.0.1/24'] },
        400,
        'INVALID_ARGUMENT',
        /cidrs\[0\]/,
      ],
      [
        'overlapping pool',
        'POST',
        '/v1/vpn/networks',
        { name: 'x', cidrs: ['10.8.0.0/16'] },
        409,
        'VPN_CONFLICT',
        /network x overlaps .* network office/,
      ],
      [
        'wrong type',
        'POST',
        '/v1/vpn/networks',
        { name: 'x', cidrs: ['10.9.0.0/24'], listenPort: 'high' },
        400,
        'API_BAD_REQUEST',
        /listenPort/,
      ],
      [
        'unknown field',
        'POST',
        '/v1/vpn/networks',
        { name: 'x', cidrs: ['10.9.0.0/24'], colour: 'red' },
        400,
        'API_BAD_REQUEST',
        /colour/,
      ],
      [
        'bad duration',
        'POST',
        '/v1/vpn/networks',
        { name: 'x', cidrs: ['10.9.0.0/24'], pskRotation: 'often' },
        400,
        'API_BAD_REQUEST',
        /pskRotation/,
      ],
      [
        'unknown network',
        'POST',
        '/v1/vpn/networks/nowhere/peers',
        { name: 'x' },
        404,
        'VPN_NOT_FOUND',
        /nowhere/,
      ],
      [
        'bad public key',
        'POST',
        '/v1/vpn/networks/office/peers',
        { name: 'x', publicKey: randomBytes(31).toString('base64') },
        400,
        'INVALID_ARGUMENT',
        /publicKey/,
      ],
      [
        'duplicate peer',
        'POST',
        '/v1/vpn/networks/office/peers',
        { name: 'alice' },
        409,
        'VPN_CONFLICT',
        /alice/,
      ],
      [
        'taken address',
        'POST',
        '/v1/vpn/networks/office/peers',
        { name: 'x', addresses: ['10.8.0.2'] },
        409,
        'VPN_CONFLICT',
        /held by peer alice/,
      ],
      [
        'unknown rotation kind',
        'POST',
        '/v1/vpn/networks/office/rotate',
        { what: 'everything' },
        400,
        'API_BAD_REQUEST',
        /what/,
      ],
    ];
    for (const [what, method, path, body, status, code, detail] of cases) {
      assertProblem(await api.call(method, path, { token, body }), status, code, detail);
      assert.equal(await snapshot(api.store), before, `${what}: nothing stored`);
    }
    for (const path of [
      '/v1/vpn/networks/nowhere',
      '/v1/vpn/networks/nowhere/peers/x/config',
      '/v1/vpn/networks/office/peers/zed/config',
    ]) {
      assertProblem(await api.call('GET', path, { token }), 404, 'VPN_NOT_FOUND');
    }
    // Fill the /29 (6 hosts, 3 used), then one more.
    for (const name of ['p4', 'p5', 'p6']) {
      assert.equal(
        (await api.call('POST', '/v1/vpn/networks/office/peers', { token, body: { name } })).status,
        201,
      );
    }
    const full = await snapshot(api.store);
    assertProblem(
      await api.call('POST', '/v1/vpn/networks/office/peers', { token, body: { name: 'p7' } }),
      409,
      'VPN_POOL_EXHAUSTED',
      /10\.8\.0\.0\/29/,
    );
    assert.equal(await snapshot(api.store), full);
  });

  test('long poll: ?wait returns the new config as soon as a rotation commits, or 304 at the deadline', async (t) => {
    const api = await vpnApi(t);
    const token = api.adminToken;
    await officeWithTwoPeers(api);
    const first = await api.call('GET', '/v1/vpn/networks/office/peers/alice/config', { token });
    const etag = String(first.headers.etag);
    const started = Date.now();
    const polled = api.call('GET', '/v1/vpn/networks/office/peers/alice/config?wait=20', {
      token,
      headers: { 'if-none-match': etag },
    });
    await new Promise((r) => setTimeout(r, 300));
    await api.call('POST', '/v1/vpn/networks/office/rotate', {
      token,
      body: { peer: 'alice', what: 'keys' },
    });
    const res = await polled;
    assert.equal(res.status, 200, res.text);
    assert.notEqual(res.headers.etag, etag);
    assert.ok(Date.now() - started < 5000, 'answered on the change, not at the deadline');

    const t0 = Date.now();
    const idle = await api.call('GET', '/v1/vpn/networks/office/peers/alice/config?wait=1', {
      token,
      headers: { 'if-none-match': String(res.headers.etag) },
    });
    assert.equal(idle.status, 304);
    assert.ok(Date.now() - t0 >= 950, 'waited for the deadline');
  });

  test('without the VPN service (sealed) the routes answer 503', async (t) => {
    const api = await startApi(t);
    assertProblem(await api.call('GET', '/v1/vpn/networks', { token: api.adminToken }), 503, 'DAEMON_SEALED');
  });
});
