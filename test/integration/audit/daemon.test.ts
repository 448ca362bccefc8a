/**
 * The daemon verifies its audit chain after it is up (AuditLog deferVerification + verifyChain): a log
 * edited in the middle no longer stops the start, but once found, every audited operation is refused
 * exactly as a full check at open would have refused them all, and /readyz says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestDaemon } from '../agent/daemon.js';

test('a log edited in the middle: the daemon starts, then refuses audited operations and is not ready, naming the line', async (t) => {
  const d = await startTestDaemon(t);
  assert.equal((await d.call('GET', '/readyz')).status, 200);
  await d.token('reader'); // one more entry, from the API
  await d.stop();

  const path = join(d.dataDir, 'audit.log');
  const lines = (await readFile(path, 'utf8')).split('\n');
  assert.ok(lines.length > 4, `enough entries to edit one in the middle (${lines.length - 1})`);
  const entry = JSON.parse(lines[1]!) as { actor: string };
  lines[1] = lines[1]!.replace(`"actor":"${entry.actor}"`, '"actor":"someone-else"');
  await writeFile(path, lines.join('\n'));

  await d.start();
  let ready = await d.call('GET', '/readyz');
  for (let i = 0; i < 200 && ready.status === 200; i++) {
    await new Promise((r) => setTimeout(r, 25));
    ready = await d.call('GET', '/readyz');
  }
  assert.equal(ready.status, 503, ready.text);
  assert.equal(ready.json.code, 'DAEMON_NOT_READY');
  assert.match(ready.json.detail, /audit log refuses appends \(AUDIT_INTEGRITY\)/);
  assert.match(ready.json.detail, /line 2: edited/);
  assert.equal((await d.call('GET', '/healthz')).status, 200, 'still alive');
  const atRefusal = await readFile(path);
  assert.ok(atRefusal.toString('utf8').startsWith(lines.join('\n')), 'the edited entries are left alone');

  const refused = await d.call('POST', '/v1/tokens', { token: d.adminToken, body: { role: 'reader' } });
  assert.equal(refused.status, 500, refused.text);
  assert.equal(refused.json.code, 'AUDIT_INTEGRITY');
  assert.deepEqual(await readFile(path), atRefusal, 'nothing is appended to the broken log');
});
