import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryStore } from '../../../src/store/memory/index.js';
import { FakeClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/logger.js';
import { parseConfig } from '../../../src/config/load.js';
import { reconcileDeclared } from '../../../src/lifecycle/reconcile.js';
import { CERTIFICATES_COLLECTION, type CertificateRecord } from '../../../src/lifecycle/records.js';
import type { AuditInput } from '../../../src/audit/index.js';

function setup() {
  const store = createMemoryStore();
  const clock = new FakeClock();
  const entries: AuditInput[] = [];
  const audit = {
    append: async (e: AuditInput) => (
      entries.push(e),
      { ...e, seq: entries.length, time: '', prev: '', hash: '' }
    ),
  };
  const run = (certificates: unknown[]) =>
    reconcileDeclared({
      store,
      audit,
      clock,
      logger: silentLogger,
      declared: parseConfig({ certificates }, 'test').certificates,
    });
  const get = (name: string) => store.collection<CertificateRecord>(CERTIFICATES_COLLECTION).find(name);
  return { store, clock, entries, run, get };
}

test('declares new, updates changed, retires removed, leaves unchanged; one audit entry per change set', async () => {
  const { run, get, entries, store } = setup();
  let r = await run([
    { name: 'web', sans: ['web.internal'], lifetime: '30d', renewBefore: '25%' },
    { name: 'db', sans: ['db.internal'], deploy: [{ file: { dir: '/etc/kw/db' } }] },
  ]);
  assert.deepEqual(r.created.sort(), ['db', 'web']);
  assert.equal(get('web')?.source, 'config');
  assert.equal(get('web')?.currentVersion, undefined, 'declared, not issued: the renewal sweep issues it');
  assert.deepEqual(get('web')?.renewBefore, { percent: 25 });
  assert.equal(get('db')?.deploy?.length, 1);
  assert.equal(entries.length, 1);

  r = await run([
    { name: 'web', sans: ['web.internal'], lifetime: '30d', renewBefore: '25%' },
    { name: 'db', sans: ['db.internal', 'db2.internal'], deploy: [{ file: { dir: '/etc/kw/db' } }] },
  ]);
  assert.deepEqual(r, { created: [], updated: ['db'], retired: [], unchanged: ['web'], conflicts: [] });
  assert.deepEqual(get('db')?.sans, ['db.internal', 'db2.internal']);

  r = await run([
    { name: 'db', sans: ['db.internal', 'db2.internal'], deploy: [{ file: { dir: '/etc/kw/db' } }] },
  ]);
  assert.deepEqual(r.retired, ['web']);
  assert.equal(get('web')?.retired, true, 'removed from config: retired, never deleted');
  assert.equal(store.collection(CERTIFICATES_COLLECTION).count(), 2);

  r = await run([
    { name: 'db', sans: ['db.internal', 'db2.internal'], deploy: [{ file: { dir: '/etc/kw/db' } }] },
  ]);
  assert.deepEqual(r.unchanged, ['db']);
  assert.equal(entries.length, 3, 'no change, no audit entry');

  r = await run([
    { name: 'web', sans: ['web.internal'], lifetime: '30d', renewBefore: '25%' },
    { name: 'db', sans: ['db.internal', 'db2.internal'], deploy: [{ file: { dir: '/etc/kw/db' } }] },
  ]);
  assert.deepEqual(r.updated, ['web'], 'declaring a retired certificate again brings it back');
  assert.equal(get('web')?.retired, undefined);
});

test('a config name that clashes with an API-created certificate is reported, not taken over', async () => {
  const { run, store, get } = setup();
  await store.tx((tx) =>
    tx.collection<CertificateRecord>(CERTIFICATES_COLLECTION).insert({
      id: 'api',
      issuer: 'ca:default',
      sans: ['api.internal'],
      keyType: 'ec-p256',
      lifetimeMs: 1000 * 60 * 60,
      keyRotation: 'always',
      source: 'api',
      createdAt: '',
      createdBy: 't',
      updatedAt: '',
      nextVersion: 1,
    }),
  );
  const r = await run([{ name: 'api', sans: ['other.internal'] }]);
  assert.deepEqual(r.conflicts, ['api']);
  assert.deepEqual(get('api')?.sans, ['api.internal']);
});
