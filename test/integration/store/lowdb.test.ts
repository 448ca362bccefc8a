import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isAppError } from '../../../src/core/errors.js';
import { writeFileDurable } from '../../../src/core/fs-durable.js';
import type { Logger } from '../../../src/core/logger.js';
import { openLowdbStore, type DurableWriter, type Migration } from '../../../src/store/lowdb/index.js';
import type { StoredRecord } from '../../../src/store/port.js';
import { appendDurably, type JournalAppend } from '../../../src/store/lowdb/journal.js';
import { acquireDataDirLock } from '../../../src/store/lock.js';
import { tempDir } from '../../helpers/tmp.js';

interface Cert extends StoredRecord {
  name: string;
  versions: number[];
}

const cert = (id: string, versions: number[] = [1]): Cert => ({ id, name: id, versions });

function errorWithCode(code: string, message?: RegExp) {
  return (err: unknown) => {
    assert.ok(isAppError(err), `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

/** Counts document writes (blob writes go through the same writer) and can be told to fail them. */
function countingWriter() {
  const state = { documentWrites: 0, failDocument: false };
  const write: DurableWriter = async (path, data, mode) => {
    if (path.endsWith('keywright.json')) {
      state.documentWrites++;
      if (state.failDocument)
        throw Object.assign(new Error('no space'), { code: 'ENOSPC', syscall: 'write' });
    }
    await writeFileDurable(path, data, mode);
  };
  return { state, write };
}

function recordingLogger() {
  const lines: { level: string; msg: string | undefined; obj: object }[] = [];
  const logger: Logger = {
    debug: (obj, msg) => lines.push({ level: 'debug', msg, obj }),
    info: (obj, msg) => lines.push({ level: 'info', msg, obj }),
    warn: (obj, msg) => lines.push({ level: 'warn', msg, obj }),
    error: (obj, msg) => lines.push({ level: 'error', msg, obj }),
    child: () => logger,
  };
  return { lines, logger };
}

/** Counts journal appends (one per flush) and can be told to fail them. */
function countingAppend() {
  const state = { appends: 0, fail: false };
  const append: JournalAppend = async (fh, data) => {
    state.appends++;
    if (state.fail) throw Object.assign(new Error('no space'), { code: 'ENOSPC', syscall: 'write' });
    await appendDurably(fh, data);
  };
  return { state, append };
}

/**
 * What a crash would leave right now: a copy of the data dir taken while the store is open (so whatever
 * was acknowledged must be in it), minus the lock, which a dead process would not hold.
 */
async function crashCopy(t: TestContext, dir: string): Promise<string> {
  const copy = join(await tempDir(t), 'crashed');
  // a background compaction may remove a file mid-copy: copy again (a real crash is instantaneous)
  for (let attempt = 0; ; attempt++) {
    try {
      await cp(dir, copy, { recursive: true });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 50) throw err;
      await rm(copy, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  await rm(join(copy, 'keywright.lock'), { force: true });
  return copy;
}

const docPath = (dir: string) => join(dir, 'keywright.json');
const journalPath = (dir: string) => join(dir, 'keywright.journal');
const readDoc = async (dir: string) =>
  JSON.parse(await readFile(docPath(dir), 'utf8')) as {
    schemaVersion: number;
    collections: Record<string, Record<string, unknown>>;
  };

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('lowdb store: durability and format', () => {
  test('a fresh data dir gets a compact document, a lock with our pid, and close releases the lock', async (t) => {
    const dir = join(await tempDir(t), 'data');
    const store = await openLowdbStore({ dataDir: dir });
    assert.equal(await readFile(docPath(dir), 'utf8'), '{"schemaVersion":1,"collections":{}}');
    assert.equal((await stat(docPath(dir))).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal(await readFile(join(dir, 'keywright.lock'), 'utf8'), `${process.pid}\n`);
    assert.equal(store.schemaVersion, 1);
    await store.close();
    assert.equal(await exists(join(dir, 'keywright.lock')), false);
  });

  test('an acknowledged write is in the journal at once, a crash right after keeps it, and close folds it into compact JSON', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
    await store.tx((tx) => {
      tx.collection<Cert>('certs').insert(cert('web', [1, 2]));
      tx.collection<Cert>('certs').insert(cert('api'));
    });
    // acknowledged means on disk now: one journal line, the document not rewritten
    assert.equal((await readFile(journalPath(dir), 'utf8')).split('\n').length, 2);
    assert.equal(await readFile(docPath(dir), 'utf8'), '{"schemaVersion":1,"collections":{}}');
    const crashed = await crashCopy(t, dir);
    const recovered = await openLowdbStore({ dataDir: crashed });
    assert.deepEqual(recovered.collection<Cert>('certs').list(), [cert('web', [1, 2]), cert('api')]);
    await recovered.close();

    await store.tx((tx) => tx.collection<Cert>('certs').delete('api'));
    await store.close();
    const text = await readFile(docPath(dir), 'utf8');
    assert.equal(text, JSON.stringify(JSON.parse(text)), 'compact: no indentation, no newlines');
    assert.deepEqual((await readDoc(dir)).collections.certs, { web: cert('web', [1, 2]) });
    assert.equal(await exists(journalPath(dir)), false, 'a clean close leaves no journal');

    const again = await openLowdbStore({ dataDir: dir });
    assert.deepEqual(again.collection<Cert>('certs').list(), [cert('web', [1, 2])]);
    assert.ok(
      Object.isFrozen(again.collection<Cert>('certs').get('web').versions),
      'loaded records come out frozen',
    );
    await again.close();
  });

  test('blobs are served from the journal until compaction writes them under blobs/; deleted with their empty dirs', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
    const chain = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n');
    await store.tx((tx) => {
      tx.collection<Cert>('certs').insert(cert('web'));
      tx.putBlob('cert/web/1/chain', chain);
      tx.putBlob('cert/web/1/key', Buffer.from([0, 1, 2, 255]));
    });
    assert.deepEqual(await store.getBlob('cert/web/1/chain'), chain);
    const crashed = await crashCopy(t, dir);
    const recovered = await openLowdbStore({ dataDir: crashed });
    assert.deepEqual(await recovered.getBlob('cert/web/1/key'), Buffer.from([0, 1, 2, 255]));
    await recovered.close();
    await store.close();

    const file = join(dir, 'blobs', 'cert', 'web', '1', 'chain');
    assert.deepEqual(await readFile(file), chain);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(
      await readFile(docPath(dir), 'utf8').then((s) => s.includes('BEGIN')),
      false,
      'blobs stay out of the document',
    );

    const again = await openLowdbStore({ dataDir: dir });
    assert.deepEqual(await again.getBlob('cert/web/1/chain'), chain);
    assert.deepEqual(await again.getBlob('cert/web/1/key'), Buffer.from([0, 1, 2, 255]));
    assert.equal(await again.getBlob('cert/web/2/chain'), undefined);
    await again.tx((tx) => {
      tx.deleteBlob('cert/web/1/chain');
      tx.deleteBlob('cert/web/1/key');
    });
    assert.equal(
      await again.getBlob('cert/web/1/chain'),
      undefined,
      'not served from a file or a cache after deletion',
    );
    assert.deepEqual(await again.listBlobs('cert/'), []);
    await again.close();
    assert.equal(await exists(file), false);
    assert.deepEqual(await readdir(join(dir, 'blobs')), [], 'emptied directories are pruned');
  });

  test('listBlobs walks the blob area by prefix, skipping temp files; a put on an existing key replaces it', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
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
    await store.close();
    const reopened = await openLowdbStore({ dataDir: dir });
    await writeFile(join(dir, 'blobs', 'sealed', 'acme', '.main.0123456789ab.tmp'), 'crash leftover');
    // files and journal merged: one more put and one delete not yet compacted
    await reopened.tx((tx) => {
      tx.putBlob('sealed/cert/web/3/key', Buffer.from('three'));
      tx.deleteBlob('sealed/cert/web/2/key');
    });
    assert.deepEqual(await reopened.listBlobs('sealed/cert/'), [
      'sealed/cert/web/1/key',
      'sealed/cert/web/3/key',
    ]);
    await reopened.tx((tx) => {
      tx.putBlob('sealed/cert/web/2/key', Buffer.from('sealed/cert/web/2/key'));
      tx.deleteBlob('sealed/cert/web/3/key');
    });
    const store2 = reopened;
    assert.deepEqual(await store2.listBlobs('sealed/'), [
      'sealed/acme/main',
      'sealed/cert/web/1/key',
      'sealed/cert/web/2/key',
    ]);
    assert.deepEqual(await store2.listBlobs('sealed/cert/web/1'), ['sealed/cert/web/1/key']);
    assert.deepEqual(await store2.listBlobs('nothing/'), []);
    assert.equal((await store2.listBlobs('')).length, 4);

    // KEK rotation rewraps sealed blobs in place: the new bytes must be what getBlob serves, cache or not
    assert.deepEqual(await store2.getBlob('sealed/acme/main'), Buffer.from('sealed/acme/main'));
    await store2.tx((tx) => tx.putBlob('sealed/acme/main', Buffer.from('rewrapped')));
    assert.deepEqual(await store2.getBlob('sealed/acme/main'), Buffer.from('rewrapped'));
    await store2.close();
    const third = await openLowdbStore({ dataDir: dir });
    assert.deepEqual(await third.getBlob('sealed/acme/main'), Buffer.from('rewrapped'));
    await third.close();
  });

  test('50 concurrent transactions cost far fewer than 50 flushes (group commit), and all are durable', async (t) => {
    const dir = await tempDir(t);
    const { state, append } = countingAppend();
    const store = await openLowdbStore({ dataDir: dir, journalAppend: append });
    const before = state.appends;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.tx(async (tx) => {
          await Promise.resolve();
          tx.collection<Cert>('certs').insert(cert(`c${i}`));
          tx.putBlob(`cert/c${i}/1/chain`, Buffer.from(`chain ${i}`));
        }),
      ),
    );
    const flushes = state.appends - before;
    t.diagnostic(
      `50 concurrent transactions: ${flushes} journal append(s); stats ${JSON.stringify(store.stats())}`,
    );
    assert.ok(flushes >= 1 && flushes <= 3, `expected 1–3 flushes, got ${flushes}`);
    assert.equal(store.stats().commits, 50);
    const crashed = await openLowdbStore({ dataDir: await crashCopy(t, dir) });
    assert.equal(crashed.collection('certs').count(), 50);
    assert.deepEqual(await crashed.getBlob('cert/c49/1/chain'), Buffer.from('chain 49'));
    await crashed.close();

    // Transactions arriving while a flush is in progress share the next one.
    const first = store.tx((tx) => tx.collection<Cert>('certs').insert(cert('first')));
    await new Promise((r) => setTimeout(r, 0));
    const burst = Array.from({ length: 20 }, (_, i) =>
      store.tx((tx) => tx.collection<Cert>('certs').insert(cert(`burst${i}`))),
    );
    const mark = state.appends;
    await Promise.all([first, ...burst]);
    assert.ok(state.appends - mark <= 2, `21 transactions took ${state.appends - mark} flushes`);
    await store.close();
  });
});

describe('lowdb store: failures', () => {
  test('a failed journal append rejects the tx with STORE_IO; memory and disk stay at the durable state', async (t) => {
    const dir = await tempDir(t);
    const { state, append } = countingAppend();
    const store = await openLowdbStore({ dataDir: dir, journalAppend: append });
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('web')));
    const durableJournal = await readFile(journalPath(dir));

    state.fail = true;
    await assert.rejects(
      store.tx((tx) => {
        tx.collection<Cert>('certs').update('web', (c) => ({ ...c, versions: [1, 2] }));
        tx.collection<Cert>('certs').insert(cert('api'));
      }),
      errorWithCode('STORE_IO', /ENOSPC/),
    );
    assert.deepEqual(await readFile(journalPath(dir)), durableJournal);
    assert.deepEqual(store.collection<Cert>('certs').list(), [cert('web')]);

    state.fail = false;
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('api')));
    const crashed = await openLowdbStore({ dataDir: await crashCopy(t, dir) });
    assert.deepEqual(crashed.collection<Cert>('certs').list(), [cert('web'), cert('api')]);
    await crashed.close();
    await store.close();
    const again = await openLowdbStore({ dataDir: dir });
    assert.deepEqual(
      again
        .collection<Cert>('certs')
        .list()
        .map((c) => c.id),
      ['web', 'api'],
    );
    await again.close();
  });

  test('a compaction that cannot write a blob file loses nothing: commits go on in the journal and a later one succeeds', async (t) => {
    const dir = await tempDir(t);
    const { lines, logger } = recordingLogger();
    // compact after every flush
    const store = await openLowdbStore({ dataDir: dir, compactAtBytes: 1, logger });
    // A plain file where the blob's directory must go: ENOTDIR even for root, no injection needed.
    await mkdir(join(dir, 'blobs'), { recursive: true });
    await writeFile(join(dir, 'blobs', 'cert'), 'in the way');
    await store.tx((tx) => {
      tx.collection<Cert>('certs').insert(cert('web'));
      tx.putBlob('cert/web/1/chain', Buffer.from('chain'));
    });
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('api')));
    await waitFor(() =>
      lines.some((l) => l.level === 'error' && /folding the store journal/.test(l.msg ?? '')),
    );
    assert.deepEqual(await store.getBlob('cert/web/1/chain'), Buffer.from('chain'));
    const crashed = await openLowdbStore({ dataDir: await crashCopy(t, dir) }).catch((e: unknown) => e);
    assert.ok(isAppError(crashed), 'the copy still has the obstacle: its fold at open fails');
    await rm(join(dir, 'blobs', 'cert'));
    await store.close(); // the fold at close succeeds now
    const again = await openLowdbStore({ dataDir: dir });
    assert.deepEqual(await again.getBlob('cert/web/1/chain'), Buffer.from('chain'));
    assert.equal(again.collection('certs').count(), 2);
    await again.close();
  });

  for (const [what, bytes, reason] of [
    ['truncated JSON', '{"schemaVersion":1,"collections":{"certs":{"web":{"id":"we', /not valid JSON/],
    ['an empty file', '', /not valid JSON/],
    ['an array', '[]', /not a JSON object/],
    ['no schemaVersion', '{"collections":{}}', /schemaVersion/],
    ['collections of the wrong type', '{"schemaVersion":1,"collections":[]}', /collections/],
    [
      'a record under the wrong id',
      '{"schemaVersion":1,"collections":{"certs":{"web":{"id":"api"}}}}',
      /record "web"/,
    ],
  ] as const) {
    test(`a document with ${what} is STORE_CORRUPT, names the file, and is left byte for byte`, async (t) => {
      const dir = await tempDir(t);
      await writeFile(docPath(dir), bytes);
      const before = await stat(docPath(dir));
      await assert.rejects(
        openLowdbStore({ dataDir: dir }),
        errorWithCode('STORE_CORRUPT', new RegExp(`${escape(docPath(dir))}.*${reason.source}.*backup`)),
      );
      assert.equal(await readFile(docPath(dir), 'utf8'), bytes);
      assert.equal((await stat(docPath(dir))).ino, before.ino, 'not renamed or replaced');
      assert.deepEqual(
        (await readdir(dir)).sort(),
        ['keywright.json'],
        'lock released, nothing else written',
      );
    });
  }

  test('a missing document next to existing blobs is STORE_CORRUPT rather than a silent fresh start', async (t) => {
    const dir = await tempDir(t);
    await mkdir(join(dir, 'blobs', 'cert'), { recursive: true });
    await assert.rejects(openLowdbStore({ dataDir: dir }), errorWithCode('STORE_CORRUPT', /missing/));
    assert.equal(await exists(docPath(dir)), false);
  });

  test('temp files left by a crash are ignored and cleaned at open', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
    await store.tx((tx) => {
      tx.collection<Cert>('certs').insert(cert('web'));
      tx.putBlob('cert/web/1/chain', Buffer.from('chain'));
    });
    await store.close();
    await writeFile(join(dir, '.keywright.json.0123456789ab.tmp'), '{"schemaVersion":1,"collec');
    await writeFile(join(dir, 'keywright.lock.0123456789ab.tmp'), '12345\n');
    await writeFile(join(dir, 'blobs', 'cert', 'web', '1', '.chain.0123456789ab.tmp'), 'half a ch');
    const again = await openLowdbStore({ dataDir: dir });
    assert.deepEqual(again.collection<Cert>('certs').list(), [cert('web')]);
    assert.deepEqual(await again.getBlob('cert/web/1/chain'), Buffer.from('chain'));
    assert.deepEqual((await readdir(dir)).sort(), [
      'blobs',
      'keywright.journal',
      'keywright.json',
      'keywright.lock',
      'keywright.lock.0123456789ab.tmp', // left alone: a racing process may be about to link it
    ]);
    await again.close();
  });
});

describe('lowdb store: lock', () => {
  test('a live process holding the lock → STORE_LOCKED naming its pid', async (t) => {
    const dir = await tempDir(t);
    const child = await childHoldingLock(t, dir);
    await assert.rejects(
      openLowdbStore({ dataDir: dir }),
      errorWithCode('STORE_LOCKED', new RegExp(`^data dir ${escape(dir)} is in use by pid ${child.pid}`)),
    );
    assert.equal(
      await readFile(join(dir, 'keywright.lock'), 'utf8'),
      `${child.pid}\n`,
      'their lock untouched',
    );
    assert.equal(await exists(docPath(dir)), false, 'nothing written');
    child.kill('SIGKILL');
    await once(child, 'exit');
    // the holder died without releasing: its lock is now stale and gets taken over
    const store = await openLowdbStore({ dataDir: dir });
    await store.close();
  });

  test('a stale lock (its pid is gone) is taken over with a warning', async (t) => {
    const dir = await tempDir(t);
    const dead = spawn(process.execPath, ['-e', '']);
    await once(dead, 'exit');
    await writeFile(join(dir, 'keywright.lock'), `${dead.pid}\n`);
    const { lines, logger } = recordingLogger();
    const store = await openLowdbStore({ dataDir: dir, logger });
    assert.equal(await readFile(join(dir, 'keywright.lock'), 'utf8'), `${process.pid}\n`);
    const warning = lines.find((l) => l.level === 'warn' && /stale/.test(l.msg ?? ''));
    assert.ok(warning, 'warned about the takeover');
    assert.deepEqual((warning.obj as { stalePid: number }).stalePid, dead.pid);
    await store.close();
  });

  test('acquireDataDirLock (for offline commands) creates the dir, excludes the store, and releases', async (t) => {
    const dir = join(await tempDir(t), 'new', 'data');
    const lock = await acquireDataDirLock(dir);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    await assert.rejects(openLowdbStore({ dataDir: dir }), errorWithCode('STORE_LOCKED'));
    await assert.rejects(acquireDataDirLock(dir), errorWithCode('STORE_LOCKED'));
    await lock.release();
    await lock.release(); // idempotent
    assert.equal(await exists(join(dir, 'keywright.lock')), false);
    const store = await openLowdbStore({ dataDir: dir });
    await store.close();
  });

  test('a second store in the same process is refused too', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
    await assert.rejects(
      openLowdbStore({ dataDir: dir }),
      errorWithCode('STORE_LOCKED', new RegExp(`pid ${process.pid}`)),
    );
    await store.close();
  });
});

describe('lowdb store: migrations', () => {
  test('a document written by a newer keywright is refused and left alone', async (t) => {
    const dir = await tempDir(t);
    const text = '{"schemaVersion":99,"collections":{}}';
    await writeFile(docPath(dir), text);
    await assert.rejects(
      openLowdbStore({ dataDir: dir }),
      errorWithCode('STORE_MIGRATION', /newer keywright/),
    );
    assert.equal(await readFile(docPath(dir), 'utf8'), text);
  });

  test('pending migrations run in order and are written in one durable write', async (t) => {
    const dir = await tempDir(t);
    await writeFile(
      docPath(dir),
      '{"schemaVersion":1,"collections":{"certs":{"web":{"id":"web","cn":"web"}}}}',
    );
    const migrations: Migration[] = [
      { version: 1, name: 'create the empty layout', up: (doc) => void (doc.collections ??= {}) },
      {
        version: 2,
        name: 'rename cn to name',
        up: (doc) => {
          const certs =
            (doc.collections as Record<string, Record<string, Record<string, unknown>>>).certs ?? {};
          for (const record of Object.values(certs)) {
            record.name = record.cn;
            delete record.cn;
          }
        },
      },
      {
        version: 3,
        name: 'add versions',
        up: (doc) => {
          const certs =
            (doc.collections as Record<string, Record<string, Record<string, unknown>>>).certs ?? {};
          for (const record of Object.values(certs)) record.versions = [];
        },
      },
    ];
    const { state, write } = countingWriter();
    const store = await openLowdbStore({ dataDir: dir, migrations, durableWrite: write });
    assert.equal(state.documentWrites, 1);
    assert.equal(store.schemaVersion, 3);
    assert.deepEqual(store.collection('certs').get('web'), { id: 'web', name: 'web', versions: [] });
    assert.equal((await readDoc(dir)).schemaVersion, 3);
    await store.close();

    const { state: again, write: write2 } = countingWriter();
    const reopened = await openLowdbStore({ dataDir: dir, migrations, durableWrite: write2 });
    assert.equal(again.documentWrites, 0, 'nothing to migrate, nothing written');
    await reopened.close();
  });

  test('a failing migration is STORE_MIGRATION and leaves the file unchanged', async (t) => {
    const dir = await tempDir(t);
    const text = '{"schemaVersion":1,"collections":{}}';
    await writeFile(docPath(dir), text);
    const migrations: Migration[] = [
      { version: 1, name: 'create the empty layout', up: (doc) => void (doc.collections ??= {}) },
      {
        version: 2,
        name: 'explodes',
        up: () => {
          throw new Error('bug');
        },
      },
    ];
    await assert.rejects(
      openLowdbStore({ dataDir: dir, migrations }),
      errorWithCode('STORE_MIGRATION', /migration 2 \(explodes\)/),
    );
    assert.equal(await readFile(docPath(dir), 'utf8'), text);
  });
});

describe('lowdb store: journal', () => {
  test('a torn last journal line (never acknowledged) is cut off at open with a warning; earlier commits stay', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('web')));
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('api')));
    const crashed = await crashCopy(t, dir);
    await store.close();
    const whole = await readFile(journalPath(crashed));
    await writeFile(journalPath(crashed), whole.subarray(0, whole.length - 7));
    const { lines, logger } = recordingLogger();
    const again = await openLowdbStore({ dataDir: crashed, logger });
    assert.deepEqual(again.collection<Cert>('certs').list(), [cert('web')]);
    assert.ok(lines.some((l) => l.level === 'warn' && /torn/.test(l.msg ?? '')));
    assert.equal((await readFile(journalPath(crashed), 'utf8')).split('\n').length, 2, 'cut to whole lines');
    await again.tx((tx) => tx.collection<Cert>('certs').insert(cert('new')));
    await again.close();
    const third = await openLowdbStore({ dataDir: crashed });
    assert.deepEqual(
      third
        .collection<Cert>('certs')
        .list()
        .map((c) => c.id),
      ['web', 'new'],
    );
    await third.close();
  });

  test('a damaged journal line with commits after it is STORE_CORRUPT, and nothing is touched', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('web')));
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('api')));
    const crashed = await crashCopy(t, dir);
    await store.close();
    const text = await readFile(journalPath(crashed), 'utf8');
    const edited = text.replace('"web"', '"wEb"');
    await writeFile(journalPath(crashed), edited);
    await assert.rejects(
      openLowdbStore({ dataDir: crashed }),
      errorWithCode('STORE_CORRUPT', /journal.*line 1/),
    );
    assert.equal(await readFile(journalPath(crashed), 'utf8'), edited);
    assert.equal(await exists(join(crashed, 'keywright.lock')), false);
  });

  test('a journal without its document is STORE_CORRUPT rather than a silent fresh start', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('web')));
    const crashed = await crashCopy(t, dir);
    await store.close();
    await rm(docPath(crashed));
    await assert.rejects(openLowdbStore({ dataDir: crashed }), errorWithCode('STORE_CORRUPT', /missing/));
  });

  test('compaction folds the journal into the document in the background while commits go on', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir, compactAtBytes: 4096 });
    for (let i = 0; i < 60; i++) {
      await store.tx((tx) => {
        tx.collection<Cert>('certs').insert(cert(`c${i}`));
        tx.putBlob(`cert/c${i}/1/chain`, Buffer.alloc(200, i));
        if (i >= 10) tx.deleteBlob(`cert/c${i - 10}/1/chain`);
      });
    }
    // each compaction starts when the journal passes 4 KiB and no other is running
    await waitFor(async () => Object.keys((await readDoc(dir)).collections.certs ?? {}).length >= 10);
    const journalLines = (await readFile(journalPath(dir), 'utf8')).split('\n').length - 1;
    assert.ok(journalLines < 60, `the journal was cut down (${journalLines} lines left)`);
    assert.equal(await exists(join(dir, 'blobs', 'cert', 'c0', '1', 'chain')), false);
    for (let i = 50; i < 60; i++)
      assert.deepEqual(await store.getBlob(`cert/c${i}/1/chain`), Buffer.alloc(200, i));
    assert.equal(await store.getBlob('cert/c3/1/chain'), undefined);
    await store.close();
    const again = await openLowdbStore({ dataDir: dir });
    assert.equal(again.collection('certs').count(), 60);
    assert.deepEqual((await again.listBlobs('cert/')).length, 10);
    await again.close();
  });

  test('a crash mid-compaction (a retired segment left) is folded at the next open; replay is idempotent', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
    await store.tx((tx) => {
      tx.collection<Cert>('certs').insert(cert('web'));
      tx.putBlob('cert/web/1/chain', Buffer.from('one'));
    });
    await store.tx((tx) => tx.collection<Cert>('certs').update('web', (c) => ({ ...c, versions: [1, 2] })));
    const crashed = await crashCopy(t, dir);
    await store.close();
    // the segment was retired, and the document already holds part of it (a crash after the snapshot)
    await rename(journalPath(crashed), join(crashed, 'keywright.journal.compacting'));
    await writeFile(
      docPath(crashed),
      JSON.stringify({ schemaVersion: 1, collections: { certs: { web: cert('web', [1, 2]) } } }),
    );
    const again = await openLowdbStore({ dataDir: crashed });
    assert.deepEqual(again.collection<Cert>('certs').list(), [cert('web', [1, 2])]);
    assert.deepEqual(await again.getBlob('cert/web/1/chain'), Buffer.from('one'));
    assert.equal(await exists(join(crashed, 'keywright.journal.compacting')), false);
    assert.deepEqual(await readFile(join(crashed, 'blobs', 'cert', 'web', '1', 'chain')), Buffer.from('one'));
    await again.close();
  });
});

describe('lowdb store: open', () => {
  test('open does not encode the records: their encodings are cached afterwards, a slice per event-loop turn', async (t) => {
    const dir = await tempDir(t);
    const first = await openLowdbStore({ dataDir: dir });
    await first.tx((tx) => {
      for (let i = 0; i < 1200; i++) tx.collection<Cert>('certs').insert(cert(`c${i}`, [i]));
    });
    await first.tx((tx) => tx.collection<Cert>('other').insert(cert('x')));
    await first.close();
    const before = await readFile(docPath(dir), 'utf8');

    // the event loop turns between slices: count the turns a parallel setImmediate chain gets
    let turns = 0;
    let spinning = true;
    const spin = () => {
      turns += 1;
      if (spinning) setImmediate(spin);
    };
    let opened = false;
    const warmed = new Promise<{ records: number; slices: number; turnsBefore: number; opened: boolean }>(
      (done) => {
        void openLowdbStore({
          dataDir: dir,
          warmEncodings: {
            afterMs: 0,
            sliceRecords: 500,
            onDone: (stats) => done({ ...stats, turnsBefore: turns, opened }),
          },
        }).then((s) => {
          opened = true;
          setImmediate(spin);
          t.after(() => s.close());
          store = s;
        });
      },
    );
    let store: Awaited<ReturnType<typeof openLowdbStore>> | undefined;
    const stats = await warmed;
    spinning = false;
    assert.equal(stats.opened, true, 'warming starts after open resolved');
    assert.equal(stats.records, 1201);
    assert.equal(stats.slices, 3, '500 + 500 + 201 records');
    assert.ok(stats.turnsBefore >= 2, `other work ran between slices (${stats.turnsBefore} turns)`);
    await store!.close();
    assert.equal(
      await readFile(docPath(dir), 'utf8'),
      before,
      'the close re-encodes the document byte for byte',
    );
  });

  test('a store closed before its warm-up starts closes cleanly and leaves the document as it was', async (t) => {
    const dir = await tempDir(t);
    const first = await openLowdbStore({ dataDir: dir });
    await first.tx((tx) => tx.collection<Cert>('certs').insert(cert('web')));
    await first.close();
    const before = await readFile(docPath(dir), 'utf8');
    let warmedUp = false;
    const store = await openLowdbStore({
      dataDir: dir,
      warmEncodings: { afterMs: 50, onDone: () => (warmedUp = true) },
    });
    await store.close();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(warmedUp, false, 'close cancelled the warm-up');
    assert.equal(await readFile(docPath(dir), 'utf8'), before);
  });
});

async function waitFor(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('lowdb store: close', () => {
  test('close waits for in-flight transactions and flushes them; later calls are STORE_CLOSED', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
    const pending = Array.from({ length: 5 }, (_, i) =>
      store.tx((tx) => tx.collection<Cert>('certs').insert(cert(`c${i}`))),
    );
    await store.close();
    await Promise.all(pending);
    assert.equal(Object.keys((await readDoc(dir)).collections.certs ?? {}).length, 5);
    assert.equal(await exists(join(dir, 'keywright.lock')), false);
    await assert.rejects(
      store.tx(() => undefined),
      errorWithCode('STORE_CLOSED'),
    );
    assert.throws(() => store.collection('certs').list(), errorWithCode('STORE_CLOSED'));
  });
});

/** A real second process that takes the lock through the same exported function and then idles. */
async function childHoldingLock(t: TestContext, dir: string) {
  const lockModule = pathToFileURL(resolve('src/store/lock.ts')).href;
  const script = `
    const { acquireDataDirLock } = await import(process.argv[1]);
    await acquireDataDirLock(process.argv[2]);
    process.stdout.write('locked\\n');
    setInterval(() => {}, 60_000);
  `;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script, lockModule, dir],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  for await (const chunk of child.stdout) {
    out += String(chunk);
    if (out.includes('locked')) break;
  }
  assert.ok(out.includes('locked'), 'the child took the lock');
  assert.ok(child.pid !== undefined);
  return child as typeof child & { pid: number };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
