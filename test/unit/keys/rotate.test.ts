import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isAppError } from '../../../src/core/errors.js';
import type { SealedBlob } from '../../../src/keys/port.js';
import { initKek, loadKeyRing } from '../../../src/keys/software/kek.js';
import type { KekSecrets, KekSourceConfig } from '../../../src/keys/software/kek.js';
import { readKekState } from '../../../src/keys/software/kek-state.js';
import { kekIdOf } from '../../../src/keys/software/key-ring.js';
import { rotateKek } from '../../../src/keys/software/rotate.js';
import type { RotationStep } from '../../../src/keys/software/rotate.js';
import { SoftwareSealer } from '../../../src/keys/software/sealer.js';
import { tempDir } from '../../helpers/tmp.js';

const FAST = { N: 2 ** 10, r: 8, p: 1 };
const b64 = (bytes: Buffer): string => bytes.toString('base64');

/** A stand-in for the store: blobs by record id, each sealed with its own context. */
class BlobStore {
  readonly blobs = new Map<string, SealedBlob>();
  #n = 0;

  async add(sealer: SoftwareSealer, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const id = `record-${this.#n++}`;
      this.blobs.set(
        id,
        await sealer.seal(Buffer.from(`secret of ${id}`), { recordType: 'test', recordId: id }),
      );
    }
  }

  /** The app's rewrapAll; with `failAfter` it stops part way, as a crash mid-pass would. */
  rewrapAll(failAfter?: number) {
    return async (sealer: SoftwareSealer): Promise<number> => {
      let n = 0;
      for (const [id, blob] of this.blobs) {
        if (failAfter !== undefined && n === failAfter) throw new Error('disk full (simulated)');
        this.blobs.set(id, await sealer.rewrap(blob));
        n++;
      }
      return n;
    };
  }

  /** Every blob opens with the ring and holds what was sealed. */
  async assertAllOpen(sealer: SoftwareSealer): Promise<void> {
    for (const [id, blob] of this.blobs) {
      const plain = await sealer.unseal(blob, { recordType: 'test', recordId: id });
      assert.equal(plain.toString(), `secret of ${id}`);
    }
  }

  kekIds(): Set<string> {
    return new Set([...this.blobs.values()].map((b) => b.kek));
  }
}

interface Setup {
  readonly source: KekSourceConfig;
  readonly steps: readonly RotationStep[];
  /** Secrets before, during (both) and after the rotation. */
  readonly before: KekSecrets;
  readonly during: KekSecrets;
  readonly after: KekSecrets;
}

