import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from '../../helpers/keys.js';
import { isAppError } from '../../../src/core/errors.js';
import { buildCsr, csrToPem, MAX_CSR_BYTES, parseCsr } from '../../../src/pki/csr.js';
import { encodePem } from '../../../src/pki/pem.js';

const isCsrInvalid = (e: unknown): boolean => isAppError(e, 'CSR_INVALID');

test('a CSR built by keywright parses, verifies and reports its names (every key type)', () => {
  const keys = [
    generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    generateKeyPairSync('ec', { namedCurve: 'P-384' }),
    generateKeyPairSync('ed25519'),
    generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ];
  for (const k of keys) {
    const der = buildCsr({
      subject: { commonName: 'web.internal', organization: 'Example' },
      sans: [
        { type: 'dns', value: 'web.internal' },
        { type: 'ip', value: '10.0.0.5' },
      ],
      privateKey: k.privateKey,
    });
    for (const input of [der, csrToPem(der), Buffer.from(csrToPem(der))]) {
      const csr = parseCsr(input);
      assert.deepEqual(csr.requestedNames, [
        { type: 'dns', value: 'web.internal' },
        { type: 'ip', value: '10.0.0.5' },
      ]);
      assert.equal(csr.subject.rdns.length, 2);
      assert.ok(csr.publicKey.equals(k.publicKey));
    }
  }
});

test('a CSR whose signature does not verify is CSR_INVALID', () => {
  const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = buildCsr({ subject: { commonName: 'a.internal' }, privateKey: k.privateKey });
  const tampered = Buffer.from(der);
  const at = tampered.indexOf(Buffer.from('a.internal'));
  tampered[at] = 'b'.charCodeAt(0);
  assert.throws(
    () => parseCsr(tampered),
    (e) => isCsrInvalid(e) && /signature/.test((e as Error).message),
  );
});

test('not PEM nor DER, the wrong PEM label, truncation, or over 64 KB: CSR_INVALID', () => {
  const k = generateKeyPairSync('ed25519');
  const der = buildCsr({ subject: { commonName: 'a.internal' }, privateKey: k.privateKey });
  assert.throws(() => parseCsr('hello world'), isCsrInvalid);
  assert.throws(() => parseCsr(encodePem('CERTIFICATE', der)), isCsrInvalid);
  assert.throws(() => parseCsr(der.subarray(0, der.length - 3)), isCsrInvalid);
  assert.throws(() => parseCsr(Buffer.alloc(10, 0x30)), isCsrInvalid);
  const huge = csrToPem(der) + '#'.repeat(MAX_CSR_BYTES);
  assert.throws(
    () => parseCsr(huge),
    (e) => isCsrInvalid(e) && (e as { details: { size: number } }).details.size > MAX_CSR_BYTES,
  );
  assert.throws(() => parseCsr(Buffer.alloc(1024 * 1024, 0x30)), isCsrInvalid);
});

test('the legacy NEW CERTIFICATE REQUEST label is accepted (RFC 7468 §7)', () => {
  const k = generateKeyPairSync('ed25519');
  const der = buildCsr({ subject: { commonName: 'a.internal' }, privateKey: k.privateKey });
  assert.equal(parseCsr(encodePem('NEW CERTIFICATE REQUEST', der)).requestedNames.length, 0);
});
