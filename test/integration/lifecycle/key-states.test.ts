import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApi } from '../../helpers/api-harness.js';
import { FakeClock, systemClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/logger.js';
import { isAppError } from '../../../src/core/errors.js';
import { keyDestructionSweep } from '../../../src/lifecycle/sweeps.js';

const DAY = 86_400_000;

test('superseded keys: disabled → pending-destruction → destroyed (blob erased, audited); restore before, refused after', async (t) => {
  const api = await startApi(t, { unsealed: true });
  const { certificates, deployer } = api.unsealed!;
  const ctx = { clock: systemClock, logger: silentLogger, actor: 'test' };
  await certificates.create(
    'web',
    {
      issuer: 'ca:default',
      sans: ['web.internal'],
      keyType: 'ec-p256',
      lifetimeMs: 30 * DAY,
      keyRotation: 'always',
    },
    { source: 'api' },
    ctx,
  );
  await certificates.issue('web', ctx, { reason: 'manual' });
  const clock = new FakeClock(Date.now());
  const deps = { store: api.store, audit: api.audit, certificates, deployer, clock, logger: silentLogger };
  const state = () => certificates.versions('web').map((v) => `${v.version}:${v.status}:${v.keyState}`);
  assert.deepEqual(state(), ['2:active:enabled', '1:superseded:disabled']);

  await keyDestructionSweep(deps);
  assert.deepEqual(state(), ['2:active:enabled', '1:superseded:pending-destruction']);
  const v1 = certificates.versions('web')[1]!;
  assert.equal(Date.parse(v1.destroyAfter!), clock.nowMs() + 30 * DAY);

  // Restored before its date: back to disabled, and the sweep leaves it alone from then on.
  const restoreCtx = { ...ctx, clock };
  assert.equal((await certificates.restoreKey('web', 1, restoreCtx)).keyState, 'disabled');
  clock.advance(31 * DAY);
  await keyDestructionSweep(deps);
  assert.deepEqual(state(), ['2:active:enabled', '1:superseded:disabled']);
  assert.ok(await api.store.getBlob(v1.keyBlob!), 'the restored key is kept');

  // Version 3 supersedes 2; 2 goes pending, then is destroyed after the waiting period.
  await certificates.issue('web', ctx, { reason: 'manual' });
  const v2 = certificates.versions('web').find((v) => v.version === 2)!;
  await keyDestructionSweep(deps);
  clock.advance(30 * DAY + 1000);
  await keyDestructionSweep(deps);
  assert.deepEqual(state(), ['3:active:enabled', '2:superseded:destroyed', '1:superseded:disabled']);
  assert.equal(await api.store.getBlob(v2.keyBlob!), undefined, 'the sealed blob is erased');
  await assert.rejects(certificates.restoreKey('web', 2, restoreCtx), (e) => isAppError(e, 'CERT_KEY_STATE'));
  await assert.rejects(certificates.restoreKey('web', 3, restoreCtx), (e) => isAppError(e, 'CERT_KEY_STATE'));
  const audit = await api.audit.query({ subject: 'cert:web', limit: 50 });
  const actions = audit.map((e) => e.action);
  assert.ok(
    actions.includes('key.destroy') && actions.includes('key.restore') && actions.includes('key.state'),
    actions.join(','),
  );

  // Over the API: 409 with the reason.
  const res = await api.call('POST', '/v1/certificates/web/versions/2/key/restore', {
    token: api.adminToken,
  });
  assert.equal(res.status, 409, res.text);
  assert.equal(res.json.code, 'CERT_KEY_STATE');
});