function setups(): Setup[] {
  const oldKey = b64(randomBytes(32));
  const newKey = b64(randomBytes(32));
  return [
    {
      source: { source: 'file' },
      steps: ['recorded', 'staged', 'rewrapped', 'retiring', 'renamed', 'finished'],
      before: {},
      during: {},
      after: {},
    },
    {
      source: { source: 'env' },
      steps: ['recorded', 'rewrapped', 'finished'],
      before: { env: { KEYWRIGHT_MASTER_KEY: oldKey } },
      during: { env: { KEYWRIGHT_MASTER_KEY: oldKey, KEYWRIGHT_MASTER_KEY_NEW: newKey } },
      after: { env: { KEYWRIGHT_MASTER_KEY: newKey } },
    },
    {
      source: { source: 'passphrase' },
      steps: ['recorded', 'rewrapped', 'finished'],
      before: { passphrase: 'old passphrase' },
      during: { passphrase: 'old passphrase', newPassphrase: 'new passphrase' },
      after: { passphrase: 'new passphrase' },
    },
  ];
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isAppError(err), `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** A data directory with a store of blobs sealed under its first KEK. */
async function prepare(dir: string, s: Setup, blobs = 6): Promise<{ store: BlobStore; oldId: string }> {
  const ring = await initKek(dir, s.source, s.before, { scrypt: FAST });
  const store = new BlobStore();
  await store.add(new SoftwareSealer(ring), blobs);
  return { store, oldId: ring.primaryId };
}

/** After a finished rotation: one KEK, every blob under it and opening, kek.json clean. */
async function assertRotated(dir: string, s: Setup, store: BlobStore, to: string): Promise<void> {
  const ring = await loadKeyRing(dir, s.source, s.after);
  assert.equal(ring.primaryId, to);
  assert.deepEqual([...ring.keks.keys()], [to]);
  await store.assertAllOpen(new SoftwareSealer(ring));
  assert.deepEqual(store.kekIds(), new Set([to]));
  const state = await readKekState(dir);
  assert.equal(state?.primary, to);
  assert.equal(state?.rotation, undefined);
  if (s.source.source === 'file') {
    assert.equal(await exists(join(dir, 'master.key.next')), false);
    const text = await readFile(join(dir, 'master.key'), 'utf8');
    assert.equal(kekIdOf(Buffer.from(text, 'base64')), to);
  }
}

for (const s of setups()) {
  describe(`KEK rotation, ${s.source.source} source`, () => {
    test('rotates: every blob moves to the new KEK, the old one is retired', async (t) => {
      const dir = await tempDir(t);
      const { store, oldId } = await prepare(dir, s);
      const result = await rotateKek({
        dataDir: dir,
        source: s.source,
        secrets: s.during,
        rewrapAll: store.rewrapAll(),
      });
      assert.equal(result.from, oldId);
      assert.notEqual(result.to, oldId);
      assert.equal(result.rewrapped, 6);
      assert.equal(result.ring.primaryId, result.to);
      await store.assertAllOpen(new SoftwareSealer(result.ring));
      await assertRotated(dir, s, store, result.to);
      if (s.source.source === 'passphrase')
        await rejectsWith(loadKeyRing(dir, s.source, s.before), 'KEK_WRONG');
    });

    for (const crashAt of s.steps) {
      test(`a crash after "${crashAt}" loses no blob, and a second run finishes`, async (t) => {
        const dir = await tempDir(t);
        const { store, oldId } = await prepare(dir, s);
        await rejectsWith(
          rotateKek({
            dataDir: dir,
            source: s.source,
            secrets: s.during,
            rewrapAll: store.rewrapAll(),
            afterStep: (step) => {
              if (step === crashAt) throw new Error(`power cut after ${step} (simulated)`);
            },
          }),
          'KEK_ROTATION_FAILED',
        );
        // The "restarted daemon": a fresh ring from disk opens every blob and can seal new ones.
        const ring = await loadKeyRing(dir, s.source, crashAt === 'finished' ? s.after : s.during);
        const sealer = new SoftwareSealer(ring);
        await store.assertAllOpen(sealer);
        await store.add(sealer, 2);
        const to = (await readKekState(dir))?.rotation?.to ?? (await readKekState(dir))?.primary;
        if (crashAt === 'finished') {
          assert.notEqual(ring.primaryId, oldId);
          await assertRotated(dir, s, store, ring.primaryId);
          return;
        }
        const second = await rotateKek({
          dataDir: dir,
          source: s.source,
          secrets: s.during,
          rewrapAll: store.rewrapAll(),
        });
        assert.equal(second.from, oldId);
        if (crashAt !== 'recorded' || s.source.source !== 'file') assert.equal(second.to, to);
        await assertRotated(dir, s, store, second.to);
      });
    }

    test('rewrapAll failing part way: both KEKs still load, every blob opens, a re-run finishes', async (t) => {
      const dir = await tempDir(t);
      const { store, oldId } = await prepare(dir, s);
      await rejectsWith(
        rotateKek({ dataDir: dir, source: s.source, secrets: s.during, rewrapAll: store.rewrapAll(3) }),
        'KEK_ROTATION_FAILED',
        /running the rotation again finishes it/,
      );
      assert.equal(store.kekIds().size, 2, 'the simulated failure should leave blobs under both KEKs');
      const ring = await loadKeyRing(dir, s.source, s.during);
      assert.equal(ring.keks.size, 2);
      assert.ok(ring.keks.has(oldId));
      await store.assertAllOpen(new SoftwareSealer(ring));
      const second = await rotateKek({
        dataDir: dir,
        source: s.source,
        secrets: s.during,
        rewrapAll: store.rewrapAll(),
      });
      assert.equal(second.rewrapped, 6);
      await assertRotated(dir, s, store, second.to);
    });

    test('a second rotation starts from the first one’s new KEK', async (t) => {
      const dir = await tempDir(t);
      const { store } = await prepare(dir, s);
      const first = await rotateKek({
        dataDir: dir,
        source: s.source,
        secrets: s.during,
        rewrapAll: store.rewrapAll(),
      });
      const third = b64(randomBytes(32));
      const secrets: KekSecrets =
        s.source.source === 'env'
          ? {
              env: {
                KEYWRIGHT_MASTER_KEY: s.after.env?.KEYWRIGHT_MASTER_KEY,
                KEYWRIGHT_MASTER_KEY_NEW: third,
              },
            }
          : s.source.source === 'passphrase'
            ? { passphrase: 'new passphrase', newPassphrase: 'third passphrase' }
            : {};
      const second = await rotateKek({
        dataDir: dir,
        source: s.source,
        secrets,
        rewrapAll: store.rewrapAll(),
      });
      assert.equal(second.from, first.to);
      assert.deepEqual(store.kekIds(), new Set([second.to]));
    });
  });
}

describe('KEK rotation, source-specific rules', () => {
  test('file: a crash before master.key.next was written leaves only the old KEK needed', async (t) => {
    const dir = await tempDir(t);
    const s = setups()[0]!;
    const { oldId } = await prepare(dir, s);
    await rejectsWith(
      rotateKek({
        dataDir: dir,
        source: s.source,
        secrets: {},
        rewrapAll: () => Promise.resolve(0),
        afterStep: (step) => {
          if (step === 'recorded') throw new Error('crash');
        },
      }),
      'KEK_ROTATION_FAILED',
    );
    assert.equal((await readKekState(dir))?.rotation?.stage, 'prepared');
    assert.equal(await exists(join(dir, 'master.key.next')), false);
    const ring = await loadKeyRing(dir, s.source, {});
    assert.equal(ring.primaryId, oldId, 'nothing may be sealed under a KEK that is not yet on disk');
  });

  test('file: while rewrapping, a missing master.key.next is KEK_MISSING', async (t) => {
    const dir = await tempDir(t);
    const s = setups()[0]!;
    const { store } = await prepare(dir, s);
    await rejectsWith(
      rotateKek({ dataDir: dir, source: s.source, secrets: {}, rewrapAll: store.rewrapAll(2) }),
      'KEK_ROTATION_FAILED',
    );
    await rm(join(dir, 'master.key.next'));
    await rejectsWith(loadKeyRing(dir, s.source, {}), 'KEK_MISSING', /master\.key\.next/);
  });

  test('env: the new key must be set and differ from the current one', async (t) => {
    const s = setups()[1]!;
    const dir = await tempDir(t);
    const { store } = await prepare(dir, s);
    await rejectsWith(
      rotateKek({ dataDir: dir, source: s.source, secrets: s.before, rewrapAll: store.rewrapAll() }),
      'KEK_MISSING',
      /KEYWRIGHT_MASTER_KEY_NEW/,
    );
    const same = s.before.env?.KEYWRIGHT_MASTER_KEY;
    await rejectsWith(
      rotateKek({
        dataDir: dir,
        source: s.source,
        secrets: { env: { KEYWRIGHT_MASTER_KEY: same, KEYWRIGHT_MASTER_KEY_NEW: same } },
        rewrapAll: store.rewrapAll(),
      }),
      'KEK_INVALID',
      /current one/,
    );
    assert.equal((await readKekState(dir))?.rotation, undefined, 'a refused rotation records nothing');
  });

  test('env: after rotating, the old variable plus _NEW still loads until the operator swaps them', async (t) => {
    const s = setups()[1]!;
    const dir = await tempDir(t);
    const { store } = await prepare(dir, s);
    const result = await rotateKek({
      dataDir: dir,
      source: s.source,
      secrets: s.during,
      rewrapAll: store.rewrapAll(),
    });
    assert.equal((await loadKeyRing(dir, s.source, s.during)).primaryId, result.to);
    assert.equal((await loadKeyRing(dir, s.source, s.after)).primaryId, result.to);
    await rejectsWith(loadKeyRing(dir, s.source, s.before), 'KEK_WRONG');
  });

  test('env: while rewrapping, dropping the _NEW variable is KEK_MISSING', async (t) => {
    const s = setups()[1]!;
    const dir = await tempDir(t);
    const { store } = await prepare(dir, s);
    await rejectsWith(
      rotateKek({ dataDir: dir, source: s.source, secrets: s.during, rewrapAll: store.rewrapAll(1) }),
      'KEK_ROTATION_FAILED',
    );
    await rejectsWith(loadKeyRing(dir, s.source, s.before), 'KEK_MISSING', /rotation/);
  });

  test('passphrase: the new passphrase is required, checked, and needed until the rotation finishes', async (t) => {
    const s = setups()[2]!;
    const dir = await tempDir(t);
    const { store } = await prepare(dir, s);
    await rejectsWith(
      rotateKek({ dataDir: dir, source: s.source, secrets: s.before, rewrapAll: store.rewrapAll() }),
      'KEK_MISSING',
      /new passphrase/,
    );
    await rejectsWith(
      rotateKek({ dataDir: dir, source: s.source, secrets: s.during, rewrapAll: store.rewrapAll(2) }),
      'KEK_ROTATION_FAILED',
    );
    await rejectsWith(loadKeyRing(dir, s.source, s.before), 'KEK_MISSING', /new passphrase/);
    await rejectsWith(
      loadKeyRing(dir, s.source, { passphrase: 'old passphrase', newPassphrase: 'other new passphrase' }),
      'KEK_WRONG',
      /from the new passphrase/,
    );
    await rejectsWith(
      rotateKek({
        dataDir: dir,
        source: s.source,
        secrets: { passphrase: 'old passphrase', newPassphrase: 'other new passphrase' },
        rewrapAll: store.rewrapAll(),
      }),
      'KEK_WRONG',
    );
    const done = await rotateKek({
      dataDir: dir,
      source: s.source,
      secrets: s.during,
      rewrapAll: store.rewrapAll(),
    });
    await assertRotated(dir, s, store, done.to);
    const state = await readKekState(dir);
    assert.equal(state?.scrypt?.N, FAST.N, 'the new passphrase keeps the cost unless told otherwise');
  });
});
