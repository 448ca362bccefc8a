import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { openLowdbStore } from '../../../src/store/lowdb/index.js';
import { TokenService } from '../../../src/access/token-service.js';
import { tempDir } from '../../helpers/tmp.js';

/** Every byte under the data dir, as one string, to search for leaked secrets. */
async function everything(dir: string): Promise<string> {
  let out = '';
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out += (await readFile(join(entry.parentPath, entry.name))).toString('latin1');
  }
  return out;
}

test('tokens survive a restart of the lowdb store and the data dir never holds a plaintext token', async (t) => {
  const dataDir = await tempDir(t);
  const clock = new FakeClock();
  let store = await openLowdbStore({ dataDir, clock });
  let tokens = new TokenService({ store, clock });
  const admin = await tokens.create({ role: 'admin', description: 'bootstrap', createdBy: 'cli:init' });
  const service = await tokens.create({
    role: 'service',
    scopes: ['cert:web'],
    ttlMs: 86_400_000,
    createdBy: admin.record.id,
  });
  const revoked = await tokens.create({ role: 'reader', createdBy: admin.record.id });
  await tokens.revoke(revoked.record.id, admin.record.id);
  await store.close();

  const bytes = await everything(dataDir);
  for (const { token, record } of [admin, service, revoked]) {
    assert.ok(!bytes.includes(token.slice(3)), 'a token body is on disk');
    assert.ok(bytes.includes(record.hash), 'the hash is what is stored');
  }

  store = await openLowdbStore({ dataDir, clock });
  t.after(() => store.close());
  tokens = new TokenService({ store, clock });
  assert.equal(tokens.authenticate(admin.token).role, 'admin');
  assert.deepEqual(tokens.authenticate(service.token).scopes, ['cert:web']);
  assert.throws(
    () => tokens.authenticate(revoked.token),
    (err) => isAppError(err, 'AUTH_INVALID'),
  );
  clock.advance(86_400_000);
  assert.throws(
    () => tokens.authenticate(service.token),
    (err) => isAppError(err, 'AUTH_INVALID'),
  );
});
