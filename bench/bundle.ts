/**
 * Bundle distribution benchmark. A daemon runs in a child process (`node --import tsx bench/bundle.ts
 * --child`), initialised in a tmp dir, beside a bare node:https server in the same child that answers
 * the very bytes of a bundle pull (same TLS key type, keep-alive, no routing, auth, audit or unsealing).
 * The parent is the load generator, on loopback:
 *
 *   1. bundle pulls per second at 64 concurrent keep-alive clients, with p50/p99: a full pull with the key
 *      (unseal + fsync'd audit entry per export), a conditional pull answered 304 (what a current agent
 *      sends), and the bare server;
 *   2. 1 000 concurrent long-polling clients (`?wait`, If-None-Match) held by the daemon: errors, the
 *      daemon's RSS before and while holding them, and how long after a renewal all 1 000 have the new
 *      version (each of them then is a key export: an unseal and an fsync'd audit entry).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchOptions, BenchResult } from './run.js';
import { requestJson } from './http.js';

const CONCURRENCY = 64;
const LONG_POLLS = 1_000;
const MiB = 1024 * 1024;

interface ChildReady {
  readonly kind: 'ready';
  readonly url: string;
  readonly bareUrl: string;
  readonly ca: string;
  readonly admin: string;
  readonly service: string;
}
type ChildMessage = ChildReady | { kind: 'rss'; rss: number } | { kind: 'renewed'; version: number };

// ---------------------------------------------------------------------------------------------------
// Child: the daemon and the bare server.

async function child(): Promise<void> {
  const { initDataDir } = await import('../src/app/init.js');
  const { startDaemon } = await import('../src/app/daemon.js');
  const { parseConfig } = await import('../src/config/load.js');
  const { readFile } = await import('node:fs/promises');
  const root = await mkdtemp(join(tmpdir(), 'kw-bench-bundle-'));
  const config = parseConfig(
    {
      dataDir: join(root, 'data'),
      listen: '127.0.0.1:0',
      log: { level: 'silent' },
      api: { rateLimit: 100_000_000 },
      ca: { root: { key: 'ec-p256' } },
    },
    'bench',
  );
  const init = await initDataDir({ config, secrets: {} });
  const daemon = await startDaemon({ config, secrets: {} });
  const ca = await readFile(init.rootCertificateFile, 'utf8');
  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const r = await requestJson(daemon.url, method, path, { token, body, ca });
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
    return JSON.parse(r.text) as Record<string, unknown>;
  };
  await call('POST', '/v1/certificates', init.adminToken, { name: 'web', sans: ['web.internal'] });
  await call('POST', '/v1/certificates', init.adminToken, { name: 'bare-tls', sans: ['127.0.0.1'] });
  const tls = await call('GET', '/v1/certificates/bare-tls/bundle', init.adminToken);
  const service = (
    await call('POST', '/v1/tokens', init.adminToken, { role: 'service', scopes: ['cert:web'] })
  ).token as string;
  // The bare server answers what a pull answers: the same JSON bytes, status and content type.
  const pulled = await requestJson(daemon.url, 'GET', '/v1/certificates/web/bundle', { token: service, ca });
  const bytes = Buffer.from(pulled.text);
  const bare = createHttpsServer(
    { key: tls.privateKey as string, cert: tls.fullchain as string, keepAliveTimeout: 60_000 },
    (_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': bytes.length,
      });
      res.end(bytes);
    },
  );
  bare.listen(0, '127.0.0.1');
  await once(bare, 'listening');
  const port = (bare.address() as { port: number }).port;
  const send = (m: ChildMessage) => process.send!(m);
  process.on('message', (m: { kind: string }) => {
    if (m.kind === 'rss') {
      globalThis.gc?.();
      send({ kind: 'rss', rss: process.memoryUsage().rss });
    } else if (m.kind === 'renew') {
      void call('POST', '/v1/certificates/web/renew', init.adminToken).then((r) =>
        send({ kind: 'renewed', version: (r.version as { version: number }).version }),
      );
    } else if (m.kind === 'stop') {
      bare.close();
      void daemon
        .stop()
        .then(() => rm(root, { recursive: true, force: true }))
        .then(() => process.exit(0));
    }
  });
  send({
    kind: 'ready',
    url: daemon.url,
    bareUrl: `https://127.0.0.1:${port}`,
    ca,
    admin: init.adminToken,
    service,
  });
}

// ---------------------------------------------------------------------------------------------------
// Parent: the load.

interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** `CONCURRENCY` clients, each one keep-alive connection, as fast as answers come, for `ms`. */
async function load(
  url: string,
  ca: string,
  headers: Record<string, string>,
  expectStatus: number,
  ms: number,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + ms;
  const started = performance.now();
  const worker = async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca });
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const status = await new Promise<number>((resolve) => {
        const req = request(url, { agent, headers }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', () => resolve(0));
        req.end();
      });
      if (status === expectStatus) latencies.push(performance.now() - t0);
      else errors++;
    }
    agent.destroy();
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return {
    requests: latencies.length,
    errors,
    perSecond: latencies.length / elapsed,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
  };
}

function ask<K extends ChildMessage['kind']>(
  c: ChildProcess,
  message: { kind: string },
  kind: K,
): Promise<Extract<ChildMessage, { kind: K }>> {
  return new Promise((resolve) => {
    const on = (m: ChildMessage) => {
      if (m.kind !== kind) return;
      c.off('message', on);
      resolve(m as Extract<ChildMessage, { kind: K }>);
    };
    c.on('message', on);
    c.send(message);
  });
}

