import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeClock } from '../../../src/core/clock.js';
import { startTestDaemon } from '../agent/daemon.js';

function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false },
      () => {
        resolve(socket.getPeerCertificate().serialNumber.toLowerCase());
        socket.end();
      },
    );
    socket.on('error', reject);
  });
}

test("the daemon's own HTTPS certificate is renewed past 2/3 of its life and swapped in without a restart", async (t) => {
  const clock = new FakeClock(Date.now());
  const d = await startTestDaemon(t, {}, { clock });
  const first = await servedSerial(d.port);
  await d.running()!.runSweep('daemon-tls');
  assert.equal(await servedSerial(d.port), first, 'not due: the same certificate');
  clock.advance(61 * 86_400_000); // a 90-day certificate is due after 60 days
  await d.running()!.runSweep('daemon-tls');
  const second = await servedSerial(d.port);
  assert.notEqual(second, first, 'new connections get the renewed certificate');
  const log = await readFile(join(d.dataDir, 'audit.log'), 'utf8');
  const issued = log
    .split('\n')
    .filter((l) => l.includes('"action":"cert.issue"') && l.includes('"subject":"daemon-tls"'));
  assert.equal(issued.length, 2, 'both issuances audited');
  assert.ok(issued[1]!.includes(second.replace(/^0+/, '')), 'the second entry names the served serial');
});
