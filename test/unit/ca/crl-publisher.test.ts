import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { CrlPublisher, CRL_STATE_COLLECTION, type CrlStateRecord } from '../../../src/ca/crl-publisher.js';
import { LEDGER_COLLECTION, ledgerId, normaliseSerial, type LedgerRecord } from '../../../src/ca/ledger.js';
import { createMemoryStore } from '../../../src/store/memory/index.js';
import { parseCertificate } from '../../../src/pki/certificate.js';
import { parseCrl, verifyCrlSignature } from '../../../src/pki/crl.js';
import { buildHierarchy, DAY } from '../../fixtures/pki-ca.js';

const HOUR = 3_600_000;

function setup(options: { failSigner?: () => boolean; gate?: () => Promise<void> } = {}) {
  const clock = new FakeClock(Date.UTC(2026, 2, 1, 12));
  const store = createMemoryStore({ clock });
  const h = buildHierarchy(clock);
  const certificate = parseCertificate(h.inter.der);
  let builds = 0;
  const make = () =>
    new CrlPublisher({
      ca: 'default',
      store,
      clock,
      validityMs: 2 * DAY,
      signer: async () => {
        builds++;
        await options.gate?.();
        if (options.failSigner?.()) throw new Error('no key');
        return { certificate, key: h.interKey.privateKey };
      },
      revoked: () =>
        store
          .collection<LedgerRecord>(LEDGER_COLLECTION)
          .list((r) => r.ca === 'default' && r.revokedAt !== undefined),
    });
  const revoke = (serialHex: string, reason?: LedgerRecord['reason']) =>
    store.tx((tx) =>
      tx.collection<LedgerRecord>(LEDGER_COLLECTION).put({
        id: ledgerId('default', serialHex),
        ca: 'default',
        serialHex,
        notAfter: '2027-01-01T00:00:00.000Z',
        issuedAt: '2026-01-01T00:00:00.000Z',
        names: [],
        revokedAt: clock.now().toISOString(),
        ...(reason ? { reason } : {}),
      }),
    );
  return { clock, store, h, certificate, make, revoke, builds: () => builds };
}

describe('CRL publisher', () => {
  test('builds on first use, numbers only increase, across a restart too', async () => {
    const s = setup();
    const p = s.make();
    assert.equal(p.refreshDue(s.clock.now()), true, 'no CRL yet: due');
    const first = await p.current();
    assert.equal(first.crlNumber, 1n);
    assert.equal((await p.current()).crlNumber, 1n, 'served from memory while fresh');
    assert.equal(s.builds(), 1);
    await s.revoke('0abc', 'keyCompromise');
    const second = await p.rebuild();
    assert.equal(second.crlNumber, 2n);
    const parsed = parseCrl(second.der);
    assert.ok(verifyCrlSignature(parsed, s.certificate.publicKey));
    assert.deepEqual(
      parsed.entries.map((e) => [e.serialHex, e.reason]),
      [['0abc', 'keyCompromise']],
    );
    assert.equal(s.store.collection<CrlStateRecord>(CRL_STATE_COLLECTION).get('default').crlNumber, '2');
    // a new publisher (a restart) continues from the stored number
    const restarted = s.make();
    assert.equal((await restarted.current()).crlNumber, 3n);
  });

  test('refresh is due once half the validity has passed, and current() rebuilds then', async () => {
    const s = setup();
    const p = s.make();
    const first = await p.current();
    s.clock.advance(DAY - HOUR);
    assert.equal(p.refreshDue(s.clock.now()), false);
    s.clock.advance(HOUR);
    assert.equal(p.refreshDue(s.clock.now()), true, 'at half of the 2-day validity');
    const next = await p.current();
    assert.equal(next.crlNumber, first.crlNumber + 1n);
    assert.equal(next.nextUpdate.getTime() - next.thisUpdate.getTime(), 2 * DAY);
    assert.equal(p.refreshDue(s.clock.now()), false);
  });

  test('rebuilds during a build share one follow-up build that sees every revocation', async () => {
    let release: () => void = () => undefined;
    let held = false;
    const s = setup({
      gate: () => (held ? new Promise<void>((r) => (release = r)) : Promise.resolve()),
    });
    const p = s.make();
    await p.current();
    await s.revoke('01');
    held = true;
    const a = p.rebuild(); // holds in the signer until released
    await s.revoke('02');
    await s.revoke('03');
    const b = p.rebuild();
    const c = p.rebuild();
    assert.equal(b, c, 'calls during a build share the queued one');
    held = false;
    release();
    const [ra, rb] = await Promise.all([a, b]);
    assert.equal(rb.crlNumber, ra.crlNumber + 1n);
    assert.equal(parseCrl(rb.der).entries.length, 3, 'the follow-up includes the later revocations');
    assert.equal(s.builds(), 3, 'one initial, one running, one shared follow-up');
  });

  test('a failed build publishes nothing and keeps the number', async () => {
    let fail = false;
    const s = setup({ failSigner: () => fail });
    const p = s.make();
    await p.current();
    fail = true;
    await assert.rejects(p.rebuild(), /no key/);
    assert.equal(s.store.collection<CrlStateRecord>(CRL_STATE_COLLECTION).get('default').crlNumber, '1');
    fail = false;
    assert.equal((await p.rebuild()).crlNumber, 2n);
  });

  test('finalize: the last CRL is stored with the commit and served once the key is offline', async () => {
    const s = setup();
    const p = s.make();
    await p.current();
    await s.revoke('aa', 'cACompromise');
    const final = await p.finalize(365 * DAY, (tx) => tx.putBlob('marker/x', Buffer.from('1')));
    assert.ok(await s.store.getBlob('marker/x'), 'the caller’s change is in the same transaction');
    assert.equal(p.offline, true);
    assert.equal(p.refreshDue(new Date(s.clock.nowMs() + 300 * DAY)), false, 'an offline CA is never due');
    const restarted = s.make();
    const served = await restarted.current();
    assert.deepEqual(served.der, final.der, 'served from the store after a restart');
    assert.equal(served.crlNumber, final.crlNumber);
    assert.equal(served.count, 1);
    assert.equal(served.nextUpdate.getTime() - served.thisUpdate.getTime(), 365 * DAY);
    await s.store.tx((tx) => tx.deleteBlob('crl/default/final'));
    await assert.rejects(s.make().current(), (err) => isAppError(err, 'CA_KEY_UNAVAILABLE'));
  });
});

test('serials are canonical: lowercase whole octets, no separators, no zero octets in front', () => {
  assert.equal(normaliseSerial('0D:65:AB'), '0d65ab');
  assert.equal(normaliseSerial('d65ab'), '0d65ab');
  assert.equal(normaliseSerial('000d65ab'), '0d65ab');
  assert.equal(normaliseSerial('00'), '00');
  assert.equal(ledgerId('default', 'D65AB'), 'default/0d65ab');
});
