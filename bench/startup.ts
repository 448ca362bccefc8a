/**
 * Start-up benchmark (issue 8, goal 6): "start-up with 10k certificates ≤ 2 s; time from `npm start` on a
 * fresh checkout to a first issued certificate".
 *
 *   1. Start-up of the BUILT CLI (`node bin/keywright.js serve --config <file>`, as a user runs it) on a
 *      data dir holding 1k and 10k managed certificates: from the spawn to `GET /readyz` answering 200
 *      over HTTPS (trusting the data dir's ca.pem), and the daemon's RSS then and 2 s later (the start-up
 *      sweeps run after it is ready). The certificates are real: created in this process through the
 *      services the daemon builds (`openServices` + `buildUnsealedServices`, then `CertificateService.create`
 *      as POST /v1/certificates runs it), so each has a P-256 key sealed under the KEK, a signed
 *      certificate, a version record, chain and key blobs and its audit entries. One data dir grows from
 *      1k to 10k. Baselines in the same run: a bare `node -e` HTTP server (node's own start-up floor) and
 *      the same serve on an empty (just initialized) data dir.
 *   2. A fresh checkout: `git clone` of the committed HEAD, `npm ci` (which builds, through `prepare`),
 *      then `npm start -- --listen 127.0.0.1:<free port>` (builds only if dist is older than src,
 *      `serve --init` prints the admin token once) until /readyz answers and POST /v1/certificates
 *      answers 201.
 *
 * KW_BENCH_CPU_PROF=<dir> writes a CPU profile of every start (where the start-up time goes; it adds overhead).
 * Every process started here is stopped here (SIGTERM, then waited for); only 127.0.0.1 and free ports.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import type { BenchOptions, BenchResult } from './run.js';
import { freePort } from '../test/helpers/net.js';
import { spread, type Spread } from './stats.js';

const REPO = resolve(import.meta.dirname, '..');
const BIN = join(REPO, 'bin', 'keywright.js');
const GOAL_MS = 2000;
const MiB = 1024 * 1024;
/** Concurrent creations while populating: enough for the store's group commit to batch fsyncs. */
const POPULATE_CONCURRENCY = 32;
const POLL_MS = 5;
const run = promisify(execFile);

interface Plan {
  readonly sizes: readonly number[];
  /** Measured starts per case, after one unmeasured warm-up start. */
  readonly runs: number;
  /** Fresh clones for part 2. */
  readonly clones: number;
  /** How long after ready the RSS is read again (the start-up sweeps run then). */
  readonly settleMs: number;
}
const FULL: Plan = { sizes: [1_000, 10_000], runs: 3, clones: 3, settleMs: 2000 };
// --quick leaves out the fresh clone: its npm ci alone takes 15–30 s
const QUICK: Plan = { sizes: [1_000], runs: 1, clones: 0, settleMs: 1000 };

// ---------------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => console.error(`  ${msg}`);
/** Output shown in an error message never carries the admin token `serve --init` prints. */
const redact = (text: string) => text.replace(/(admin token: )\S+/g, '$1<redacted>').slice(-3000);

/** A child environment without the npm_* variables of the `npm run bench` around us, nor KEYWRIGHT_*. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('npm_') || k.startsWith('KEYWRIGHT_') || k === 'INIT_CWD' || k === 'NODE_OPTIONS')
      continue;
    env[k] = v;
  }
  env.PATH = (process.env.PATH ?? '/usr/bin:/bin')
    .split(':')
    .filter((p) => !p.includes('node_modules/.bin'))
    .join(':');
  return { ...env, ...extra };
}

/** VmRSS and VmHWM of a process, in MiB (Linux); NaN where /proc is not there. */
async function memoryOf(pid: number): Promise<{ rss: number; hwm: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: (kib('VmRSS') * 1024) / MiB, hwm: (kib('VmHWM') * 1024) / MiB };
}

