/**
 * ARI (RFC 9773) and ACME profiles, which pebble 2.4 lacks: tested against pebble behind the test
 * responder in ari-responder.ts, which adds them on the real wire format.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { runPeer } from '../../helpers/peers.js';
import { startPebble } from '../../helpers/pebble.js';
import { tempDir } from '../../helpers/tmp.js';
import { startAriResponder } from './ari-responder.js';
import { acmeConfig, acmeFixture, csrFor, randomName } from './fixture.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** RFC 9773 §4.1, computed from openssl's view of the certificate (an independent implementation). */
function opensslCertId(pem: string): string {
  const aki = runPeer('openssl', ['x509', '-noout', '-ext', 'authorityKeyIdentifier'], pem).stdout;
  const keyId = /([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(aki)![1]!.replace(/:/g, '');
  let serial = /serial=([0-9A-F]+)/.exec(runPeer('openssl', ['x509', '-noout', '-serial'], pem).stdout)![1]!;
  if (serial.length % 2 === 1) serial = `0${serial}`;
  // The DER INTEGER of a positive serial whose top bit is set starts with a 0x00 octet; openssl omits it.
  if (parseInt(serial.slice(0, 2), 16) >= 0x80) serial = `00${serial}`;
  return `${Buffer.from(keyId, 'hex').toString('base64url')}.${Buffer.from(serial, 'hex').toString('base64url')}`;
}

describe('ARI and profiles against the test responder in front of pebble', () => {
  test('cert id, stored window, Retry-After honoured, random moment, a window moved into the past, replaces, profiles', async (t) => {
    const pebble = await startPebble(t, { alwaysValid: true });
    if (!pebble) return;
    const clock = new FakeClock(Date.now());
    const responder = await startAriResponder(t, pebble, {
      profiles: { classic: 'The same profile you know and love', shortlived: 'A short-lived cert' },
      defaultWindow: () => ({
        start: new Date(clock.nowMs() + 60 * DAY),
        end: new Date(clock.nowMs() + 62 * DAY),
      }),
    });
    const f = await acmeFixture(t, {
      clock,
      random: () => 0.25,
      config: acmeConfig({ solvers: [{ http01: { webroot: await tempDir(t) } }] }),
    });
    await f.service.accounts.register({
      name: 'ari',
      directory: responder.directoryUrl,
      agreeTos: true,
      caPem: pebble.tlsCaPem,
    });
    const issuer = f.service.issuer('ari');
    const name = randomName('ari');
    const a = await issuer.issue({ csrDer: await csrFor([name]), sans: [name] }, f.ctx);

    // The id keywright computed is the one openssl's fields give: the responder saw exactly that GET.
    const idA = opensslCertId(a.certificatePem);
    assert.equal(responder.ariHits.get(idA), 1, `renewalInfo fetched for ${idA}`);
    assert.deepEqual(a.renewalWindow, {
      start: new Date(clock.nowMs() + 60 * DAY),
      end: new Date(clock.nowMs() + 62 * DAY),
      retryAfter: new Date(clock.nowMs() + 21600 * 1000),
    });
    const stored = issuer.renewalInfo(a.certificatePem)!;
    assert.equal(stored.id, idA);
    assert.equal(stored.explanationUrl, 'https://acme.example.com/docs/ari');
    assert.equal(
      Date.parse(stored.renewAt),
      clock.nowMs() + 60 * DAY + 0.25 * 2 * DAY,
      'uniform draw inside the window',
    );

    // Before Retry-After has passed the CA is not asked again.
    responder.setWindow(idA, {
      start: new Date(clock.nowMs() + 30 * DAY),
      end: new Date(clock.nowMs() + 31 * DAY),
      retryAfterSeconds: 3600,
    });
    const early = await issuer.renewalWindow(a.certificatePem, f.ctx);
    assert.equal(early!.start.getTime(), clock.nowMs() + 60 * DAY, 'the stored window, unchanged');
    assert.equal(responder.ariHits.get(idA), 1);

    clock.advance(6 * HOUR + 1000);
    const moved = await issuer.renewalWindow(a.certificatePem, f.ctx);
    assert.equal(responder.ariHits.get(idA), 2);
    assert.equal(moved!.end.getTime() - moved!.start.getTime(), DAY);
    assert.equal(moved!.retryAfter!.getTime(), clock.nowMs() + HOUR, 'Retry-After: 3600');
    assert.equal(
      Date.parse(issuer.renewalInfo(a.certificatePem)!.renewAt),
      moved!.start.getTime() + 0.25 * DAY,
      're-drawn',
    );

    // A mass revocation moves the window into the past: the renewal moment is now, at the next check.
    responder.setWindow(idA, {
      start: new Date(clock.nowMs() - 2 * DAY),
      end: new Date(clock.nowMs() - DAY),
      retryAfterSeconds: 10,
    });
    clock.advance(HOUR + 1000);
    const revoked = await issuer.renewalWindow(a.certificatePem, f.ctx);
    assert.ok(revoked!.end.getTime() < clock.nowMs());
    assert.ok(Date.parse(issuer.renewalInfo(a.certificatePem)!.renewAt) < clock.nowMs(), 'renew now');
    assert.equal(
      revoked!.retryAfter!.getTime(),
      clock.nowMs() + 60_000,
      'Retry-After under a minute counts as a minute',
    );

    // The renewal names its predecessor and a profile from meta.profiles.
    const ordersBefore = responder.orders.length;
    const b = await issuer.issue(
      {
        csrDer: await csrFor([name]),
        sans: [name],
        profile: 'shortlived',
        replaces: { serialHex: a.serialHex, certificatePem: a.certificatePem },
      },
      f.ctx,
    );
    assert.ok(b.serialHex !== a.serialHex);
    assert.deepEqual(responder.orders.slice(ordersBefore), [
      { identifiers: [{ type: 'dns', value: name }], profile: 'shortlived', replaces: idA },
    ]);

    // Replacing it a second time: the CA says alreadyReplaced, keywright orders again without `replaces`.
    const c = await issuer.issue(
      {
        csrDer: await csrFor([name]),
        sans: [name],
        replaces: { serialHex: a.serialHex, certificatePem: a.certificatePem },
      },
      f.ctx,
    );
    assert.ok(c.serialHex);
    assert.deepEqual(responder.orders.slice(ordersBefore + 1), [
      { identifiers: [{ type: 'dns', value: name }], replaces: idA },
      { identifiers: [{ type: 'dns', value: name }] },
    ]);
    assert.ok(f.logger.lines.some((l) => l.level === 'warn' && /already replaced/.test(l.msg ?? '')));

    // A profile the directory does not list never reaches the CA.
    const count = responder.orders.length;
    await assert.rejects(
      issuer.issue({ csrDer: await csrFor([name]), sans: [name], profile: 'tlsclient' }, f.ctx),
      (err) => {
        assert.ok(isAppError(err, 'ACME_PROFILE_UNKNOWN'));
        assert.match(err.message, /offers: classic, shortlived/);
        return true;
      },
    );
    assert.equal(responder.orders.length, count);
  });

  test('rateLimited with Retry-After and serverInternal are retryable and not retried in place; unauthorized is terminal', async (t) => {
    const pebble = await startPebble(t, { alwaysValid: true });
    if (!pebble) return;
    const clock = new FakeClock(Date.now());
    const responder = await startAriResponder(t, pebble, {
      profiles: {},
      defaultWindow: () => ({
        start: new Date(clock.nowMs() + 60 * DAY),
        end: new Date(clock.nowMs() + 62 * DAY),
      }),
    });
    const f = await acmeFixture(t, {
      clock,
      config: acmeConfig({ solvers: [{ http01: { webroot: await tempDir(t) } }] }),
    });
    await f.service.accounts.register({
      name: 'rl',
      directory: responder.directoryUrl,
      agreeTos: true,
      caPem: pebble.tlsCaPem,
    });
    const name = randomName('rl');
    const issue = async () =>
      f.service.issuer('rl').issue({ csrDer: await csrFor([name]), sans: [name] }, f.ctx);
    const cases = [
      {
        status: 429,
        type: 'rateLimited',
        detail: 'too many certificates for this name',
        retryAfter: '120',
        retryable: true,
      },
      { status: 503, type: 'serverInternal', detail: 'down for maintenance', retryable: true },
      { status: 403, type: 'unauthorized', detail: 'account is not allowed to issue', retryable: false },
    ];
    for (const c of cases) {
      const before = responder.orders.length;
      responder.failNextOrders.push(c);
      await assert.rejects(issue(), (err) => {
        assert.ok(isAppError(err, 'ACME_ERROR'), String(err));
        assert.equal(err.retryable, c.retryable, c.type);
        assert.equal(err.details.problemType, `urn:ietf:params:acme:error:${c.type}`);
        assert.equal(err.details.status, c.status);
        if (c.retryAfter)
          assert.equal(err.details.retryAfter, new Date(clock.nowMs() + 120_000).toISOString());
        assert.match(err.message, new RegExp(`creating the ACME order: ${c.type}: ${c.detail}`));
        return true;
      });
      assert.equal(responder.orders.length, before + 1, `${c.type}: one request, no retry storm`);
    }
    assert.ok((await issue()).serialHex, 'and the next attempt goes through');
  });
});
