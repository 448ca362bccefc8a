import { join, resolve } from 'node:path';
import { mkdirDurable, writeFileDurable } from '../core/fs-durable.js';

export interface PemSet {
  readonly certificate: string;
  readonly chain: string;
  readonly fullchain: string;
  readonly privateKey?: string | undefined;
}

/**
 * Writes cert.pem, chain.pem, fullchain.pem and (0600) privkey.pem into `dir`, certbot's layout, each
 * durably. The key first: a reader that sees the new certificate must find its key already in place.
 */
export async function writePemSet(out: string, set: PemSet): Promise<string[]> {
  const dir = resolve(out);
  await mkdirDurable(dir);
  const files: Array<[string, string, number]> = [
    ['cert.pem', set.certificate, 0o644],
    ['chain.pem', set.chain, 0o644],
    ['fullchain.pem', set.fullchain, 0o644],
    ...(set.privateKey ? ([['privkey.pem', set.privateKey, 0o600]] as Array<[string, string, number]>) : []),
  ];
  for (const [file, content, mode] of [...files].reverse())
    await writeFileDurable(join(dir, file), content, mode);
  return files.map(([file]) => join(dir, file));
}