interface LongPollResult {
  readonly clients: number;
  readonly errors: number;
  readonly heldEarly: number;
  readonly rssBeforeMiB: number;
  readonly rssHoldingMiB: number;
  readonly allAnsweredAfterRenewalMs: number;
}

async function longPolls(c: ChildProcess, ready: ChildReady, n: number): Promise<LongPollResult> {
  const base = `${ready.url}/v1/certificates/web/bundle`;
  const etag = await new Promise<string>((resolve, reject) => {
    const req = request(
      base,
      { ca: ready.ca, agent: false, headers: { authorization: `Bearer ${ready.service}` } },
      (res) => {
        res.resume();
        resolve(String(res.headers.etag));
      },
    );
    req.on('error', reject);
    req.end();
  });
  const before = (await ask(c, { kind: 'rss' }, 'rss')).rss;
  let errors = 0;
  let early = 0;
  let renewedAt = Infinity;
  let lastAnswer = 0;
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity, ca: ready.ca });
  const polls = Array.from(
    { length: n },
    () =>
      new Promise<void>((resolve) => {
        const req = request(
          `${base}?wait=120`,
          { agent, headers: { authorization: `Bearer ${ready.service}`, 'if-none-match': etag } },
          (res) => {
            res.resume();
            res.on('end', () => {
              const now = performance.now();
              if (now < renewedAt) early++;
              else if (res.statusCode === 200) lastAnswer = Math.max(lastAnswer, now);
              if (res.statusCode !== 200) errors++;
              resolve();
            });
          },
        );
        req.on('error', () => {
          errors++;
          resolve();
        });
        req.end();
      }),
  );
  // Connections are opened and their TLS handshakes done gradually; give them time to be held.
  await new Promise((r) => setTimeout(r, Math.max(3000, n * 5)));
  const holding = (await ask(c, { kind: 'rss' }, 'rss')).rss;
  renewedAt = performance.now();
  await ask(c, { kind: 'renew' }, 'renewed');
  await Promise.all(polls);
  agent.destroy();
  return {
    clients: n,
    errors,
    heldEarly: early,
    rssBeforeMiB: before / MiB,
    rssHoldingMiB: holding / MiB,
    allAnsweredAfterRenewalMs: lastAnswer - renewedAt,
  };
}

export async function bundleBench(options: BenchOptions): Promise<BenchResult> {
  const seconds = options.quick ? 2 : 10;
  const c = fork(import.meta.filename, ['--child'], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const [ready] = (await once(c, 'message')) as [ChildReady];
    const auth = { authorization: `Bearer ${ready.service}` };
    const bundleUrl = `${ready.url}/v1/certificates/web/bundle`;
    // Long polls first, so the idle RSS is that of a fresh daemon, not of one after the load phases.
    const held = await longPolls(c, ready, options.quick ? 100 : LONG_POLLS);
    // The ETag of the version the long polls ended on (they renewed it).
    const etag = await new Promise<string>((resolve, reject) => {
      const req = request(bundleUrl, { ca: ready.ca, agent: false, headers: auth }, (res) => {
        res.resume();
        resolve(String(res.headers.etag));
      });
      req.on('error', reject);
      req.end();
    });
    await load(ready.bareUrl, ready.ca, {}, 200, 1000); // warm-up both sides
    await load(bundleUrl, ready.ca, auth, 200, 1000);
    const bare = await load(ready.bareUrl, ready.ca, {}, 200, seconds * 1000);
    const full = await load(bundleUrl, ready.ca, auth, 200, seconds * 1000);
    const notModified = await load(
      bundleUrl,
      ready.ca,
      { ...auth, 'if-none-match': etag },
      304,
      seconds * 1000,
    );

    const row = (name: string, r: LoadResult) =>
      `| ${name} | ${r.perSecond.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.errors} | ${(r.perSecond / bare.perSecond).toFixed(2)} |`;
    const table = [
      `bundle pulls over HTTPS on loopback, ${CONCURRENCY} keep-alive clients, ${seconds} s each`,
      '',
      '| server | req/s | p50 ms | p99 ms | errors | × bare |',
      '|---|---|---|---|---|---|',
      row('bare node:https, same bytes', bare),
      row('daemon: pull with key (unseal + audit entry written)', full),
      row('daemon: If-None-Match → 304', notModified),
      '',
      `${held.clients} concurrent long polls (?wait=120): ${held.errors} errors, ${held.heldEarly} answered before the renewal;` +
        ` daemon RSS ${held.rssBeforeMiB.toFixed(0)} MiB idle → ${held.rssHoldingMiB.toFixed(0)} MiB holding them` +
        ` (${(((held.rssHoldingMiB - held.rssBeforeMiB) * 1024) / held.clients).toFixed(1)} KiB each);` +
        ` all had the new version ${held.allAnsweredAfterRenewalMs.toFixed(0)} ms after the renewal was requested`,
    ].join('\n');
    return { table, json: { concurrency: CONCURRENCY, seconds, bare, full, notModified, longPolls: held } };
  } finally {
    c.send({ kind: 'stop' });
    await once(c, 'exit');
  }
}

if (process.argv.includes('--child')) await child();
