import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { access, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { SealedBlob } from '../../../src/keys/port.js';
import { initKek, loadKeyRing } from '../../../src/keys/software/kek.js';
import { readKekState } from '../../../src/keys/software/kek-state.js';
import { SoftwareSealer } from '../../../src/keys/software/sealer.js';
import { tempDir } from '../../helpers/tmp.js';

// Real crashes: a child process rotates a file KEK and SIGKILLs itself at each durable point (and in the
// middle of the rewrap pass). After each, this process loads the key ring from disk, checks every blob
// still opens, then runs the rotation to the end in another child.

const CHILD = fileURLToPath(new URL('./helpers/rotation-child.ts', import.meta.url));
const BLOBS = 5;

function runChild(dataDir: string, storeDir: string, killAt = '-', killAfter = '-') {
  const res = spawnSync(process.execPath, ['--import', 'tsx', CHILD, dataDir, storeDir, killAt, killAfter], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: res.status, signal: res.signal, stdout: res.stdout, stderr: res.stderr };
}

async function setup(root: string): Promise<{ dataDir: string; storeDir: string }> {
  const dataDir = join(root, 'data');
  const storeDir = join(root, 'store');
  await mkdir(storeDir);
  const sealer = new SoftwareSealer(await initKek(dataDir, { source: 'file' }, {}));
  for (let i = 0; i < BLOBS; i++) {
    const blob = await sealer.seal(Buffer.from(`secret ${i}`), { recordType: 'test', recordId: `r${i}` });
    await writeFile(join(storeDir, `r${i}.json`), JSON.stringify(blob));
  }
  return { dataDir, storeDir };
}

async function blobs(storeDir: string): Promise<Map<string, SealedBlob>> {
  const out = new Map<string, SealedBlob>();
  for (const name of await readdir(storeDir)) {
    out.set(
      name.replace(/\.json$/, ''),
      JSON.parse(await readFile(join(storeDir, name), 'utf8')) as SealedBlob,
    );
  }
  return out;
}

async function assertAllOpen(dataDir: string, storeDir: string): Promise<Set<string>> {
  const sealer = new SoftwareSealer(await loadKeyRing(dataDir, { source: 'file' }, {}));
  const keks = new Set<string>();
  for (const [id, blob] of await blobs(storeDir)) {
    const plain = await sealer.unseal(blob, { recordType: 'test', recordId: id });
    assert.equal(plain.toString(), `secret ${id.slice(1)}`);
    keks.add(blob.kek);
  }
  return keks;
}

describe('file KEK rotation survives SIGKILL', { concurrency: 2 }, () => {
  const points: [string, string, string][] = [
    ['after "recorded"', 'recorded', '-'],
    ['after "staged"', 'staged', '-'],
    ['in the middle of the rewrap pass', '-', '2'],
    ['after "rewrapped"', 'rewrapped', '-'],
    ['after "retiring"', 'retiring', '-'],
    ['after "renamed"', 'renamed', '-'],
  ];
  for (const [name, step, after] of points) {
    test(`killed ${name}: every blob opens, a second run finishes`, async (t) => {
      const { dataDir, storeDir } = await setup(await tempDir(t));
      const crashed = runChild(dataDir, storeDir, step, after);
      assert.equal(crashed.signal, 'SIGKILL', `the child should have been killed: ${crashed.stderr}`);
      await assertAllOpen(dataDir, storeDir);

      const finished = runChild(dataDir, storeDir);
      assert.equal(finished.status, 0, finished.stderr);
      const { to } = JSON.parse(finished.stdout) as { to: string };
      assert.deepEqual(await assertAllOpen(dataDir, storeDir), new Set([to]));
      assert.deepEqual(await readKekState(dataDir), { v: 1, source: 'file', primary: to });
      await assert.rejects(access(join(dataDir, 'master.key.next')));
      assert.deepEqual([...(await loadKeyRing(dataDir, { source: 'file' }, {})).keks.keys()], [to]);
    });
  }
});
