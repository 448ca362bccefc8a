import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { join } from 'node:path';
import { tempDir } from './tmp.js';
import { freePort } from './net.js';

export const BIN = fileURLToPath(new URL('../../bin/keywright.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  json<T = Record<string, unknown>>(): T;
}

/** Runs the built CLI as a user would, with a clean environment plus `env`. */
export async function kw(
  args: string[],
  env: Record<string, string> = {},
  input?: string,
): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input ?? '');
  const [code] = (await once(child, 'close')) as [number | null];
  return {
    code,
    stdout,
    stderr,
    json<T>() {
      return JSON.parse(stdout) as T;
    },
  };
}

export interface Daemon {
  child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `keywright serve`, waits until /healthz answers, and stops it when the test ends. */
export async function startServe(
  t: TestContext,
  args: string[],
  env: Record<string, string> = {},
  readyUrl?: string,
): Promise<Daemon> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      KEYWRIGHT_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const daemon: Daemon = {
    child,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  t.after(() => daemon.stop('SIGKILL'));
  if (readyUrl !== undefined) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}:\n${out}`);
      const ok = await probe(readyUrl);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`serve did not become healthy:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return daemon;
}

export interface ServedDataDir {
  /** The test's temp dir; the data dir is `root/data`. */
  readonly root: string;
  readonly dir: string;
  readonly url: string;
  readonly adminToken: string;
  readonly daemon: Daemon;
  /** KEYWRIGHT_DATA_DIR + KEYWRIGHT_TOKEN (admin) for `kw`. */
  readonly env: Record<string, string>;
}

/** `keywright init` into a fresh data dir, then `serve` on a free port until healthy: where most e2e tests start. */
export async function initAndServe(t: TestContext, prefix: string): Promise<ServedDataDir> {
  const root = await tempDir(t, prefix);
  const dir = join(root, 'data');
  const init = await kw(['init', '--data-dir', dir, '--json']);
  if (init.code !== 0) throw new Error(`init exited with ${init.code}: ${init.stderr}`);
  const { adminToken } = init.json<{ adminToken: string }>();
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const daemon = await startServe(
    t,
    ['--data-dir', dir, '--listen', `127.0.0.1:${port}`],
    {},
    `${url}/healthz`,
  );
  return {
    root,
    dir,
    url,
    adminToken,
    daemon,
    env: { KEYWRIGHT_DATA_DIR: dir, KEYWRIGHT_TOKEN: adminToken },
  };
}

function probe(url: string): Promise<boolean> {
  // The daemon's certificate is from its own root; health is only a liveness probe, so trust is skipped here.
  const request = url.startsWith('https') ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = request(url, { rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
