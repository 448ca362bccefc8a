import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ariCertId, clampRetryAfter, parseRenewalInfo, pickRenewalTime } from '../../../src/acme/ari.js';
import type { ParsedCertificate } from '../../../src/pki/certificate.js';
import { isAppError } from '../../../src/core/errors.js';

const NOW = new Date('2025-01-01T00:00:00Z');

describe('ARI (RFC 9773)', () => {
  test('§4.1 example: AKI 69:88:5B…C8:D4 and serial 00:87:65:43:21 give aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE', () => {
    const cert = {
      serialHex: '87654321',
      serialNumber: Buffer.from('0087654321', 'hex'),
      extensions: [
        {
          kind: 'authorityKeyIdentifier',
          critical: false,
          keyId: Buffer.from('69885B6B87464041E1B37B847BA0AE2CDE01C8D4', 'hex'),
        },
      ],
    } as unknown as ParsedCertificate;
    assert.equal(ariCertId(cert), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
    const noAki = { ...cert, extensions: [] } as unknown as ParsedCertificate;
    assert.throws(
      () => ariCertId(noAki),
      (err) => isAppError(err, 'ACME_ERROR') && /Authority Key Identifier/.test(err.message),
    );
  });

  test('§4.2 example response parses; Retry-After 21600 s', () => {
    const info = parseRenewalInfo(
      {
        suggestedWindow: { start: '2025-01-02T04:00:00Z', end: '2025-01-03T04:00:00Z' },
        explanationURL: 'https://acme.example.com/docs/ari',
      },
      '21600',
      NOW,
    );
    assert.deepEqual(info, {
      window: { start: new Date('2025-01-02T04:00:00Z'), end: new Date('2025-01-03T04:00:00Z') },
      explanationUrl: 'https://acme.example.com/docs/ari',
      retryAfter: new Date('2025-01-01T06:00:00Z'),
    });
  });

  test('malformed windows are refused (§4.3.3): end not after start, missing or unparseable times', () => {
    for (const w of [
      { start: '2025-01-03T04:00:00Z', end: '2025-01-02T04:00:00Z' },
      { start: '2025-01-02T04:00:00Z', end: '2025-01-02T04:00:00Z' },
      { start: '2025-01-02T04:00:00Z' },
      { start: 'tomorrow', end: '2025-01-02T04:00:00Z' },
    ]) {
      assert.throws(
        () => parseRenewalInfo({ suggestedWindow: w }, '60', NOW),
        (err) => isAppError(err, 'ACME_ERROR'),
      );
    }
    assert.throws(() => parseRenewalInfo({}, undefined, NOW), /suggestedWindow/);
  });

  test('§4.3.2 Retry-After clamped to [1 minute, 1 day]; absent means six hours', () => {
    const at = (s: number) => new Date(NOW.getTime() + s * 1000);
    assert.deepEqual(clampRetryAfter(at(5), NOW), at(60));
    assert.deepEqual(clampRetryAfter(at(3600), NOW), at(3600));
    assert.deepEqual(clampRetryAfter(at(7 * 86400), NOW), at(86400));
    assert.deepEqual(clampRetryAfter(new Date(NOW.getTime() - 1000), NOW), at(60));
    assert.deepEqual(clampRetryAfter(undefined, NOW), at(6 * 3600));
  });

  test('the renewal moment is uniform inside the window (§4.3.1)', () => {
    const window = { start: new Date('2025-01-02T00:00:00Z'), end: new Date('2025-01-03T00:00:00Z') };
    assert.deepEqual(
      pickRenewalTime(window, () => 0),
      window.start,
    );
    assert.deepEqual(
      pickRenewalTime(window, () => 0.5),
      new Date('2025-01-02T12:00:00Z'),
    );
    const last = pickRenewalTime(window, () => 0.999999999);
    assert.ok(last < window.end && last > window.start);
    let seed = 1;
    const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const picks = Array.from({ length: 1000 }, () => pickRenewalTime(window, rand).getTime());
    const halves = picks.filter((p) => p < Date.parse('2025-01-02T12:00:00Z')).length;
    assert.ok(halves > 400 && halves < 600, `spread over the window (${halves}/1000 in the first half)`);
  });
});
