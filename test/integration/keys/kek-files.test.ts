import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { initKek, loadKeyRing } from '../../../src/keys/software/kek.js';
import { readKekState } from '../../../src/keys/software/kek-state.js';
import { SoftwareSealer } from '../../../src/keys/software/sealer.js';
import { tempDir } from '../../helpers/tmp.js';

test('the default passphrase cost is scrypt N=2^17, r=8, p=1, within maxmem, and opens the store again', async (t) => {
  const dir = await tempDir(t);
  const started = performance.now();
  const ring = await initKek(dir, { source: 'passphrase' }, { passphrase: 'a long test passphrase' });
  t.diagnostic(`scrypt N=2^17 init: ${Math.round(performance.now() - started)} ms`);
  const state = await readKekState(dir);
  assert.deepEqual(
    { N: state?.scrypt?.N, r: state?.scrypt?.r, p: state?.scrypt?.p },
    { N: 2 ** 17, r: 8, p: 1 },
  );
  const blob = await new SoftwareSealer(ring).seal(Buffer.from('x'), { recordType: 't', recordId: '1' });
  const loaded = await loadKeyRing(dir, { source: 'passphrase' }, { passphrase: 'a long test passphrase' });
  assert.equal(
    (await new SoftwareSealer(loaded).unseal(blob, { recordType: 't', recordId: '1' })).toString(),
    'x',
  );
});

test('key files are 0600 and the data directory 0700 even under a permissive umask', async (t) => {
  const previous = process.umask(0o000);
  t.after(() => process.umask(previous));
  const dir = join(await tempDir(t), 'data');
  await initKek(dir, { source: 'file' }, {});
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  assert.equal((await stat(join(dir, 'master.key'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, 'kek.json'))).mode & 0o777, 0o600);
  await loadKeyRing(dir, { source: 'file' }, {});
});
