import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FakeClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/logger.js';
import { isAppError } from '../../../src/core/errors.js';
import { createMemoryStore } from '../../../src/store/memory/index.js';
import { SoftwareSealer } from '../../../src/keys/software/sealer.js';
import { createKeyRing } from '../../../src/keys/software/key-ring.js';
import { ensureCaHierarchy } from '../../../src/ca/authority.js';
import { CaService } from '../../../src/ca/service.js';
import { IssuerRegistry } from '../../../src/issuer/registry.js';
import type { AuditEntry, AuditInput } from '../../../src/audit/entry.js';

const DAY = 86_400_000;

async function setup() {
  const clock = new FakeClock(Date.UTC(2026, 5, 1));
  const store = createMemoryStore({ clock });
  const sealer = new SoftwareSealer(createKeyRing(randomBytes(32)));
  const entries: AuditInput[] = [];
  const audit = {
    append: (input: AuditInput): Promise<AuditEntry> => {
      entries.push(input);
      return Promise.resolve({ ...input, seq: entries.length, time: '', prev: '', hash: '' });
    },
  };
  await ensureCaHierarchy({
    store,
    sealer,
    audit,
    clock,
    actor: 'test',
    config: {
      root: { name: 'root', key: 'ec-p256', lifetime: 3650 * DAY },
      intermediate: { name: 'default', key: 'ec-p256', lifetime: 1825 * DAY },
    },
  });
  const registry = new IssuerRegistry();
  const cas = new CaService({
    store,
    sealer,
    audit,
    clock,
    logger: silentLogger,
    registry,
    crlValidityMs: 4 * DAY,
    crlOfflineValidityMs: 365 * DAY,
    ocspValidityMs: 3_600_000,
  });
  return { clock, store, cas, registry, entries };
}

test('every CA with a key is an issuer; the CRL sweep rebuilds what is due and reports it', async () => {
  const s = await setup();
  assert.deepEqual(s.registry.refs(), ['ca:default', 'ca:root']);
  assert.deepEqual(s.cas.refreshDue(s.clock.now()).sort(), ['default', 'root'], 'no CRL yet');
  assert.deepEqual(await s.cas.refreshCrls(s.clock.now()), { processed: 2, failed: 0 });
  assert.deepEqual(s.cas.refreshDue(s.clock.now()), []);
  s.clock.advance(2 * DAY);
  assert.deepEqual(s.cas.refreshDue(s.clock.now()).sort(), ['default', 'root'], 'half of 4 days');
  assert.equal((await s.cas.crl('default')).crlNumber, 2n, 'a due CRL is rebuilt when fetched');
  assert.deepEqual(s.cas.refreshDue(s.clock.now()), ['root']);
});

test('disable-key: unregistered, never due again, audited before; a second time is refused', async () => {
  const s = await setup();
  const ctx = { clock: s.clock, logger: silentLogger, actor: 'tok_1' };
  const view = await s.cas.disableKey('root', ctx);
  assert.equal(view.keyState, 'offline');
  assert.deepEqual(s.registry.refs(), ['ca:default']);
  assert.deepEqual(s.cas.refreshDue(s.clock.now()), ['default']);
  assert.equal(await s.cas.ocsp('root'), undefined, 'no OCSP responder without the key');
  assert.equal(s.entries.at(-1)!.action, 'ca.key.disable');
  await assert.rejects(s.cas.disableKey('root', ctx), (err) => isAppError(err, 'CA_KEY_UNAVAILABLE'));
  await assert.rejects(s.cas.exportKey('root', 'a long enough passphrase', ctx), (err) =>
    isAppError(err, 'CA_KEY_UNAVAILABLE'),
  );
  await assert.rejects(s.cas.create({ name: 'sub', parent: 'root', keyType: 'ec-p256' }, ctx), (err) =>
    isAppError(err, 'CA_KEY_UNAVAILABLE'),
  );
});
