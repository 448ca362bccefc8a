import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAppError } from '../../../src/core/errors.js';
import { initKek, loadKeyRing } from '../../../src/keys/software/kek.js';
import type { KekSourceConfig } from '../../../src/keys/software/kek.js';
import { kekIdOf } from '../../../src/keys/software/key-ring.js';
import { readKekState } from '../../../src/keys/software/kek-state.js';
import { SoftwareSealer } from '../../../src/keys/software/sealer.js';
import { tempDir } from '../../helpers/tmp.js';

const FILE: KekSourceConfig = { source: 'file' };
const ENV: KekSourceConfig = { source: 'env' };
const PASS: KekSourceConfig = { source: 'passphrase' };
/** Cheap scrypt for tests; the default cost (N=2^17) is exercised in test/integration/keys. */
const FAST = { scrypt: { N: 2 ** 10, r: 8, p: 1 } };
const ctx = { recordType: 'test', recordId: 'one' };

async function rejectsWith(promise: Promise<unknown>, code: string, ...patterns: RegExp[]): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isAppError(err), `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const p of patterns) assert.match(err.message, p);
    return err.message + JSON.stringify(err.details);
  }
  assert.fail(`expected ${code}, but it resolved`);
}

const b64 = (bytes: Buffer): string => bytes.toString('base64');
const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

describe('file source', () => {
  test('init creates master.key and kek.json with mode 0600; load opens what init sealed', async (t) => {
    const dir = join(await tempDir(t), 'data');
    const ring = await initKek(dir, FILE, {});
    const keyText = await readFile(join(dir, 'master.key'), 'utf8');
    assert.match(keyText, /^[A-Za-z0-9+/]{43}=\n$/);
    assert.equal(ring.primaryId, kekIdOf(Buffer.from(keyText, 'base64')));
    assert.equal(await mode(join(dir, 'master.key')), 0o600);
    assert.equal(await mode(join(dir, 'kek.json')), 0o600);
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'kek.json'), 'utf8')), {
      v: 1,
      source: 'file',
      primary: ring.primaryId,
    });
    const blob = await new SoftwareSealer(ring).seal(Buffer.from('hello'), ctx);
    const loaded = await loadKeyRing(dir, FILE, {});
    assert.equal(loaded.primaryId, ring.primaryId);
    assert.equal((await new SoftwareSealer(loaded).unseal(blob, ctx)).toString(), 'hello');
  });

  test('init refuses a data directory that has kek.json', async (t) => {
    const dir = await tempDir(t);
    await initKek(dir, FILE, {});
    await rejectsWith(initKek(dir, FILE, {}), 'KEK_EXISTS', /kek\.json/);
  });

  test('init keeps a master.key that a crashed earlier init left', async (t) => {
    const dir = await tempDir(t);
    const first = await initKek(dir, FILE, {});
    await rm(join(dir, 'kek.json'));
    const second = await initKek(dir, FILE, {});
    assert.equal(second.primaryId, first.primaryId);
  });

  for (const bad of [0o640, 0o604, 0o660, 0o644, 0o700 | 0o004]) {
    test(`load refuses master.key with mode ${bad.toString(8)} and says how to fix it`, async (t) => {
      const dir = await tempDir(t);
      await initKek(dir, FILE, {});
      const path = join(dir, 'master.key');
      await chmod(path, bad);
      await rejectsWith(loadKeyRing(dir, FILE, {}), 'KEK_INVALID', new RegExp(path), /chmod 600/);
    });
  }

  test('load refuses a master.key that is not base64 of 32 bytes, without echoing it', async (t) => {
    const dir = await tempDir(t);
    await initKek(dir, FILE, {});
    const path = join(dir, 'master.key');
    for (const content of [
      `${b64(randomBytes(31))}\n`,
      `${b64(randomBytes(33))}\n`,
      'not-base64-but-a-secret-ish!!\n',
      '',
    ]) {
      await writeFile(path, content, { mode: 0o600 });
      const text = await rejectsWith(loadKeyRing(dir, FILE, {}), 'KEK_INVALID', new RegExp(path), /32/);
      if (content.length > 4) assert.ok(!text.includes(content.trim().slice(0, 12)));
    }
  });

  test('a different master key is KEK_WRONG naming both ids; a missing one KEK_MISSING', async (t) => {
    const dir = await tempDir(t);
    const ring = await initKek(dir, FILE, {});
    const other = randomBytes(32);
    await writeFile(join(dir, 'master.key'), `${b64(other)}\n`, { mode: 0o600 });
    await rejectsWith(
      loadKeyRing(dir, FILE, {}),
      'KEK_WRONG',
      new RegExp(`does not open ${dir}: expected KEK id ${ring.primaryId}, got ${kekIdOf(other)}`),
    );
    await rm(join(dir, 'master.key'));
    await rejectsWith(loadKeyRing(dir, FILE, {}), 'KEK_MISSING', /master\.key/);
  });
});

describe('kek.json', () => {
  test('missing: KEK_MISSING telling to run init', async (t) => {
    const dir = await tempDir(t);
    await rejectsWith(loadKeyRing(dir, FILE, {}), 'KEK_MISSING', /keywright init/);
  });

  test('damaged or from the future: KEK_INVALID naming the file and field', async (t) => {
    const dir = await tempDir(t);
    const ring = await initKek(dir, FILE, {});
    const path = join(dir, 'kek.json');
    const cases: [string, RegExp][] = [
      ['{not json', /not valid JSON/],
      [JSON.stringify({ v: 2, source: 'file', primary: ring.primaryId }), /v is 2/],
      [JSON.stringify({ v: 1, source: 'pkcs11', primary: ring.primaryId }), /source/],
      [JSON.stringify({ v: 1, source: 'file', primary: 'XYZ' }), /primary/],
      [
        JSON.stringify({
          v: 1,
          source: 'file',
          primary: ring.primaryId,
          scrypt: { N: 1024, r: 8, p: 1, salt: b64(randomBytes(16)) },
        }),
        /scrypt/,
      ],
      [
        JSON.stringify({
          v: 1,
          source: 'file',
          primary: ring.primaryId,
          rotation: { from: ring.primaryId, to: ring.primaryId, stage: 'sideways' },
        }),
        /rotation\.stage/,
      ],
      [JSON.stringify([]), /not an object/],
    ];
    for (const [content, pattern] of cases) {
      await writeFile(path, content, { mode: 0o600 });
      await rejectsWith(loadKeyRing(dir, FILE, {}), 'KEK_INVALID', new RegExp(path), pattern);
    }
  });

  test('a configured source other than the initialized one is KEK_INVALID', async (t) => {
    const dir = await tempDir(t);
    await initKek(dir, FILE, {});
    await rejectsWith(
      loadKeyRing(dir, ENV, { env: {} }),
      'KEK_INVALID',
      /initialized with masterKey\.source file/,
    );
  });

  test('never holds the key', async (t) => {
    const dir = await tempDir(t);
    const kek = randomBytes(32);
    await initKek(dir, ENV, { env: { KEYWRIGHT_MASTER_KEY: b64(kek) } });
    const text = await readFile(join(dir, 'kek.json'), 'utf8');
    assert.ok(!text.includes(b64(kek).slice(0, 16)));
    assert.ok(!text.includes(kek.toString('hex').slice(0, 16)));
  });
});

describe('env source', () => {
  test('init and load read KEYWRIGHT_MASTER_KEY, or the configured variable', async (t) => {
    const kek = randomBytes(32);
    const dir = await tempDir(t);
    const ring = await initKek(dir, ENV, { env: { KEYWRIGHT_MASTER_KEY: b64(kek) } });
    assert.equal(ring.primaryId, kekIdOf(kek));
    assert.equal(
      (await loadKeyRing(dir, ENV, { env: { KEYWRIGHT_MASTER_KEY: b64(kek) } })).primaryId,
      kekIdOf(kek),
    );

    const dir2 = await tempDir(t);
    const custom: KekSourceConfig = { source: 'env', variable: 'MY_KEK' };
    await initKek(dir2, custom, { env: { MY_KEK: `${b64(kek)}\n` } });
    assert.equal((await loadKeyRing(dir2, custom, { env: { MY_KEK: b64(kek) } })).primaryId, kekIdOf(kek));
  });

  test('unset is KEK_MISSING, malformed KEK_INVALID naming the variable, another key KEK_WRONG', async (t) => {
    const dir = await tempDir(t);
    await rejectsWith(initKek(dir, ENV, { env: {} }), 'KEK_MISSING', /KEYWRIGHT_MASTER_KEY/);
    await rejectsWith(
      initKek(dir, ENV, { env: { KEYWRIGHT_MASTER_KEY: 'c2hvcnQ=' } }),
      'KEK_INVALID',
      /environment variable KEYWRIGHT_MASTER_KEY/,
    );
    await initKek(dir, ENV, { env: { KEYWRIGHT_MASTER_KEY: b64(randomBytes(32)) } });
    await rejectsWith(loadKeyRing(dir, ENV, { env: {} }), 'KEK_MISSING');
    await rejectsWith(
      loadKeyRing(dir, ENV, { env: { KEYWRIGHT_MASTER_KEY: b64(randomBytes(32)) } }),
      'KEK_WRONG',
    );
  });
});

describe('passphrase source', () => {
  test('init records scrypt parameters with a 16-byte salt; the same passphrase loads the same KEK', async (t) => {
    const dir = await tempDir(t);
    const ring = await initKek(dir, PASS, { passphrase: 'correct horse battery staple' }, FAST);
    const state = await readKekState(dir);
    assert.equal(state?.scrypt?.N, 1024);
    assert.equal(Buffer.from(state?.scrypt?.salt ?? '', 'base64').length, 16);
    const loaded = await loadKeyRing(dir, PASS, { passphrase: 'correct horse battery staple' });
    assert.equal(loaded.primaryId, ring.primaryId);
    assert.deepEqual(loaded.keks.get(ring.primaryId), ring.keks.get(ring.primaryId));
  });

  test('a wrong passphrase is KEK_WRONG, none KEK_MISSING, an empty one KEK_INVALID', async (t) => {
    const dir = await tempDir(t);
    await initKek(dir, PASS, { passphrase: 'right one' }, FAST);
    const text = await rejectsWith(
      loadKeyRing(dir, PASS, { passphrase: 'wrong one' }),
      'KEK_WRONG',
      /from the passphrase/,
    );
    assert.ok(!text.includes('wrong one'));
    await rejectsWith(loadKeyRing(dir, PASS, {}), 'KEK_MISSING');
    await rejectsWith(loadKeyRing(dir, PASS, { passphrase: '' }), 'KEK_INVALID');
  });

  test('the same passphrase gives different KEKs in different data directories (salt)', async (t) => {
    const a = await initKek(await tempDir(t), PASS, { passphrase: 'same' }, FAST);
    const b = await initKek(await tempDir(t), PASS, { passphrase: 'same' }, FAST);
    assert.notEqual(a.primaryId, b.primaryId);
  });

  test('composed and decomposed accents open the same store (NFC)', async (t) => {
    const dir = await tempDir(t);
    await initKek(dir, PASS, { passphrase: 'caf\u00e9 cr\u00e8me' }, FAST);
    await loadKeyRing(dir, PASS, { passphrase: 'cafe\u0301 cre\u0300me' });
  });

  test('a cost outside the bounds is refused', async (t) => {
    const dir = await tempDir(t);
    await rejectsWith(
      initKek(dir, PASS, { passphrase: 'x' }, { scrypt: { N: 1000, r: 8, p: 1 } }),
      'KEK_INVALID',
      /N/,
    );
    await rejectsWith(
      initKek(dir, PASS, { passphrase: 'x' }, { scrypt: { N: 2 ** 21, r: 8, p: 1 } }),
      'KEK_INVALID',
      /N/,
    );
  });
});
