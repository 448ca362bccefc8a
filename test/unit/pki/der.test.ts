import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bitString,
  bmpString,
  boolean,
  enumerated,
  explicit,
  generalizedTime,
  ia5String,
  implicit,
  integer,
  namedBitString,
  nul,
  octetString,
  oid,
  printableString,
  sequence,
  setOf,
  tlv,
  unsignedInteger,
  utcTime,
  utf8String,
  x509Time,
} from '../../../src/pki/der.js';
import {
  parseDer,
  readBitString,
  readBoolean,
  readInteger,
  readNamedBits,
  readOid,
  readString,
  readTime,
} from '../../../src/pki/der-reader.js';
import { isAppError } from '../../../src/core/errors.js';

const hex = (b: Buffer): string => b.toString('hex');

describe('DER writer known answers', () => {
  test('INTEGER: two’s complement in the fewest octets (X.690 §8.3)', () => {
    const cases: Array<[bigint | number, string]> = [
      [0, '020100'],
      [127, '02017f'],
      [128, '02020080'],
      [256, '02020100'],
      [-1, '0201ff'],
      [-128, '020180'],
      [-129, '0202ff7f'],
      [2n ** 64n, '0209010000000000000000'],
    ];
    for (const [v, want] of cases) assert.equal(hex(integer(v)), want, String(v));
  });

  test('unsigned INTEGER: a leading 0x00 keeps a top-bit-set magnitude positive; leading zeros dropped', () => {
    assert.equal(hex(unsignedInteger(Buffer.from('ff01', 'hex'))), '020300ff01');
    assert.equal(hex(unsignedInteger(Buffer.from('00007f', 'hex'))), '02017f');
    assert.equal(hex(unsignedInteger(Buffer.from('0000', 'hex'))), '020100');
  });

  test('OBJECT IDENTIFIER: X.690 §8.19.5 example and X.509 OIDs', () => {
    assert.equal(hex(oid('2.100.3')), '0603813403'); // the standard's own example
    assert.equal(hex(oid('1.2.840.113549.1.1.11')), '06092a864886f70d01010b');
    assert.equal(hex(oid('2.5.29.17')), '0603551d11');
    assert.equal(hex(oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
    assert.throws(
      () => oid('1.40.1'),
      (e) => isAppError(e, 'INVALID_ARGUMENT'),
    );
    assert.throws(
      () => oid('1.02'),
      (e) => isAppError(e, 'INVALID_ARGUMENT'),
    );
  });

  test('named BIT STRING drops trailing zero bits (X.690 §11.2.2): KeyUsage values', () => {
    assert.equal(hex(namedBitString([0])), '03020780'); // digitalSignature
    assert.equal(hex(namedBitString([0, 2])), '030205a0'); // digitalSignature, keyEncipherment
    assert.equal(hex(namedBitString([5, 6])), '03020106'); // keyCertSign, cRLSign
    assert.equal(hex(namedBitString([8])), '0303070080'); // decipherOnly spans two octets
    assert.equal(hex(namedBitString([])), '030100');
    assert.equal(hex(bitString(Buffer.from([1, 2]))), '0303000102');
  });

  test('definite lengths in the shortest form (X.690 §10.1)', () => {
    assert.equal(hex(octetString(Buffer.alloc(127))).slice(0, 4), '047f');
    assert.equal(hex(octetString(Buffer.alloc(128))).slice(0, 6), '048180');
    assert.equal(hex(octetString(Buffer.alloc(256))).slice(0, 8), '04820100');
    assert.equal(hex(octetString(Buffer.alloc(65536))).slice(0, 10), '0483010000');
  });

  test('BOOLEAN TRUE is 0xFF, NULL, ENUMERATED', () => {
    assert.equal(hex(boolean(true)), '0101ff');
    assert.equal(hex(boolean(false)), '010100');
    assert.equal(hex(nul()), '0500');
    assert.equal(hex(enumerated(1)), '0a0101');
  });

  test('strings: UTF8, Printable (alphabet enforced), IA5 (7-bit), BMP', () => {
    assert.equal(hex(utf8String('é')), '0c02c3a9');
    assert.equal(hex(printableString('DE')), '13024445');
    assert.throws(
      () => printableString('a@b'),
      (e) => isAppError(e, 'INVALID_ARGUMENT'),
    );
    assert.equal(hex(ia5String('a@b')), '1603614062');
    assert.throws(
      () => ia5String('é'),
      (e) => isAppError(e, 'INVALID_ARGUMENT'),
    );
    assert.equal(hex(bmpString('ab')), '1e0400610062');
  });

  test('UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', () => {
    assert.equal(
      utcTime(new Date(Date.UTC(2049, 11, 31, 23, 59, 59))).toString('latin1', 2),
      '491231235959Z',
    );
    assert.equal(x509Time(new Date(Date.UTC(2049, 11, 31, 23, 59, 59)))[0], 0x17);
    const g = x509Time(new Date(Date.UTC(2050, 0, 1)));
    assert.equal(g[0], 0x18);
    assert.equal(g.toString('latin1', 2), '20500101000000Z');
    assert.equal(x509Time(new Date(Date.UTC(1950, 0, 1)))[0], 0x17);
    assert.equal(x509Time(new Date(Date.UTC(1949, 11, 31)))[0], 0x18);
    // milliseconds are dropped, never written as a fraction
    assert.equal(
      generalizedTime(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))).toString('latin1', 2),
      '20260102030405Z',
    );
    assert.throws(
      () => utcTime(new Date(Date.UTC(2050, 0, 1))),
      (e) => isAppError(e, 'INVALID_ARGUMENT'),
    );
  });

  test('context tags: explicit wraps, implicit replaces the tag and keeps the constructed bit', () => {
    assert.equal(hex(explicit(0, integer(2))), 'a003020102');
    assert.equal(hex(implicit(2, ia5String('a'))), '820161');
    assert.equal(hex(implicit(1, sequence(integer(1)))), 'a103020101');
  });

  test('SET OF sorts its members by encoding (X.690 §11.6)', () => {
    assert.equal(hex(setOf([integer(2), integer(1)])), '3106020101020102');
  });
});

