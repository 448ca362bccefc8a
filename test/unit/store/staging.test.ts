import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isAppError } from '../../../src/core/errors.js';
import { createMemoryStore } from '../../../src/store/memory/index.js';
import { LATEST_SCHEMA_VERSION } from '../../../src/store/lowdb/migrations.js';
import type { StoredRecord, StoreTx } from '../../../src/store/port.js';

interface Cert extends StoredRecord {
  name: string;
  versions: number[];
  meta?: { owner: string };
}

const cert = (id: string, versions: number[] = [1]): Cert => ({ id, name: id, versions });

function errorWithCode(code: string) {
  return (err: unknown) => {
    assert.ok(isAppError(err), `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

describe('transactions: commit and rollback', () => {
  test('a committed tx is visible to readers and returns its result', async () => {
    const store = createMemoryStore();
    const out = await store.tx((tx) => {
      tx.collection<Cert>('certs').insert(cert('web'));
      tx.collection<Cert>('certs').insert(cert('api'));
      return 'done';
    });
    assert.equal(out, 'done');
    const certs = store.collection<Cert>('certs');
    assert.deepEqual(certs.get('web'), cert('web'));
    assert.equal(certs.count(), 2);
    assert.deepEqual(
      certs.list().map((c) => c.id),
      ['web', 'api'],
    );
    assert.deepEqual(
      certs.list((c) => c.id === 'api').map((c) => c.id),
      ['api'],
    );
    assert.equal(store.schemaVersion, LATEST_SCHEMA_VERSION);
  });

  test('a throw inside work applies nothing, records nor blobs, and rejects with that error', async () => {
    const store = createMemoryStore();
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('web')));
    const boom = new Error('boom');
    await assert.rejects(
      store.tx(async (tx) => {
        tx.collection<Cert>('certs').update('web', (c) => ({ ...c, versions: [1, 2] }));
        tx.collection<Cert>('certs').insert(cert('api'));
        tx.collection<Cert>('certs').delete('web');
        tx.putBlob('cert/web/2/chain', Buffer.from('chain'));
        await Promise.resolve();
        throw boom;
      }),
      (err) => err === boom,
    );
    assert.deepEqual(store.collection<Cert>('certs').get('web'), cert('web'));
    assert.equal(store.collection<Cert>('certs').find('api'), undefined);
    assert.equal(await store.getBlob('cert/web/2/chain'), undefined);
    assert.equal(store.stats().flushes, 1);
  });

  test('insert of an existing id conflicts, also against changes staged in the same tx', async () => {
    const store = createMemoryStore();
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('web')));
    await assert.rejects(
      store.tx((tx) => tx.collection<Cert>('certs').insert(cert('web'))),
      errorWithCode('STORE_CONFLICT'),
    );
    await assert.rejects(
      store.tx((tx) => {
        tx.collection<Cert>('certs').insert(cert('api'));
        tx.collection<Cert>('certs').insert(cert('api'));
      }),
      errorWithCode('STORE_CONFLICT'),
    );
    assert.equal(store.collection('certs').count(), 1);
  });

  test('update and delete of a missing id and get of a missing id are STORE_NOT_FOUND', async () => {
    const store = createMemoryStore();
    await assert.rejects(
      store.tx((tx) => tx.collection<Cert>('certs').update('nope', (c) => c)),
      errorWithCode('STORE_NOT_FOUND'),
    );
    await assert.rejects(
      store.tx((tx) => tx.collection<Cert>('certs').delete('nope')),
      errorWithCode('STORE_NOT_FOUND'),
    );
    assert.throws(() => store.collection<Cert>('certs').get('nope'), errorWithCode('STORE_NOT_FOUND'));
  });

  test('update must keep the id; put inserts or replaces; delete then insert in one tx works', async () => {
    const store = createMemoryStore();
    await store.tx((tx) => tx.collection<Cert>('certs').put(cert('web')));
    await store.tx((tx) => tx.collection<Cert>('certs').put(cert('web', [1, 2])));
    assert.deepEqual(store.collection<Cert>('certs').get('web').versions, [1, 2]);
    await assert.rejects(
      store.tx((tx) => tx.collection<Cert>('certs').update('web', (c) => ({ ...c, id: 'other' }))),
      errorWithCode('INVALID_ARGUMENT'),
    );
    await store.tx((tx) => {
      const certs = tx.collection<Cert>('certs');
      certs.delete('web');
      assert.equal(certs.find('web'), undefined);
      certs.insert(cert('web', [9]));
    });
    assert.deepEqual(store.collection<Cert>('certs').get('web').versions, [9]);
  });

  test('a tx reads its own staged changes: find, list and count', async () => {
    const store = createMemoryStore();
    await store.tx((tx) => {
      tx.collection<Cert>('certs').insert(cert('a'));
      tx.collection<Cert>('certs').insert(cert('b'));
    });
    await store.tx((tx) => {
      const certs = tx.collection<Cert>('certs');
      certs.delete('a');
      certs.insert(cert('c'));
      certs.update('b', (b) => ({ ...b, versions: [1, 2] }));
      assert.deepEqual(
        certs.list().map((c) => c.id),
        ['b', 'c'],
      );
      assert.equal(certs.count(), 2);
      assert.deepEqual(certs.get('b').versions, [1, 2]);
    });
  });
});

describe('transactions: serialization and isolation', () => {
  test('concurrent read-modify-write transactions never lose an update', async () => {
    const store = createMemoryStore();
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('web', [])));
    const writers = Array.from({ length: 40 }, (_, i) =>
      store.tx(async (tx) => {
        const certs = tx.collection<Cert>('certs');
        const before = certs.get('web');
        await new Promise((r) => setImmediate(r)); // yield mid-transaction: others must still wait
        certs.put({ ...before, versions: [...before.versions, i] });
      }),
    );
    await Promise.all(writers);
    const versions = store.collection<Cert>('certs').get('web').versions;
    assert.equal(versions.length, 40);
    assert.deepEqual(
      versions,
      [...versions].sort((a, b) => a - b),
    );
  });

  test('a failing transaction does not block the ones queued behind it', async () => {
    const store = createMemoryStore();
    const results = await Promise.allSettled([
      store.tx((tx) => tx.collection<Cert>('certs').insert(cert('a'))),
      store.tx(() => {
        throw new Error('no');
      }),
      store.tx((tx) => tx.collection<Cert>('certs').insert(cert('b'))),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.equal(store.collection('certs').count(), 2);
  });

  test('a read outside a tx sees neither staged nor not-yet-durable changes', async () => {
    let releaseFlush!: () => void;
    let flushStarted!: () => void;
    const started = new Promise<void>((r) => (flushStarted = r));
    const store = createMemoryStore({
      beforeFlush: () =>
        new Promise<void>((r) => {
          releaseFlush = r;
          flushStarted();
        }),
    });
    const certs = store.collection<Cert>('certs');
    let sawDuringWork: Cert | undefined = cert('sentinel');
    const committing = store.tx(async (tx) => {
      tx.collection<Cert>('certs').insert(cert('web'));
      sawDuringWork = certs.find('web');
      await Promise.resolve();
    });
    await started; // work has finished, flush in progress
    assert.equal(sawDuringWork, undefined);
    assert.equal(certs.find('web'), undefined, 'not durable yet, so not visible outside');
    assert.equal(certs.count(), 0);
    releaseFlush();
    await committing;
    assert.deepEqual(certs.get('web'), cert('web'));
  });

  test('a tx that starts while another is flushing sees its changes and shares no flush with it', async () => {
    const flushSizes: number[] = [];
    let firstFlushStarted!: () => void;
    const started = new Promise<void>((r) => (firstFlushStarted = r));
    const store = createMemoryStore({
      beforeFlush: async (batch) => {
        flushSizes.push(batch.transactions);
        firstFlushStarted();
        await new Promise((r) => setTimeout(r, 5));
      },
    });
    const first = store.tx((tx) => tx.collection<Cert>('certs').insert(cert('web')));
    await started;
    const later = Array.from({ length: 10 }, (_, i) =>
      store.tx((tx) => {
        const certs = tx.collection<Cert>('certs');
        certs.update('web', (c) => ({ ...c, versions: [...c.versions, i + 2] }));
      }),
    );
    await Promise.all([first, ...later]);
    assert.deepEqual(flushSizes, [1, 10], 'group commit: the ten waiting transactions share one flush');
    assert.equal(store.collection<Cert>('certs').get('web').versions.length, 11);
  });

  test('records handed out are frozen; records handed in are copied', async () => {
    const store = createMemoryStore();
    const mine: Cert = { id: 'web', name: 'web', versions: [1], meta: { owner: 'ops' } };
    await store.tx((tx) => tx.collection<Cert>('certs').insert(mine));
    mine.versions.push(2);
    mine.meta!.owner = 'someone else';
    const got = store.collection<Cert>('certs').get('web');
    assert.deepEqual(got, { id: 'web', name: 'web', versions: [1], meta: { owner: 'ops' } });
    assert.ok(Object.isFrozen(got) && Object.isFrozen(got.versions) && Object.isFrozen(got.meta));
    assert.throws(() => got.versions.push(3), TypeError);
    assert.throws(() => {
      (got as { name: string }).name = 'x';
    }, TypeError);
    await store.tx((tx) => {
      const inside = tx.collection<Cert>('certs').get('web');
      assert.ok(Object.isFrozen(inside));
      tx.collection<Cert>('certs').update('web', (c) => {
        assert.ok(Object.isFrozen(c));
        return { ...c, versions: [...c.versions, 2] };
      });
    });
    assert.deepEqual(store.collection<Cert>('certs').get('web').versions, [1, 2]);
  });

  test('values that would not survive a restart as JSON are refused', async () => {
    const store = createMemoryStore();
    const bad: unknown[] = [
      { id: 'a', at: new Date() },
      { id: 'a', n: Number.NaN },
      { id: 'a', m: new Map() },
      { id: 'a', list: [1, undefined] },
      { id: '' },
      { id: 3 },
    ];
    for (const record of bad) {
      await assert.rejects(
        store.tx((tx) => tx.collection('certs').insert(record as StoredRecord)),
        errorWithCode('INVALID_ARGUMENT'),
      );
    }
    await assert.rejects(
      store.tx((tx) => tx.collection('Bad Name').insert({ id: 'a' })),
      errorWithCode('INVALID_ARGUMENT'),
    );
    // undefined properties are dropped, as JSON would, and odd ids are ordinary keys
    await store.tx((tx) =>
      tx.collection('certs').insert({ id: '__proto__', gone: undefined } as StoredRecord),
    );
    assert.deepEqual(store.collection('certs').get('__proto__'), { id: '__proto__' });
    assert.equal(store.collection('certs').find('constructor'), undefined);
  });

  test('a StoreTx used after its tx ended is refused', async () => {
    const store = createMemoryStore();
    let leaked: StoreTx | undefined;
    await store.tx((tx) => {
      leaked = tx;
    });
    assert.throws(() => leaked!.collection('certs').insert({ id: 'late' }), errorWithCode('STORE_CLOSED'));
    assert.throws(() => leaked!.putBlob('a', Buffer.from('x')), errorWithCode('STORE_CLOSED'));
  });
});

describe('blobs', () => {
  test('put, read, delete; bytes are copied at put and at get', async () => {
    const store = createMemoryStore();
    const bytes = Buffer.from('-----BEGIN CERTIFICATE-----');
    await store.tx((tx) => tx.putBlob('cert/web/1/chain', bytes));
    bytes.fill(0);
    const got = await store.getBlob('cert/web/1/chain');
    assert.equal(got?.toString(), '-----BEGIN CERTIFICATE-----');
    got.fill(0);
    assert.equal((await store.getBlob('cert/web/1/chain'))?.toString(), '-----BEGIN CERTIFICATE-----');
    await store.tx((tx) => tx.deleteBlob('cert/web/1/chain'));
    assert.equal(await store.getBlob('cert/web/1/chain'), undefined);
  });

  test('listBlobs lists durable keys by prefix, sorted', async () => {
    const store = createMemoryStore();
    await store.tx((tx) => {
      for (const key of [
        'sealed/cert/web/2/key',
        'cert/web/1/chain',
        'sealed/cert/web/1/key',
        'sealed/acme/main',
      ]) {
        tx.putBlob(key, Buffer.from(key));
      }
    });
    assert.deepEqual(await store.listBlobs('sealed/'), [
      'sealed/acme/main',
      'sealed/cert/web/1/key',
      'sealed/cert/web/2/key',
    ]);
    assert.deepEqual(await store.listBlobs('sealed/cert/w'), [
      'sealed/cert/web/1/key',
      'sealed/cert/web/2/key',
    ]);
    assert.equal((await store.listBlobs('')).length, 4);
    for (const bad of ['../', '/sealed', 'sealed//', 'Sealed/']) {
      await assert.rejects(store.listBlobs(bad), errorWithCode('INVALID_ARGUMENT'), bad);
    }
  });

  test('blob keys outside BLOB_KEY_PATTERN are refused', async () => {
    const store = createMemoryStore();
    for (const key of ['../etc/passwd', '/abs', 'a//b', 'A/b', '.hidden', 'a/../b', 'a/', 'x'.repeat(201)]) {
      await assert.rejects(
        store.tx((tx) => tx.putBlob(key, Buffer.from('x'))),
        errorWithCode('INVALID_ARGUMENT'),
        key,
      );
      await assert.rejects(store.getBlob(key), errorWithCode('INVALID_ARGUMENT'), key);
    }
  });
});

describe('failed flush', () => {
  test('rejects every transaction of the flush and those queued behind it, and rolls back to the durable state', async () => {
    let fail = false;
    let flushes = 0;
    const sizes: number[] = [];
    let failingFlushStarted!: () => void;
    const started = new Promise<void>((r) => (failingFlushStarted = r));
    const store = createMemoryStore({
      beforeFlush: async (batch) => {
        flushes++;
        sizes.push(batch.transactions);
        if (fail) failingFlushStarted();
        await new Promise((r) => setTimeout(r, 5));
        if (fail) throw Object.assign(new Error('disk full'), { code: 'ENOSPC', syscall: 'write' });
      },
    });
    await store.tx((tx) => {
      tx.collection<Cert>('certs').insert(cert('web'));
      tx.putBlob('cert/web/1/chain', Buffer.from('v1'));
    });
    fail = true;
    const inFlush = [
      store.tx((tx) => tx.collection<Cert>('certs').update('web', (c) => ({ ...c, versions: [1, 2] }))),
      store.tx((tx) => {
        tx.collection<Cert>('certs').insert(cert('api'));
        tx.deleteBlob('cert/web/1/chain');
      }),
    ];
    await started;
    const queued = store.tx((tx) => {
      // reads the not-yet-durable update: it must fail with it
      assert.deepEqual(tx.collection<Cert>('certs').get('web').versions, [1, 2]);
      tx.collection<Cert>('certs').insert(cert('queued'));
    });
    const results = await Promise.allSettled([...inFlush, queued]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      errorWithCode('STORE_IO')(r.reason);
      assert.match(String(r.reason.message), /ENOSPC/);
    }
    assert.equal(flushes, 2, 'the queued transaction was rejected without another flush');
    assert.deepEqual(sizes, [1, 2]);
    const certs = store.collection<Cert>('certs');
    assert.deepEqual(certs.get('web'), cert('web'));
    assert.equal(certs.count(), 1);
    assert.equal((await store.getBlob('cert/web/1/chain'))?.toString(), 'v1');
    assert.equal(store.stats().failedFlushes, 1);

    fail = false;
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('api')));
    assert.equal(certs.count(), 2, 'the store works again after the failure');
  });

  test('a transaction whose work spans a failed flush is rejected too', async () => {
    let fail = true;
    const store = createMemoryStore({
      beforeFlush: () => {
        if (fail) throw new Error('io');
      },
    });
    const first = store.tx((tx) => tx.collection<Cert>('certs').insert(cert('a')));
    let gate!: () => void;
    const straddling = store.tx(async (tx) => {
      assert.ok(tx.collection<Cert>('certs').find('a'), 'sees the pending insert');
      await new Promise<void>((r) => (gate = r));
      tx.collection<Cert>('certs').insert(cert('b'));
    });
    await assert.rejects(first, errorWithCode('STORE_IO'));
    fail = false;
    gate();
    await assert.rejects(straddling, errorWithCode('STORE_IO'));
    assert.equal(store.collection('certs').count(), 0);
  });
});

describe('close', () => {
  test('waits for queued transactions, then refuses everything', async () => {
    const store = createMemoryStore({ beforeFlush: () => new Promise((r) => setTimeout(r, 10)) });
    const pending = store.tx((tx) => tx.collection<Cert>('certs').insert(cert('web')));
    const closed = store.close();
    assert.equal(store.close(), closed, 'idempotent');
    await closed;
    await pending;
    assert.equal(store.stats().commits, 1);
    await assert.rejects(
      store.tx(() => undefined),
      errorWithCode('STORE_CLOSED'),
    );
    assert.throws(() => store.collection('certs').count(), errorWithCode('STORE_CLOSED'));
    await assert.rejects(store.getBlob('a'), errorWithCode('STORE_CLOSED'));
  });
});
