import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cidrContains,
  cidrFromConstraintBytes,
  cidrToConstraintBytes,
  formatIp,
  parseCidr,
  parseIp,
} from '../../../src/pki/ip.js';

test('parses IPv4 and IPv6 into 4 and 16 octets; refuses the rest', () => {
  assert.equal(parseIp('10.0.0.5')!.toString('hex'), '0a000005');
  assert.equal(parseIp('::1')!.toString('hex'), '0'.repeat(30) + '01');
  assert.equal(parseIp('fd00::1:2')!.toString('hex'), 'fd00' + '0'.repeat(20) + '00010002');
  assert.equal(parseIp('::ffff:10.0.0.1')!.toString('hex'), '0'.repeat(20) + 'ffff0a000001');
  assert.equal(parseIp('1:2:3:4:5:6:7:8')!.toString('hex'), '00010002000300040005000600070008');
  for (const bad of ['10.0.0', '010.0.0.1', '1::2::3', 'fe80::1%eth0', 'web.internal', '', '1.2.3.4/8'])
    assert.equal(parseIp(bad), undefined, bad);
});

test('formats IPv6 as RFC 5952 recommends', () => {
  const f = (s: string): string => formatIp(parseIp(s)!);
  assert.equal(f('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(f('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1'); // a single zero group is not compressed
  assert.equal(f('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1'); // the longest run wins
  assert.equal(f('::'), '::');
  assert.equal(f('10.1.2.3'), '10.1.2.3');
});

test('CIDR ranges: containment, host bits, family, constraint octets', () => {
  const net = parseCidr('10.0.0.0/8')!;
  assert.ok(cidrContains(net, parseIp('10.200.1.1')!));
  assert.ok(!cidrContains(net, parseIp('11.0.0.1')!));
  assert.ok(!cidrContains(net, parseIp('::ffff:10.0.0.1')!), 'IPv4 range never holds an IPv6 address');
  assert.equal(parseCidr('10.0.0.1/8'), undefined, 'host bits set');
  assert.equal(parseCidr('10.0.0.0/33'), undefined);
  assert.equal(parseCidr('fd00::/8')!.prefix, 8);
  assert.equal(parseCidr('10.0.0.5')!.prefix, 32);
  assert.equal(cidrToConstraintBytes(parseCidr('192.168.0.0/16')!).toString('hex'), 'c0a80000ffff0000');
  assert.deepEqual(
    cidrFromConstraintBytes(Buffer.from('c0a80000ffff0000', 'hex')),
    parseCidr('192.168.0.0/16'),
  );
  assert.equal(
    cidrFromConstraintBytes(Buffer.from('c0a80000ff00ff00', 'hex')),
    undefined,
    'non-contiguous mask',
  );
});
