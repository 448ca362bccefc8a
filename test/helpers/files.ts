import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Every file below `dir`, recursively (for scanning a data dir for plaintext secrets). */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir)) {
    const p = join(dir, name);
    if ((await stat(p)).isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}
