import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AppError } from '../core/errors.js';
import { ApiClient } from './client.js';

/** Global options shared by every command (DESIGN §4). */
export interface GlobalOptions {
  url?: string;
  token?: string;
  tokenFile?: string;
  caFile?: string;
  dataDir?: string;
  config?: string;
  json?: boolean;
}

export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
}

/** Resolves where the daemon is and how to trust and authenticate to it. */
export async function connect(opts: GlobalOptions, io: CliIo): Promise<ApiClient> {
  const dataDir = opts.dataDir ?? io.env.KEYWRIGHT_DATA_DIR;
  let url = opts.url ?? io.env.KEYWRIGHT_URL;
  let ca: string | undefined;
  const caFile = opts.caFile ?? io.env.KEYWRIGHT_CA_FILE;
  if (dataDir !== undefined) {
    // On the daemon's own machine the data dir says where the daemon listens and which root it uses.
    if (url === undefined) url = await readDaemonUrl(resolve(dataDir));
    if (caFile === undefined) ca = await readFile(resolve(dataDir, 'ca.pem'), 'utf8').catch(() => undefined);
  }
  if (caFile !== undefined) ca = await readTextFile(caFile, '--ca-file');
  if (url === undefined) {
    throw new AppError(
      'INVALID_ARGUMENT',
      'where is the daemon? give --url (or KEYWRIGHT_URL), or --data-dir of a running daemon on this machine',
    );
  }
  let token = opts.token ?? io.env.KEYWRIGHT_TOKEN;
  if (opts.tokenFile !== undefined) token = (await readTextFile(opts.tokenFile, '--token-file')).trim();
  return new ApiClient({ url, token, ca });
}

async function readDaemonUrl(dataDir: string): Promise<string | undefined> {
  const text = await readFile(resolve(dataDir, 'daemon.json'), 'utf8').catch(() => undefined);
  if (text === undefined) {
    throw new AppError(
      'DAEMON_UNREACHABLE',
      `no daemon is running on data dir ${dataDir} (no daemon.json); start it with keywright serve --data-dir ${dataDir}`,
    );
  }
  try {
    return (JSON.parse(text) as { url: string }).url;
  } catch {
    return undefined;
  }
}

/** Reads a file named by a flag; a clear INVALID_ARGUMENT naming the flag when it cannot. */
export async function readTextFile(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err, details: { field: flag.replace(/^--/, '') } },
    );
  }
}