/** One request on a fresh connection; HTTPS trusts `ca` only (never rejectUnauthorized: false). */
function call(
  url: string,
  options: { method?: string; ca?: string; token?: string; body?: unknown } = {},
): Promise<{ status: number; text: string }> {
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((done, fail) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        agent: false,
        timeout: 5000,
        ...(options.ca ? { ca: options.ca } : {}),
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => done({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', fail);
    req.end(payload);
  });
}

/** Polls `url` until it answers 200; fails when `proc` exits first or after `timeoutMs`. */
async function waitOk(
  url: string,
  proc: ChildProcess,
  output: () => string,
  options: { ca?: () => Promise<string | undefined>; timeoutMs: number; what: string },
): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  let last = '';
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`${options.what} exited (${proc.exitCode ?? proc.signalCode}):\n${redact(output())}`);
    const ca = options.ca ? await options.ca() : undefined;
    if (!options.ca || ca !== undefined) {
      const r = await call(url, ca ? { ca } : {}).catch((e: Error) => ({ status: 0, text: e.message }));
      if (r.status === 200) return;
      last = `${r.status} ${r.text.slice(0, 200)}`;
    }
    if (performance.now() > deadline)
      throw new Error(`${options.what}: ${url} not 200 within ${options.timeoutMs} ms (last: ${last})`);
    await sleep(POLL_MS);
  }
}

/** SIGTERM (to the process group when `group`), wait for the exit; SIGKILL after 15 s. */
async function stop(proc: ChildProcess, group = false): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
  const exited = once(proc, 'exit') as Promise<[number | null, string | null]>;
  const kill = (signal: NodeJS.Signals) => {
    try {
      if (group && proc.pid !== undefined) process.kill(-proc.pid, signal);
      else proc.kill(signal);
    } catch {
      // gone already
    }
  };
  kill('SIGTERM');
  const timer = setTimeout(() => kill('SIGKILL'), 15_000);
  const [code] = await exited;
  clearTimeout(timer);
  return code;
}

function capture(proc: ChildProcess): () => string {
  let out = '';
  const add = (d: Buffer) => (out = (out + d.toString()).slice(-200_000));
  proc.stdout?.on('data', add);
  proc.stderr?.on('data', add);
  return () => out;
}

// ---------------------------------------------------------------------------------------------------
// Part 1: start-up of the built CLI

async function newestMtime(dir: string): Promise<number> {
  let max = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) max = Math.max(max, (await stat(join(e.parentPath, e.name))).mtimeMs);
  }
  return max;
}

/** Builds dist when a source file is newer than dist/main.js (the CLI runs the compiled code). */
async function ensureBuilt(): Promise<boolean> {
  const built = await stat(join(REPO, 'dist', 'main.js')).catch(() => undefined);
  if (built !== undefined && (await newestMtime(join(REPO, 'src'))) <= built.mtimeMs) return false;
  log('dist is stale: npm run build');
  await run('npm', ['run', '-s', 'build'], { cwd: REPO, env: cleanEnv() }).catch(
    (e: { stdout?: string; stderr?: string }) => {
      throw new Error(`npm run build failed:\n${(e.stdout ?? '') + (e.stderr ?? '')}`);
    },
  );
  return true;
}

/** Plain config: defaults (file master key, TLS on, info logs) plus the data dir and a free port. */
async function writeConfig(file: string, dataDir: string): Promise<void> {
  const port = await freePort();
  await writeFile(file, `dataDir: ${JSON.stringify(dataDir)}\nlisten: "127.0.0.1:${port}"\n`);
}

async function initData(dataDir: string): Promise<void> {
  const { initDataDir } = await import('../src/app/init.js');
  const { parseConfig } = await import('../src/config/load.js');
  await initDataDir({ config: parseConfig({ dataDir, log: { level: 'silent' } }, 'bench'), secrets: {} });
}

