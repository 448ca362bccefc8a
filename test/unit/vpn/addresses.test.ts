import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAppError } from '../../../src/core/errors.js';
import {
  allocateAddresses,
  cidrsOverlap,
  firstFree,
  isAssignable,
  parsePoolCidr,
} from '../../../src/vpn/addresses.js';
import { parseIp } from '../../../src/pki/ip.js';

const pool = (c: string) => parsePoolCidr(c, 'cidr');

describe('address pools', () => {
  test('first free skips the IPv4 network and broadcast addresses and the IPv6 anycast address', () => {
    assert.equal(firstFree(pool('10.8.0.0/24'), new Set()), '10.8.0.1');
    assert.equal(firstFree(pool('10.8.0.0/24'), new Set(['10.8.0.1', '10.8.0.3'])), '10.8.0.2');
    assert.equal(firstFree(pool('10.8.0.0/30'), new Set(['10.8.0.1', '10.8.0.2'])), undefined);
    assert.equal(firstFree(pool('10.8.0.4/31'), new Set()), '10.8.0.4', 'RFC 3021: a /31 has two hosts');
    assert.equal(firstFree(pool('fd00::/64'), new Set(['fd00::1'])), 'fd00::2');
    assert.equal(isAssignable(pool('10.8.0.0/24'), parseIp('10.8.0.0')!), false);
    assert.equal(isAssignable(pool('10.8.0.0/24'), parseIp('10.8.0.255')!), false);
    assert.equal(isAssignable(pool('10.8.0.0/24'), parseIp('10.8.0.254')!), true);
    assert.equal(isAssignable(pool('fd00::/64'), parseIp('fd00::')!), false);
    assert.equal(isAssignable(pool('fd00::/64'), parseIp('fd00::ffff:ffff:ffff:ffff')!), true);
  });

  test('overlap: same family and one contains the other', () => {
    assert.equal(cidrsOverlap(pool('10.8.0.0/24'), pool('10.8.0.128/25')), true);
    assert.equal(cidrsOverlap(pool('10.0.0.0/8'), pool('10.8.0.0/24')), true);
    assert.equal(cidrsOverlap(pool('10.8.0.0/24'), pool('10.8.1.0/24')), false);
    assert.equal(cidrsOverlap(pool('10.8.0.0/24'), pool('fd00::/64')), false);
    assert.equal(cidrsOverlap(pool('fd00::/48'), pool('fd00:0:0:1::/64')), true);
  });

  test('allocation: given addresses in their pool, the first free one elsewhere', () => {
    const used = new Map([['10.8.0.1', 'hub']]);
    assert.deepEqual(allocateAddresses('n', ['10.8.0.0/24', 'fd00::/64'], [], used), ['10.8.0.2', 'fd00::1']);
    assert.deepEqual(allocateAddresses('n', ['10.8.0.0/24', 'fd00::/64'], ['fd00::0:9/128'], used), [
      '10.8.0.2',
      'fd00::9',
    ]);
    const refuse = (given: string[], code: string) =>
      assert.throws(
        () => allocateAddresses('n', ['10.8.0.0/24'], given, used),
        (e: unknown) => isAppError(e) && e.code === code,
      );
    refuse(['10.8.0.1'], 'VPN_CONFLICT');
    refuse(['10.9.0.1'], 'INVALID_ARGUMENT');
    refuse(['10.8.0.2', '10.8.0.3'], 'INVALID_ARGUMENT');
    refuse(['10.8.0.2/24'], 'INVALID_ARGUMENT');
    refuse(['not-an-ip'], 'INVALID_ARGUMENT');
  });

  test('CIDRs must have zero host bits and a prefix', () => {
    for (const bad of ['10.8.0.1/24', '10.8.0.0', '10.8.0.0/33', 'fd00::1/64', '010.8.0.0/24', '']) {
      assert.throws(
        () => parsePoolCidr(bad, 'cidrs[0]'),
        (e: unknown) => isAppError(e, 'INVALID_ARGUMENT') && e.message.startsWith('cidrs[0]:'),
        bad,
      );
    }
  });
});
