import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const LOOP = fileURLToPath(new URL('./fixtures/keygen-export-loop.ts', import.meta.url));

/**
 * Node 20's generateKeyPairSync leaves its job to the garbage collector, whose finaliser takes the new
 * key's lock; a JWK export holds that lock while it allocates, so a collection in between deadlocks the
 * process (a futex wait, forever). With a collection every 20 allocations that direct pattern hangs at
 * once. The fixture traps generateKeyPairSync (a call fails the run) and runs keywright's key
 * generation and the exports it does on fresh keys under that collector.
 */
test('fresh keys survive their JWK and DER exports under constant garbage collection (no deadlock)', async () => {
  const child = spawn(process.execPath, ['--gc-interval=20', '--import', 'tsx', LOOP, '1500'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  assert.equal(code, 0, `the loop did not finish (deadlocked or failed): ${out}`);
  assert.ok(Number(out.trim()) > 0, out);
});
