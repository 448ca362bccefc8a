/**
 * Store snapshots (for backups) on real files: as of one commit in call order, and unchanged by the
 * writes, deletions, overwrites and compactions that follow while it is being read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openLowdbStore } from '../../../src/store/lowdb/open.js';
import { canSnapshot, type StoreSnapshot } from '../../../src/store/port.js';
import { tempDir } from '../../helpers/tmp.js';

interface Rec {
  id: string;
  n: number;
}

async function read(s: StoreSnapshot) {
  const files = new Map<string, Buffer>();
  for await (const f of s.files()) files.set(f.path, f.data);
  const doc = JSON.parse(files.get('keywright.json')!.toString('utf8')) as {
    schemaVersion: number;
    collections: Record<string, Record<string, Rec>>;
  };
  return { files, doc };
}

test('a snapshot holds exactly the transactions called before it, none after', async (t) => {
  const dataDir = await tempDir(t);
  const store = await openLowdbStore({ dataDir });
  t.after(() => store.close());
  assert.ok(canSnapshot(store));
  const put = (id: string) =>
    store.tx((tx) => {
      tx.collection<Rec>('things').put({ id, n: 1 });
      tx.putBlob(`b/${id}`, Buffer.from(id));
    });
  const before = Array.from({ length: 20 }, (_, i) => put(`a${i}`));
  const taking = store.snapshot();
  const after = Array.from({ length: 20 }, (_, i) => put(`z${i}`));
  const snapshot = await taking;
  await Promise.all([...before, ...after]);
  const { files, doc } = await read(snapshot);
  snapshot.release();
  assert.deepEqual(Object.keys(doc.collections.things!).sort(), before.map((_, i) => `a${i}`).sort());
  assert.deepEqual(
    [...files.keys()].filter((p) => p.startsWith('blobs/')).sort(),
    before.map((_, i) => `blobs/b/a${i}`).sort(),
  );
  assert.equal(snapshot.records, 20);
  assert.equal(snapshot.blobs, 20);
  assert.deepEqual(snapshot.paths, [...files.keys()]);
});

test('deletions, overwrites and compactions after the snapshot do not reach it; compaction resumes after release', async (t) => {
  const dataDir = await tempDir(t);
  let store = await openLowdbStore({ dataDir });
  await store.tx((tx) => {
    for (let i = 0; i < 10; i++) {
      tx.collection<Rec>('things').put({ id: `r${i}`, n: 0 });
      tx.putBlob(`b/${i}`, Buffer.from(`old ${i}`));
    }
  });
  await store.close(); // the blobs are in their files now
  store = await openLowdbStore({ dataDir, compactAtBytes: 2048 });
  t.after(() => store.close());
  assert.ok(canSnapshot(store));
  await store.tx((tx) => tx.putBlob('b/journaled', Buffer.from('in the journal only')));

  const snapshot = await store.snapshot();
  for (let round = 0; round < 20; round++) {
    await store.tx((tx) => {
      for (let i = 0; i < 10; i++) {
        tx.collection<Rec>('things').put({ id: `r${i}`, n: round + 1 });
        if (round === 0) tx.deleteBlob(`b/${i}`);
        else tx.putBlob(`b/${i}`, Buffer.from(`new ${round} ${i}`.repeat(20)));
      }
      tx.deleteBlob('b/journaled');
    });
  }
  await new Promise((r) => setTimeout(r, 200)); // room for a compaction, were one allowed to start
  const journal = (await stat(join(dataDir, 'keywright.journal'))).size;
  assert.ok(journal > 2048 * 4, `no compaction while the snapshot is held (journal ${journal} B)`);

  const { files, doc } = await read(snapshot);
  for (let i = 0; i < 10; i++) {
    assert.equal(doc.collections.things![`r${i}`]!.n, 0);
    assert.equal(files.get(`blobs/b/${i}`)?.toString(), `old ${i}`);
  }
  assert.equal(files.get('blobs/b/journaled')?.toString(), 'in the journal only');
  snapshot.release();
  snapshot.release(); // idempotent

  await store.tx((tx) => tx.collection<Rec>('things').put({ id: 'after', n: 1 }));
  await new Promise((r) => setTimeout(r, 300));
  const size = await stat(join(dataDir, 'keywright.journal')).then((s) => s.size);
  assert.ok(size < journal, `a compaction ran once released (journal ${journal} → ${size} B)`);
});
