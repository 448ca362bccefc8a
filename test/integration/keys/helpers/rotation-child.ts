// A separate process that rotates a file KEK over a store of one blob per file, and kills itself with
// SIGKILL at a chosen point: a real crash, with no finally blocks or flushes running.
// Usage: rotation-child.ts DATA_DIR STORE_DIR [KILL_AT_STEP|-] [KILL_AFTER_N_BLOBS|-]
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileDurable } from '../../../../src/core/fs-durable.js';
import type { SealedBlob } from '../../../../src/keys/port.js';
import { rotateKek } from '../../../../src/keys/software/rotate.js';

const [dataDir, storeDir, killAt = '-', killAfter = '-'] = process.argv.slice(2);
if (dataDir === undefined || storeDir === undefined) throw new Error('usage: DATA_DIR STORE_DIR [STEP] [N]');

function die(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}

const result = await rotateKek({
  dataDir,
  source: { source: 'file' },
  secrets: {},
  rewrapAll: async (sealer) => {
    let n = 0;
    for (const name of (await readdir(storeDir)).sort()) {
      if (killAfter !== '-' && n === Number(killAfter)) die();
      const path = join(storeDir, name);
      const blob = JSON.parse(await readFile(path, 'utf8')) as SealedBlob;
      await writeFileDurable(path, JSON.stringify(await sealer.rewrap(blob)));
      n++;
    }
    return n;
  },
  afterStep: (step) => {
    if (step === killAt) die();
  },
});
process.stdout.write(JSON.stringify({ from: result.from, to: result.to, rewrapped: result.rewrapped }));
