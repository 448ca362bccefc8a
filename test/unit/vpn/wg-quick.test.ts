import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAppError } from '../../../src/core/errors.js';
import { checkEndpoint, checkPublicKey } from '../../../src/vpn/input.js';
import { configEtag, etagMatches, type ConfigPlan } from '../../../src/vpn/plan.js';
import { CLIENT_KEY_PLACEHOLDER, parseWgQuick, renderWgQuick } from '../../../src/vpn/wg-quick.js';

const K = (n: number) => Buffer.alloc(32, n).toString('base64');

const plan: ConfigPlan = {
  network: 'office',
  peer: 'alice',
  keySource: 'server',
  keyGeneration: 3,
  publicKey: K(1),
  keyBlob: 'sealed/vpn/office/key/alice/3',
  addresses: ['10.8.0.1/24', 'fd00::1/64'],
  listenPort: 51820,
  dns: ['10.8.0.53'],
  peers: [
    {
      name: 'bob',
      publicKey: K(2),
      pskGeneration: 4,
      pskBlob: 'sealed/vpn/office/psk/alice/bob/4',
      allowedIps: ['10.8.0.2/32', 'fd00::2/128', '192.168.2.0/24'],
      endpoint: '[2001:db8::2]:51820',
      keepalive: 25,
    },
  ],
};

describe('wg-quick rendering', () => {
  test('renders the fields wg-quick expects, and parses back', () => {
    const text = renderWgQuick(plan, { privateKey: K(9), psks: new Map([['bob', K(8)]]) });
    assert.match(text, /^\[Interface\]$/m);
    assert.match(text, /^Address = 10\.8\.0\.1\/24, fd00::1\/64$/m);
    const parsed = parseWgQuick(text);
    assert.deepEqual(parsed, {
      interface: {
        privateKey: K(9),
        addresses: ['10.8.0.1/24', 'fd00::1/64'],
        listenPort: 51820,
        dns: ['10.8.0.53'],
      },
      peers: [
        {
          comment: 'bob',
          publicKey: K(2),
          presharedKey: K(8),
          allowedIps: ['10.8.0.2/32', 'fd00::2/128', '192.168.2.0/24'],
          endpoint: '[2001:db8::2]:51820',
          keepalive: 25,
        },
      ],
    });
  });

  test('a client-side key leaves a placeholder comment instead of PrivateKey', () => {
    const text = renderWgQuick({ ...plan, keySource: 'client' }, { psks: new Map([['bob', K(8)]]) });
    assert.ok(text.split('\n').includes(CLIENT_KEY_PLACEHOLDER));
    assert.equal(parseWgQuick(text).interface.privateKey, undefined);
  });

  test('the parser refuses what wg would refuse', () => {
    const ok = renderWgQuick(plan, { privateKey: K(9), psks: new Map([['bob', K(8)]]) });
    for (const [what, text] of [
      ['short key', ok.replace(K(9), 'notakey')],
      ['unknown key', ok.replace('[Peer]', '[Peer]\nBogusKey = 1')],
      ['no interface', ok.replace('[Interface]', '')],
      ['peer without key', ok.replace(/^PublicKey = .*$/m, '')],
    ] as const) {
      assert.throws(
        () => parseWgQuick(text),
        (e: unknown) => isAppError(e, 'INVALID_ARGUMENT'),
        what,
      );
    }
  });

  test('ETag: a hash of the plan, so it moves with any version input; If-None-Match lists and W/', () => {
    const tag = configEtag(plan);
    assert.match(tag, /^"[A-Za-z0-9_-]{27}"$/);
    assert.equal(configEtag({ ...plan }), tag);
    assert.notEqual(configEtag({ ...plan, keyGeneration: 4 }), tag);
    assert.notEqual(configEtag({ ...plan, peers: [{ ...plan.peers[0]!, pskGeneration: 5 }] }), tag);
    assert.equal(etagMatches(tag, tag), true);
    assert.equal(etagMatches(`"x", W/${tag}`, tag), true);
    assert.equal(etagMatches('*', tag), true);
    assert.equal(etagMatches('"other"', tag), false);
    assert.equal(etagMatches(undefined, tag), false);
  });
});

describe('peer input', () => {
  test('public keys: exactly 32 bytes of canonical base64', () => {
    assert.equal(checkPublicKey(K(5), 'publicKey'), K(5));
    const bad = [
      Buffer.alloc(31, 5).toString('base64'),
      Buffer.alloc(33, 5).toString('base64'),
      K(5).replace('=', ''),
      `${K(5).slice(0, 42)}B=`, // non-zero padding bits: not canonical
      K(0),
      'hello',
    ];
    for (const b of bad) {
      assert.throws(
        () => checkPublicKey(b, 'publicKey'),
        (e: unknown) => isAppError(e, 'INVALID_ARGUMENT'),
        b,
      );
    }
  });

  test('endpoints: host:port and [v6]:port', () => {
    for (const good of ['vpn.example.org:51820', '203.0.113.5:1', '[2001:db8::1]:65535']) {
      assert.equal(checkEndpoint(good, 'endpoint'), good);
    }
    for (const bad of [
      'vpn.example.org',
      'host:0',
      'host:70000',
      '2001:db8::1:51820',
      '[10.0.0.1]:5',
      'a b:1',
    ]) {
      assert.throws(
        () => checkEndpoint(bad, 'endpoint'),
        (e: unknown) => isAppError(e, 'INVALID_ARGUMENT'),
        bad,
      );
    }
  });
});