describe('DER reader', () => {
  test('reads back what the writer wrote', () => {
    const der = sequence(
      integer(-129),
      oid('1.2.840.113549.1.1.11'),
      namedBitString([5, 6]),
      utf8String('é'),
      utcTime(new Date(Date.UTC(2030, 5, 6, 7, 8, 9))),
    );
    const [i, o, b, s, t] = parseDer(der, 'test').children();
    assert.equal(readInteger(i!), -129n);
    assert.equal(readOid(o!), '1.2.840.113549.1.1.11');
    assert.deepEqual(readNamedBits(b!), [5, 6]);
    assert.equal(readString(s!), 'é');
    assert.equal(readTime(t!).toISOString(), '2030-06-06T07:08:09.000Z');
    assert.deepEqual(readBitString(parseDer(bitString(Buffer.from([9])), 't')).bytes, Buffer.from([9]));
  });

  test('UTCTime years below 50 are 20YY, others 19YY', () => {
    assert.equal(readTime(parseDer(tlv(0x17, Buffer.from('491231235959Z')), 't')).getUTCFullYear(), 2049);
    assert.equal(readTime(parseDer(tlv(0x17, Buffer.from('500101000000Z')), 't')).getUTCFullYear(), 1950);
  });

  test('refuses what DER forbids, with PKI_PARSE', () => {
    const bad: Array<[string, string]> = [
      ['3080020100' + '0000', 'indefinite length'],
      ['30810102' + '01', 'long form for a short length'],
      ['0202007f', 'non-minimal INTEGER'],
      ['020100ff', 'trailing bytes'],
      ['3005020101', 'truncated'],
      ['1f0100', 'high tag number'],
      ['0101' + '01', 'BOOLEAN not 00/FF'],
      ['170d' + Buffer.from('491331235959Z').toString('hex'), 'month 13'],
      ['170d' + Buffer.from('4912312359').toString('hex') + '5a5a5a', 'not digits'],
    ];
    for (const [h, why] of bad) {
      assert.throws(
        () => {
          const el = parseDer(Buffer.from(h, 'hex'), 'test');
          if (el.tag === 0x02) readInteger(el);
          if (el.tag === 0x01) readBoolean(el);
          if (el.tag === 0x17) readTime(el);
        },
        (e) => isAppError(e, 'PKI_PARSE'),
        why,
      );
    }
  });
});
