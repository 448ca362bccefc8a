import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FakeClock } from '../../../src/core/clock.js';
import { AuditLog } from '../../../src/audit/audit-log.js';
import { audited } from '../../../src/audit/audited.js';
import { tempDir } from '../../helpers/tmp.js';

const what = {
  actor: 'tok_1',
  action: 'cert.issue',
  subject: 'cert:web',
  requestId: 'r1',
  details: { n: 1 },
};

test('the entry comes before the change; a failed change adds a failure entry; a refused entry runs nothing', async (t) => {
  const log = await AuditLog.open({ path: join(await tempDir(t), 'audit.log'), clock: new FakeClock() });
  let seenAtChange = -1;
  assert.equal(
    await audited(log, what, async () => {
      seenAtChange = log.head.seq;
      return 'done';
    }),
    'done',
  );
  assert.equal(seenAtChange, 1, 'the success entry was durable when the change ran');

  await assert.rejects(
    audited(log, what, async () => {
      throw Object.assign(new Error('boom'), { code: 'CA_PROFILE_DENIED' });
    }),
    /boom/,
  );
  const [success, failure] = await log.tail(2);
  assert.deepEqual(
    [success!.outcome, failure!.outcome, failure!.details, failure!.requestId],
    ['success', 'failure', { code: 'CA_PROFILE_DENIED' }, 'r1'],
  );

  await log.close();
  let ran = false;
  await assert.rejects(
    audited(log, what, async () => {
      ran = true;
    }),
    (err) => (err as { code?: string }).code === 'AUDIT_WRITE_FAILED',
  );
  assert.equal(ran, false, 'fail closed: no entry, no change');
});
