import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from 'acme-client';
import { createClient, DEFAULT_CLIENT_SETTINGS, privateKeyPemBuffer } from '../../../src/acme/client.js';
import { jwkThumbprint } from '../../../src/acme/accounts.js';
import { identifiersFor } from '../../../src/acme/order.js';
import { generateKeyPair } from '../../../src/keys/generate.js';
import { isAppError } from '../../../src/core/errors.js';

describe('acme-client boundary', () => {
  test('the PEM buffer for a key change is byte-identical to node:crypto PKCS#8 PEM', async () => {
    for (const type of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
      const { privateKey } = await generateKeyPair(type);
      const pem = privateKeyPemBuffer(privateKey);
      assert.equal(pem.toString('utf8'), privateKey.export({ type: 'pkcs8', format: 'pem' }), type);
    }
  });

  test("RFC 7638 thumbprint equals acme-client's, and the client signs with the KeyObject it was given", async () => {
    const { privateKey } = await generateKeyPair('ec-p256');
    const client = await createClient(
      { directoryUrl: 'https://ca.invalid/dir', accountKey: privateKey },
      DEFAULT_CLIENT_SETTINGS,
    );
    assert.ok(client instanceof Client);
    const keyAuth = await client.getChallengeKeyAuthorization({
      type: 'http-01',
      token: 'tok',
      url: 'u',
      status: 'pending',
    });
    assert.equal(keyAuth, `tok.${jwkThumbprint(privateKey)}`);
  });

  test('identifiers from SANs: DNS lowercased, IPs in RFC 8738 text form, duplicates dropped, others refused', () => {
    assert.deepEqual(
      identifiersFor([
        'WWW.Example.org.',
        'www.example.org',
        'IP:10.0.0.5',
        '2001:DB8:0:0::1',
        '*.example.org',
      ]),
      [
        { type: 'dns', value: 'www.example.org' },
        { type: 'ip', value: '10.0.0.5' },
        { type: 'ip', value: '2001:db8::1' },
        { type: 'dns', value: '*.example.org' },
      ],
    );
    assert.throws(
      () => identifiersFor(['ops@example.org']),
      (e) => isAppError(e, 'INVALID_ARGUMENT') && /DNS names and IP addresses only/.test(e.message),
    );
    assert.throws(() => identifiersFor([]), /at least one/);
  });
});
