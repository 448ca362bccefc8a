import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fsPromises from 'node:fs/promises';
import { stat, readFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { createdLevelParents, mkdirDurable, writeFileDurable } from '../../../src/core/fs-durable.js';
import { tempDir } from '../../helpers/tmp.js';

/** Records the directories fs-durable opens read-only (what fsyncDir does) while `fn` runs. */
async function directoriesSynced(fn: () => Promise<void>): Promise<string[]> {
  const original = fsPromises.open;
  const opened: string[] = [];
  fsPromises.open = async (...args: Parameters<typeof original>) => {
    if (args[1] === 'r') opened.push(String(args[0]));
    return original(...args);
  };
  syncBuiltinESMExports(); // the named import in fs-durable.ts now sees the wrapper
  try {
    await fn();
  } finally {
    fsPromises.open = original;
    syncBuiltinESMExports();
  }
  return opened;
}

describe('mkdirDurable', () => {
  test('fsyncs the parent of every level it created, outermost first', async (t) => {
    const root = await tempDir(t);
    const target = join(root, 'a', 'b', 'c');
    const synced = await directoriesSynced(() => mkdirDurable(target));
    assert.deepEqual(synced, [root, join(root, 'a'), join(root, 'a', 'b')]);
    assert.ok((await stat(target)).isDirectory());
  });

  test('syncs only below the part that already existed', async (t) => {
    const root = await tempDir(t);
    await mkdirDurable(join(root, 'a'));
    const synced = await directoriesSynced(() => mkdirDurable(join(root, 'a', 'b')));
    assert.deepEqual(synced, [join(root, 'a')]);
  });

  test('an existing directory syncs nothing', async (t) => {
    const root = await tempDir(t);
    assert.deepEqual(await directoriesSynced(() => mkdirDurable(root)), []);
  });

  test('applies the mode to every created level', async (t) => {
    const root = await tempDir(t);
    await mkdirDurable(join(root, 'x', 'y'), 0o700);
    assert.equal((await stat(join(root, 'x'))).mode & 0o777, 0o700);
    assert.equal((await stat(join(root, 'x', 'y'))).mode & 0o777, 0o700);
  });

  test('createdLevelParents: relative paths and one level', () => {
    assert.deepEqual(createdLevelParents('/d/a', '/d/a'), ['/d']);
    assert.deepEqual(createdLevelParents('/d/a', '/d/a/b/'), ['/d', '/d/a']);
    assert.deepEqual(createdLevelParents('rel', 'rel/x'), [process.cwd(), join(process.cwd(), 'rel')]);
  });
});

describe('writeFileDurable', () => {
  test('replaces content with the given mode and leaves no temp file', async (t) => {
    const root = await tempDir(t);
    const file = join(root, 'f');
    await writeFileDurable(file, 'one', 0o644);
    await writeFileDurable(file, 'two', 0o600);
    assert.equal(await readFile(file, 'utf8'), 'two');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(await fsPromises.readdir(root), ['f']);
  });

  test('a list of buffers is written in order, across several writev calls, without being joined first', async (t) => {
    const root = await tempDir(t);
    const file = join(root, 'doc');
    // 3000 parts: more than one writev (1024 buffers each), some empty, some large
    const parts = Array.from({ length: 3000 }, (_, i) =>
      Buffer.from(i % 7 === 0 ? '' : i % 500 === 1 ? 'x'.repeat(70_000) : `${i},`),
    );
    await writeFileDurable(file, parts, 0o600);
    assert.deepEqual(await readFile(file), Buffer.concat(parts));
    assert.deepEqual(await fsPromises.readdir(root), ['doc']);
  });
});