/** Creates certificates svc-<from> … svc-<to - 1> through the daemon's own services; returns per second. */
async function populate(dataDir: string, from: number, to: number): Promise<number> {
  const { parseConfig } = await import('../src/config/load.js');
  const { openServices, openSealer } = await import('../src/app/services.js');
  const { buildUnsealedServices } = await import('../src/app/unsealed.js');
  const { systemClock } = await import('../src/core/clock.js');
  const { silentLogger } = await import('../src/core/logger.js');
  const config = parseConfig({ dataDir, log: { level: 'silent' } }, 'bench');
  const services = await openServices(config, systemClock, silentLogger);
  const started = performance.now();
  try {
    const sealer = await openSealer(config, {});
    const { certificates } = buildUnsealedServices({
      config,
      store: services.store,
      sealer,
      audit: services.audit,
      clock: systemClock,
      logger: silentLogger,
    });
    const ctx = { clock: systemClock, logger: silentLogger, actor: 'cli:bench' };
    let next = from;
    let lastLog = performance.now();
    const worker = async () => {
      while (next < to) {
        const i = next++;
        const name = `svc-${String(i).padStart(6, '0')}`;
        await certificates.create(
          name,
          {
            issuer: 'ca:default',
            sans: [`${name}.internal.example`, name, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`],
            keyType: 'ec-p256',
            lifetimeMs: 90 * 86_400_000,
            keyRotation: 'always',
          },
          { source: 'api' },
          ctx,
        );
        if (performance.now() - lastLog > 15_000) {
          lastLog = performance.now();
          log(`populating: ${next - from}/${to - from}`);
        }
      }
    };
    await Promise.all(Array.from({ length: POPULATE_CONCURRENCY }, worker));
  } finally {
    await services.close();
  }
  return ((to - from) * 1000) / (performance.now() - started);
}

interface StartFigures {
  readyMs: number;
  rssReadyMiB: number;
  rssSettledMiB: number;
  peakRssMiB: number;
}

/** Spawn → 200 on `path`, then the process's memory at once and `settleMs` later; stops it. */
async function timeStart(
  argv: readonly string[],
  url: () => string,
  ca: string | undefined,
  what: string,
  settleMs: number,
): Promise<StartFigures> {
  const profile = process.env.KW_BENCH_CPU_PROF;
  const t0 = performance.now();
  const proc = spawn(
    process.execPath,
    [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []), ...argv],
    {
      cwd: REPO,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const output = capture(proc);
  try {
    await waitOk(url(), proc, output, {
      ...(ca ? { ca: () => Promise.resolve(ca) } : {}),
      timeoutMs: 60_000,
      what,
    });
    const readyMs = performance.now() - t0;
    const atReady = await memoryOf(proc.pid!);
    await sleep(settleMs);
    const settled = await memoryOf(proc.pid!);
    return { readyMs, rssReadyMiB: atReady.rss, rssSettledMiB: settled.rss, peakRssMiB: settled.hwm };
  } finally {
    const code = await stop(proc);
    if (code !== 0 && code !== null) log(`${what} exited ${code} on SIGTERM:\n${redact(output())}`);
  }
}

async function timeServe(root: string, dataDir: string, settleMs: number): Promise<StartFigures> {
  const file = join(root, 'keywright.yaml');
  await writeConfig(file, dataDir);
  const listen = /listen: "([^"]+)"/.exec(await readFile(file, 'utf8'))![1]!;
  const ca = await readFile(join(dataDir, 'ca.pem'), 'utf8');
  return timeStart(
    [BIN, 'serve', '--config', file],
    () => `https://${listen}/readyz`,
    ca,
    'keywright serve',
    settleMs,
  );
}

async function timeBareNode(settleMs: number): Promise<StartFigures> {
  const port = await freePort();
  const script = `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`;
  return timeStart(['-e', script], () => `http://127.0.0.1:${port}/`, undefined, 'bare node', settleMs);
}

/** Node plus the app layer's modules (fastify, lowdb, the PKI stack …) loaded, then the same bare server. */
async function timeModulesOnly(settleMs: number): Promise<StartFigures> {
  const port = await freePort();
  const app = pathToFileURL(join(REPO, 'dist', 'app', 'index.js')).href;
  const script = `await import(${JSON.stringify(app)}); (await import('node:http')).createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`;
  return timeStart(
    ['--input-type=module', '-e', script],
    () => `http://127.0.0.1:${port}/`,
    undefined,
    'modules only',
    settleMs,
  );
}

interface StartRow {
  readonly kind: 'bare-node' | 'modules' | 'serve';
  readonly certificates: number | null;
  /** The unmeasured warm-up start: for serve on a new data dir it issues the daemon's TLS certificate. */
  readonly firstStart: StartFigures;
  readonly runs: StartFigures[];
  readonly summary: Record<keyof StartFigures, Spread>;
  readonly storeMiB?: number;
  readonly dataDirMiB?: number;
  readonly populatePerSecond?: number;
}

async function measureStarts(
  plan: Plan,
  kind: StartRow['kind'],
  certificates: number | null,
  start: (settleMs: number) => Promise<StartFigures>,
): Promise<Pick<StartRow, 'kind' | 'certificates' | 'firstStart' | 'runs' | 'summary'>> {
  const firstStart = await start(plan.settleMs);
  const runs: StartFigures[] = [];
  for (let r = 0; r < plan.runs; r++) {
    runs.push(await start(plan.settleMs));
    log(
      `${kind} ${certificates ?? ''} run ${r + 1}/${plan.runs}: ready in ${runs.at(-1)!.readyMs.toFixed(0)} ms`,
    );
  }
  const keys = Object.keys(firstStart) as (keyof StartFigures)[];
  const summary = Object.fromEntries(keys.map((k) => [k, spread(runs.map((x) => x[k]))])) as Record<
    keyof StartFigures,
    Spread
  >;
  return { kind, certificates, firstStart, runs, summary };
}

async function duMiB(path: string): Promise<number> {
  const { stdout } = await run('du', ['-sb', path]);
  return Number(stdout.split('\t')[0]) / MiB;
}

/** The store's document and its journal, if any (blobs are files of their own). */
async function storeMiB(dataDir: string): Promise<number> {
  let bytes = 0;
  for (const name of await readdir(dataDir)) {
    if (/^keywright\.(json|journal)$/.test(name)) bytes += (await stat(join(dataDir, name))).size;
  }
  return bytes / MiB;
}

async function startupRows(plan: Plan, root: string): Promise<StartRow[]> {
  const rows: StartRow[] = [];
  rows.push(await measureStarts(plan, 'bare-node', null, timeBareNode));
  rows.push(await measureStarts(plan, 'modules', null, timeModulesOnly));

  const empty = join(root, 'empty');
  await initData(empty);
  rows.push({ ...(await measureStarts(plan, 'serve', 0, (settleMs) => timeServe(root, empty, settleMs))) });
  await rm(empty, { recursive: true, force: true });

  const data = join(root, 'data');
  await initData(data);
  let have = 0;
  for (const size of plan.sizes) {
    const t = performance.now();
    const perSecond = await populate(data, have, size);
    log(
      `populated ${have} → ${size} certificates in ${((performance.now() - t) / 1000).toFixed(1)} s (${perSecond.toFixed(0)}/s)`,
    );
    have = size;
    rows.push({
      ...(await measureStarts(plan, 'serve', size, (settleMs) => timeServe(root, data, settleMs))),
      storeMiB: await storeMiB(data),
      dataDirMiB: await duMiB(data),
      populatePerSecond: perSecond,
    });
  }
  await rm(data, { recursive: true, force: true });
  return rows;
}

// ---------------------------------------------------------------------------------------------------
// Part 2: fresh checkout → npm ci → npm start → first certificate

interface CheckoutFigures {
  cloneS: number;
  npmCiS: number;
  /** `npm start` → its tsc build done (the newest file it wrote under dist/). */
  buildS: number;
  /** `npm start` → the admin token printed: build + node start + init. */
  initS: number;
  readyS: number;
  firstCertS: number;
  daemonRssMiB: number;
}

async function runNpmCi(dir: string): Promise<{ seconds: number; mode: string } | string> {
  const attempts: [string, string[]][] = [
    ['--prefer-offline', ['ci', '--prefer-offline', '--no-audit', '--no-fund']],
    ['--offline', ['ci', '--offline', '--no-audit', '--no-fund']],
  ];
  let lastError = '';
  for (const [mode, args] of attempts) {
    const t = performance.now();
    const ok = await run('npm', args, { cwd: dir, env: cleanEnv(), maxBuffer: 64 * MiB }).then(
      () => true,
      (e: { stderr?: string }) => {
        lastError = (e.stderr ?? '').trim().split('\n').slice(-5).join(' | ');
        return false;
      },
    );
    if (ok) return { seconds: (performance.now() - t) / 1000, mode };
    log(`npm ci ${mode} failed: ${lastError}`);
    await rm(join(dir, 'node_modules'), { recursive: true, force: true });
  }
  return `npm ci failed online (--prefer-offline) and from the cache (--offline): ${lastError}`;
}

async function freshCheckout(root: string, i: number): Promise<CheckoutFigures | string> {
  const dir = join(root, `kw-${i}`);
  try {
    let t = performance.now();
    await run('git', ['clone', '-q', REPO, dir]);
    const cloneS = (performance.now() - t) / 1000;
    const ci = await runNpmCi(dir);
    if (typeof ci === 'string') return ci;
    log(`clone ${i + 1}: git clone ${cloneS.toFixed(1)} s, npm ci ${ci.mode} ${ci.seconds.toFixed(1)} s`);

    const port = await freePort();
    const base = `https://127.0.0.1:${port}`;
    const dataDir = join(dir, 'data');
    t = performance.now();
    const wallStart = Date.now();
    // Its own process group: npm → sh → node, and SIGTERM must reach the daemon, not just npm.
    const proc = spawn('npm', ['start', '--', '--listen', `127.0.0.1:${port}`], {
      cwd: dir,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const output = capture(proc);
    let daemonPid: number | undefined;
    try {
      let token: string | undefined;
      for (;;) {
        token = /admin token: (\S+)/.exec(output())?.[1];
        if (token !== undefined) break;
        if (proc.exitCode !== null)
          throw new Error(`npm start exited ${proc.exitCode}:\n${redact(output())}`);
        if (performance.now() - t > 180_000) throw new Error(`npm start printed no admin token in 180 s`);
        await sleep(POLL_MS);
      }
      const initS = (performance.now() - t) / 1000;
      let ca: string | undefined;
      await waitOk(`${base}/readyz`, proc, output, {
        ca: async () => (ca ??= await readFile(join(dataDir, 'ca.pem'), 'utf8').catch(() => undefined)),
        timeoutMs: 60_000,
        what: 'npm start',
      });
      const readyS = (performance.now() - t) / 1000;
      let first = { status: 0, text: '' };
      for (let attempt = 0; attempt < 5 && first.status !== 201; attempt++) {
        first = await call(`${base}/v1/certificates`, {
          method: 'POST',
          ca: ca!,
          token,
          body: { name: 'first', sans: ['first.internal.example'] },
        }).catch((e: Error) => ({ status: 0, text: e.message }));
        if (first.status !== 201) await sleep(100);
      }
      if (first.status !== 201)
        throw new Error(`POST /v1/certificates: ${first.status} ${first.text.slice(0, 300)}`);
      const firstCertS = (performance.now() - t) / 1000;
      const info = JSON.parse(await readFile(join(dataDir, 'daemon.json'), 'utf8')) as { pid: number };
      daemonPid = info.pid;
      const mem = await memoryOf(daemonPid);
      // 0 when npm start found dist up to date (built by npm ci's prepare) and built nothing
      const buildS = Math.max(0, ((await newestMtime(join(dir, 'dist'))) - wallStart) / 1000);
      return { cloneS, npmCiS: ci.seconds, buildS, initS, readyS, firstCertS, daemonRssMiB: mem.rss };
    } finally {
      await stop(proc, true);
      for (let w = 0; daemonPid !== undefined && w < 100 && existsSync(`/proc/${daemonPid}`); w++)
        await sleep(100);
      if (daemonPid !== undefined && existsSync(`/proc/${daemonPid}`)) {
        log(`daemon ${daemonPid} still running 10 s after SIGTERM: killing it`);
        process.kill(daemonPid, 'SIGKILL');
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
}

// ---------------------------------------------------------------------------------------------------
// Orchestration and report

export async function startupBench(options: BenchOptions): Promise<BenchResult> {
  const plan = options.quick ? QUICK : FULL;
  const loadBefore = loadavg()[0]!;
  const rebuilt = await ensureBuilt();
  const root = await mkdtemp(join(tmpdir(), 'kw-bench-startup-'));
  let starts: StartRow[];
  const checkouts: CheckoutFigures[] = [];
  let skipped: string | undefined =
    plan.clones === 0 ? 'not in --quick: npm ci takes 15–30 s; the full run measures it' : undefined;
  try {
    starts = await startupRows(plan, root);
    for (let i = 0; i < plan.clones && skipped === undefined; i++) {
      const r = await freshCheckout(root, i);
      if (typeof r === 'string') skipped = r;
      else {
        checkouts.push(r);
        log(
          `clone ${i + 1}/${plan.clones}: ${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 100) / 100 : v))}`,
        );
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
  const checkout =
    checkouts.length === 0
      ? null
      : (Object.fromEntries(
          (Object.keys(checkouts[0]!) as (keyof CheckoutFigures)[]).map((k) => [
            k,
            spread(checkouts.map((c) => c[k])),
          ]),
        ) as Record<keyof CheckoutFigures, Spread>);
  const env = { cpus: availableParallelism(), loadBefore, loadAfter: loadavg()[0]!, rebuilt };
  return {
    table: render(plan, starts, checkout, skipped, env),
    json: { plan, goalMs: GOAL_MS, env, starts, checkouts, checkout, ...(skipped ? { skipped } : {}) },
  };
}

function render(
  plan: Plan,
  starts: StartRow[],
  checkout: Record<keyof CheckoutFigures, Spread> | null,
  skipped: string | undefined,
  env: { cpus: number; loadBefore: number; loadAfter: number },
): string {
  const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  const cell = (s: Spread, scale = 1) =>
    plan.runs === 1 && s.min === s.max
      ? fmt(s.median * scale)
      : `${fmt(s.median * scale)} (${fmt(s.min * scale)}–${fmt(s.max * scale)})`;
  const signed = (n: number) => `${n < 0 ? '−' : '+'}${fmt(Math.abs(n))}`;
  const emptyRow = starts.find((r) => r.kind === 'serve' && r.certificates === 0);
  const table = (header: string[], rows: string[][]) => {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
    return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
  };
  const startTable = table(
    [
      'process',
      'certificates',
      'spawn → ready ms',
      'first start ms',
      'RSS ready MiB',
      `RSS +${plan.settleMs / 1000} s MiB`,
      'peak RSS MiB',
      '÷ 2 s goal',
      '− empty ms',
      'store doc MiB',
    ],
    starts.map((r) => [
      {
        'bare-node': 'bare node -e http server',
        modules: 'node + import dist/app',
        serve: 'keywright serve',
      }[r.kind],
      r.certificates === null ? '–' : String(r.certificates),
      cell(r.summary.readyMs),
      fmt(r.firstStart.readyMs),
      cell(r.summary.rssReadyMiB),
      cell(r.summary.rssSettledMiB),
      cell(r.summary.peakRssMiB),
      r.kind === 'serve' ? `${(r.summary.readyMs.median / GOAL_MS).toFixed(2)}×` : '–',
      r.kind === 'serve' && emptyRow !== undefined && r !== emptyRow
        ? signed(r.summary.readyMs.median - emptyRow.summary.readyMs.median)
        : '–',
      r.storeMiB === undefined ? '–' : fmt(r.storeMiB),
    ]),
  );
  const checkoutTable =
    checkout === null
      ? `fresh checkout: skipped (${skipped ?? 'no result'})`
      : table(
          ['fresh checkout step', `seconds, median (min–max) of ${plan.clones}`],
          [
            ['git clone -q (local, committed HEAD)', cell(checkout.cloneS)],
            ['npm ci --prefer-offline (incl. prepare = tsc build)', cell(checkout.npmCiS)],
            ['npm start → its tsc build done (newest dist file; 0 = none)', cell(checkout.buildS)],
            ['npm start → admin token printed (build + init)', cell(checkout.initS)],
            ['npm start → GET /readyz 200', cell(checkout.readyS)],
            ['npm start → POST /v1/certificates 201', cell(checkout.firstCertS)],
            ['daemon RSS after the first certificate, MiB', cell(checkout.daemonRssMiB)],
          ],
        );
  const largest = starts.at(-1)!;
  const notes = [
    `median (min–max) over ${plan.runs} measured start(s) per row, after one unmeasured warm-up start ("first start": on a new data dir that one also issues the daemon's TLS certificate); warm page cache (caches are not dropped)`,
    `spawn → ready = from spawn(node bin/keywright.js serve --config f) to GET /readyz 200 over HTTPS trusting the data dir's ca.pem (a new TLS connection per ${POLL_MS} ms poll); the bare-node baseline answers plain HTTP GET / (no TLS, no modules): node's own floor; "node + import dist/app" first imports the app layer's modules (what serve loads before it opens anything), then answers the same way`,
    `certificates are real: P-256 keys sealed under the file KEK, issued by the default CA through CertificateService.create (${POPULATE_CONCURRENCY} at a time), each with a version, chain and key blobs and audit entries; ${starts
      .filter((r) => r.populatePerSecond !== undefined)
      .map(
        (r) =>
          `populated to ${r.certificates} at ${r.populatePerSecond!.toFixed(0)}/s, data dir ${fmt(r.dataDirMiB!)} MiB`,
      )
      .join('; ')}`,
    `goal: start-up with 10k certificates ≤ ${GOAL_MS} ms — at ${largest.certificates}: ${fmt(largest.summary.readyMs.median)} ms, ${largest.summary.readyMs.median <= GOAL_MS ? 'met' : 'MISSED'}${largest.certificates === 10_000 ? '' : ' (10k is measured by the full run)'}`,
    'fresh checkout: a new local clone each time, npm ci from the npm cache where it has the packages, then npm start (default config: ./data, file master key, HTTPS) with --listen on a free port; the first certificate is POST /v1/certificates {name, sans} with the printed admin token, trusting data/ca.pem',
    `machine: ${env.cpus} CPUs shared with other work; 1-min load ${env.loadBefore.toFixed(2)} before, ${env.loadAfter.toFixed(2)} after`,
  ];
  return [startTable, '', checkoutTable, '', ...notes].join('\n');
}
