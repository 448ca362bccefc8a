import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isAppError } from '../../../src/core/errors.js';
import { writeFileDurable } from '../../../src/core/fs-durable.js';
import type { Logger } from '../../../src/core/logger.js';
import { openLowdbStore, type DurableWriter, type Migration } from '../../../src/store/lowdb/index.js';
import type { StoredRecord } from '../../../src/store/port.js';
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

const docPath = (dir: string) => join(dir, 'keywright.json');
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

  test('an acknowledged write is in the file, as compact JSON, and a fresh store reads it back', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
    await store.tx((tx) => {
      tx.collection<Cert>('certs').insert(cert('web', [1, 2]));
      tx.collection<Cert>('certs').insert(cert('api'));
    });
    // read the file while the store is still open: acknowledged means on disk now
    const text = await readFile(docPath(dir), 'utf8');
    assert.equal(text, JSON.stringify(JSON.parse(text)), 'compact: no indentation, no newlines');
    assert.deepEqual((await readDoc(dir)).collections.certs, { web: cert('web', [1, 2]), api: cert('api') });
    await store.tx((tx) => tx.collection<Cert>('certs').delete('api'));
    await store.close();

    const again = await openLowdbStore({ dataDir: dir });
    assert.deepEqual(again.collection<Cert>('certs').list(), [cert('web', [1, 2])]);
    assert.ok(
      Object.isFrozen(again.collection<Cert>('certs').get('web').versions),
      'loaded records come out frozen',
    );
    await again.close();
  });

  test('blobs go to files under blobs/, are read back after a restart, and are deleted with their empty dirs', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
    const chain = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n');
    await store.tx((tx) => {
      tx.collection<Cert>('certs').insert(cert('web'));
      tx.putBlob('cert/web/1/chain', chain);
      tx.putBlob('cert/web/1/key', Buffer.from([0, 1, 2, 255]));
    });
    const file = join(dir, 'blobs', 'cert', 'web', '1', 'chain');
    assert.deepEqual(await readFile(file), chain);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(
      await readFile(docPath(dir), 'utf8').then((s) => s.includes('BEGIN')),
      false,
      'blobs stay out of the document',
    );
    await store.close();

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
      'not served from the cache after deletion',
    );
    assert.equal(await exists(file), false);
    assert.deepEqual(await readdir(join(dir, 'blobs')), [], 'emptied directories are pruned');
    await again.close();
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
    await writeFile(join(dir, 'blobs', 'sealed', 'acme', '.main.0123456789ab.tmp'), 'crash leftover');
    assert.deepEqual(await store.listBlobs('sealed/'), [
      'sealed/acme/main',
      'sealed/cert/web/1/key',
      'sealed/cert/web/2/key',
    ]);
    assert.deepEqual(await store.listBlobs('sealed/cert/web/1'), ['sealed/cert/web/1/key']);
    assert.deepEqual(await store.listBlobs('nothing/'), []);
    assert.equal((await store.listBlobs('')).length, 4);

    // KEK rotation rewraps sealed blobs in place: the new bytes must be what getBlob serves, cache or not
    assert.deepEqual(await store.getBlob('sealed/acme/main'), Buffer.from('sealed/acme/main'));
    await store.tx((tx) => tx.putBlob('sealed/acme/main', Buffer.from('rewrapped')));
    assert.deepEqual(await store.getBlob('sealed/acme/main'), Buffer.from('rewrapped'));
    await store.close();
  });

  test('50 concurrent transactions cost far fewer than 50 flushes (group commit), and all are durable', async (t) => {
    const dir = await tempDir(t);
    const { state, write } = countingWriter();
    const store = await openLowdbStore({ dataDir: dir, durableWrite: write });
    const before = state.documentWrites;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.tx(async (tx) => {
          await Promise.resolve();
          tx.collection<Cert>('certs').insert(cert(`c${i}`));
          tx.putBlob(`cert/c${i}/1/chain`, Buffer.from(`chain ${i}`));
        }),
      ),
    );
    const flushes = state.documentWrites - before;
    t.diagnostic(
      `50 concurrent transactions: ${flushes} document flush(es); stats ${JSON.stringify(store.stats())}`,
    );
    assert.ok(flushes >= 1 && flushes <= 3, `expected 1–3 flushes, got ${flushes}`);
    assert.equal(store.stats().commits, 50);
    assert.equal(Object.keys((await readDoc(dir)).collections.certs ?? {}).length, 50);

    // Transactions arriving while a flush is in progress share the next one.
    const first = store.tx((tx) => tx.collection<Cert>('certs').insert(cert('first')));
    await new Promise((r) => setTimeout(r, 0));
    const burst = Array.from({ length: 20 }, (_, i) =>
      store.tx((tx) => tx.collection<Cert>('certs').insert(cert(`burst${i}`))),
    );
    const mark = state.documentWrites;
    await Promise.all([first, ...burst]);
    assert.ok(
      state.documentWrites - mark <= 2,
      `21 transactions took ${state.documentWrites - mark} flushes`,
    );
    await store.close();
  });
});

describe('lowdb store: failures', () => {
  test('a failed document flush rejects the tx with STORE_IO; memory and file stay at the durable state', async (t) => {
    const dir = await tempDir(t);
    const { state, write } = countingWriter();
    const store = await openLowdbStore({ dataDir: dir, durableWrite: write });
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('web')));
    const durableBytes = await readFile(docPath(dir));

    state.failDocument = true;
    await assert.rejects(
      store.tx((tx) => {
        tx.collection<Cert>('certs').update('web', (c) => ({ ...c, versions: [1, 2] }));
        tx.collection<Cert>('certs').insert(cert('api'));
      }),
      errorWithCode('STORE_IO', /ENOSPC/),
    );
    assert.deepEqual(await readFile(docPath(dir)), durableBytes);
    assert.deepEqual(store.collection<Cert>('certs').list(), [cert('web')]);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.endsWith('.tmp')),
      [],
    );

    state.failDocument = false;
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('api')));
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

  test('a blob that cannot be written fails the flush before the document is touched', async (t) => {
    const dir = await tempDir(t);
    const store = await openLowdbStore({ dataDir: dir });
    await store.tx((tx) => tx.collection<Cert>('certs').insert(cert('web')));
    const durableBytes = await readFile(docPath(dir));
    // A plain file where the blob's directory must go: ENOTDIR even for root, no injection needed.
    await mkdir(join(dir, 'blobs'), { recursive: true });
    await writeFile(join(dir, 'blobs', 'cert'), 'in the way');
    await assert.rejects(
      store.tx((tx) => {
        tx.collection<Cert>('certs').update('web', (c) => ({ ...c, versions: [1, 2] }));
        tx.putBlob('cert/web/2/chain', Buffer.from('chain'));
      }),
      errorWithCode('STORE_IO'),
    );
    assert.deepEqual(await readFile(docPath(dir)), durableBytes);
    assert.deepEqual(store.collection<Cert>('certs').get('web').versions, [1]);
    await store.close();
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
