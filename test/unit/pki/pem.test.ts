import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePem, decodePemAll, decodePemBlocks, derOrPem, encodePem } from '../../../src/pki/pem.js';
import { isAppError } from '../../../src/core/errors.js';

const der = Buffer.from('3003020101', 'hex');
const isParse = (e: unknown): boolean => isAppError(e, 'PKI_PARSE');

test('encodes with 64-character lines and decodes back', () => {
  const big = Buffer.alloc(100, 7);
  const pem = encodePem('CERTIFICATE', big);
  const lines = pem.trim().split('\n');
  assert.equal(lines[0], '-----BEGIN CERTIFICATE-----');
  assert.equal(lines.at(-1), '-----END CERTIFICATE-----');
  assert.ok(lines.slice(1, -1).every((l) => l.length <= 64));
  assert.equal(lines[1]!.length, 64);
  assert.deepEqual(decodePem(pem, 'CERTIFICATE'), big);
});

test('ignores text around blocks and whitespace inside (RFC 7468 §2, §3)', () => {
  const pem = `Bag Attributes\n  friendlyName: x\n${encodePem('CERTIFICATE', der).replace('\n', '\r\n  ')}trailer`;
  assert.deepEqual(decodePem(pem, 'CERTIFICATE'), der);
});

test('strict labels: wrong label, mismatched END, several blocks, none, bad base64 are PKI_PARSE', () => {
  assert.throws(() => decodePem(encodePem('PRIVATE KEY', der), 'CERTIFICATE'), isParse);
  assert.throws(
    () => decodePem('-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END X509 CRL-----\n', 'CERTIFICATE'),
    isParse,
  );
  assert.throws(
    () => decodePem(encodePem('CERTIFICATE', der) + encodePem('CERTIFICATE', der), 'CERTIFICATE'),
    isParse,
  );
  assert.throws(() => decodePem('hello', 'CERTIFICATE'), isParse);
  assert.throws(() => decodePem('-----BEGIN CERTIFICATE-----\nMAMCAQE=\n', 'CERTIFICATE'), isParse);
  assert.throws(
    () => decodePem('-----BEGIN CERTIFICATE-----\nMAM*AQE=\n-----END CERTIFICATE-----\n', 'CERTIFICATE'),
    isParse,
  );
  assert.throws(
    () => decodePem('-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n', 'CERTIFICATE'),
    isParse,
  );
  assert.throws(
    () =>
      decodePem(
        '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nMAMCAQE=\n-----END RSA PRIVATE KEY-----\n',
        'RSA PRIVATE KEY',
      ),
    (e) => isParse(e) && /RFC 1421/.test((e as Error).message),
  );
});

test('chains and DER-or-PEM input', () => {
  const chain = encodePem('CERTIFICATE', der) + encodePem('CERTIFICATE', Buffer.from('3000', 'hex'));
  assert.equal(decodePemBlocks(chain, 'CERTIFICATE').length, 2);
  assert.throws(() => decodePemBlocks(chain + encodePem('X509 CRL', der), 'CERTIFICATE'), isParse);
  assert.equal(decodePemAll(chain).length, 2);
  assert.deepEqual(derOrPem(der, 'CERTIFICATE', 'x'), der);
  assert.deepEqual(derOrPem(Buffer.from(encodePem('CERTIFICATE', der)), 'CERTIFICATE', 'x'), der);
  assert.deepEqual(derOrPem(encodePem('CERTIFICATE', der), 'CERTIFICATE', 'x'), der);
});
