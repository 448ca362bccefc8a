/**
 * A real daemon in this process for distribution tests: `init` on a tmp data dir, then `startDaemon`
 * serving HTTPS on 127.0.0.1 with its own certificate from the internal CA. It can be stopped and
 * started again on the same port (an agent must survive that), and `request` speaks HTTPS to it with
 * the internal root as the only trust anchor.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { initDataDir } from '../../../src/app/init.js';
import { startDaemon, type RunningDaemon } from '../../../src/app/daemon.js';
import { parseConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import type { Clock } from '../../../src/core/clock.js';
import { freePort } from '../../helpers/net.js';

export interface TestDaemon {
  readonly dataDir: string;
  readonly url: string;
  readonly port: number;
  /** The internal root, PEM: what clients trust. */
  readonly ca: string;
  readonly adminToken: string;
  readonly config: Config;
  running(): RunningDaemon | undefined;
  stop(): Promise<void>;
  /** Starts it again on the same port and data dir; `clock` replaces the daemon's clock. */
  start(clock?: Clock): Promise<void>;
  call(method: string, path: string, o?: CallOptions): Promise<HttpsResult>;
  /** A token for `role` with `scopes`, made through the API. */
  token(role: string, scopes?: string[]): Promise<string>;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
  cert?: string;
  key?: string;
  /** Abort (e.g. an SSE stream). */
  signal?: AbortSignal;
}

export interface HttpsResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  json: any;
  ms: number;
}

export async function startTestDaemon(
  t: TestContext,
  configExtra: Record<string, unknown> = {},
  o: { clock?: Clock } = {},
): Promise<TestDaemon> {
  // Not tempDir(): its cleanup would run before the daemon's stop (hooks run in order), racing its writes.
  const root = await mkdtemp(join(tmpdir(), 'kw-dist-'));
  const dataDir = join(root, 'data');
  const port = await freePort();
  const config = parseConfig(
    {
      dataDir,
      listen: `127.0.0.1:${port}`,
      log: { level: 'silent' },
      ca: { root: { key: 'ec-p256' } },
      ...configExtra,
    },
    'test',
  );
  const init = await initDataDir({ config, secrets: {}, ...(o.clock ? { clock: o.clock } : {}) });
  const ca = await readFile(init.rootCertificateFile, 'utf8');
  let daemon: RunningDaemon | undefined;
  const url = `https://127.0.0.1:${port}`;
  const d: TestDaemon = {
    dataDir,
    url,
    port,
    ca,
    adminToken: init.adminToken,
    config,
    running: () => daemon,
    async start(clock?: Clock) {
      daemon = await startDaemon({ config, secrets: {}, ...(clock ? { clock } : {}) });
    },
    async stop() {
      const running = daemon;
      daemon = undefined;
      await running?.stop();
    },
    call: (method, path, o = {}) => httpsCall(url, ca, method, path, o),
    async token(role, scopes = []) {
      const r = await d.call('POST', '/v1/tokens', { token: init.adminToken, body: { role, scopes } });
      if (r.status !== 201) throw new Error(`token create ${r.status}: ${r.text}`);
      return r.json.token as string;
    },
  };
  t.after(async () => {
    await d.stop();
    await rm(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  });
  await d.start(o.clock);
  return d;
}

export function httpsCall(
  base: string,
  ca: string,
  method: string,
  path: string,
  o: CallOptions = {},
): Promise<HttpsResult> {
  const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      new URL(path, base),
      {
        method,
        headers,
        ca,
        agent: false,
        ...(o.cert ? { cert: o.cert, key: o.key } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text,
            json,
            ms: performance.now() - started,
          });
        });
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Creates a managed certificate through the API and returns its first version. */
export async function createCertificate(
  d: TestDaemon,
  name: string,
  body: Record<string, unknown> = {},
): Promise<{ version: number; fingerprint: string }> {
  const r = await d.call('POST', '/v1/certificates', {
    token: d.adminToken,
    body: { name, sans: [`${name}.internal`], ttl: '30d', ...body },
  });
  if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${r.text}`);
  return r.json.version;
}

export async function renew(d: TestDaemon, name: string): Promise<{ version: number; fingerprint: string }> {
  const r = await d.call('POST', `/v1/certificates/${name}/renew`, { token: d.adminToken });
  if (r.status !== 200) throw new Error(`renew ${name}: ${r.status} ${r.text}`);
  return r.json.version;
}
