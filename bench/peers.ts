/**
 * Same-run peer baselines for issue 8, over plain HTTP on loopback (the daemon with `tls.enabled: false`,
 * which it allows on loopback only), each server pinned to CPU 0 and the load generator (this process)
 * to CPU 1 when the machine has two cores:
 *
 *   1. CSR signing and key + certificate against CFSSL (`cfssl serve`, Debian golang-cfssl, installed
 *      with apt-get when missing and we are root, else skipped), P-256 CA both sides, 16 keep-alive
 *      clients: `POST /api/v1/cfssl/sign` vs `POST /v1/cas/default/sign` (admin token), and
 *      `POST /api/v1/cfssl/newcert` vs `POST /v1/cas/default/issue` (key and certificate returned once,
 *      like newcert) and vs `POST /v1/certificates` (a managed certificate: key sealed and stored, a
 *      fresh name per request);
 *   2. bundle pulls against nginx (1 worker) serving the very bytes of the pull as a static file, 64
 *      clients: `GET /v1/certificates/web/bundle?format=pem` with a service token.
 *
 * The daemon runs in a child of this process (`--child`, `initDataDir` + `startDaemon`, as the
 * distribution tests do), not in the bench process itself: a load generator sharing the daemon's event
 * loop would be measured along with it, and pinning needs a separate process. The work differs where
 * the products differ, and the notes say so: keywright commits every issuance to its store and its
 * fsync'd audit log and every key export to the audit log; cfssl runs without `-db-config` (nothing
 * persisted) and nginx sends a file from the page cache.
 */
import { execFile, execFileSync, fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createPublicKey, sign, verify } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { buildCsr, csrToPem } from '../src/pki/csr.js';
import type { BenchOptions, BenchResult } from './run.js';
import { requestJson } from './http.js';
import { freePort } from '../test/helpers/net.js';
import { generateKeyPairSync } from '../test/helpers/keys.js';
import { spread, which, type Spread } from './stats.js';

const SANS = ['svc.internal.example', 'svc', '10.1.2.3'];
const CA_CLIENTS = 16;
const BUNDLE_CLIENTS = 64;

interface Plan {
  readonly samples: number;
  readonly sampleMs: number;
  readonly warmupMs: number;
}
const FULL: Plan = { samples: 3, sampleMs: 8000, warmupMs: 2000 };
const QUICK: Plan = { samples: 1, sampleMs: 800, warmupMs: 300 };

// ---------------------------------------------------------------------------------------------------
// Child: the daemon.

interface ChildReady {
  readonly kind: 'ready';
  readonly url: string;
  readonly admin: string;
  readonly service: string;
  readonly bundlePem: string;
}

async function child(): Promise<void> {
  const { initDataDir } = await import('../src/app/init.js');
  const { startDaemon } = await import('../src/app/daemon.js');
  const { parseConfig } = await import('../src/config/load.js');
  const root = await mkdtemp(join(tmpdir(), 'kw-bench-peers-'));
  const config = parseConfig(
    {
      dataDir: join(root, 'data'),
      listen: `127.0.0.1:${await freePort()}`,
      tls: { enabled: false },
      log: { level: 'silent' },
      api: { rateLimit: 100_000_000 },
      ca: { root: { key: 'ec-p256' } },
    },
    'bench',
  );
  const init = await initDataDir({ config, secrets: {} });
  const daemon = await startDaemon({ config, secrets: {} });
  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const r = await requestJson(daemon.url, method, path, { token, body });
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
    return r.text;
  };
  await call('POST', '/v1/certificates', init.adminToken, { name: 'web', sans: SANS });
  const service = (
    JSON.parse(
      await call('POST', '/v1/tokens', init.adminToken, { role: 'service', scopes: ['cert:web'] }),
    ) as { token: string }
  ).token;
  const bundlePem = await call('GET', '/v1/certificates/web/bundle?format=pem', service);
  process.on('message', (m: { kind: string }) => {
    if (m.kind !== 'stop') return;
    void daemon
      .stop()
      .then(() => rm(root, { recursive: true, force: true }))
      .then(() => process.exit(0));
  });
  const ready: ChildReady = { kind: 'ready', url: daemon.url, admin: init.adminToken, service, bundlePem };
  process.send!(ready);
}

// ---------------------------------------------------------------------------------------------------
// Parent: peers, pinning and load.

interface Load {
  readonly perSecond: number;
  /** Answers per CPU-second the server spent (all its threads and child processes): per-core cost. */
  readonly perCpuSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

interface Target {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers: Record<string, string>;
  readonly expect: number;
  /** A fresh body per request (fresh names for newcert). */
  readonly body?: () => string;
  /** The server process, whose CPU time is read from /proc. */
  readonly pid?: number;
}

const execFileAsync = promisify(execFile);

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system, all threads) of `pid` and its child processes (nginx's worker), from /proc. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const read = (p: string): number => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime (fields 14, 15)
    } catch {
      return 0;
    }
  };
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    // no children file: count the process alone
  }
  return read(String(pid)) + children.reduce((sum, c) => sum + read(c), 0);
}

/** `clients` keep-alive connections, each sending as fast as answers come, for `ms`. */
async function load(t: Target, clients: number, ms: number): Promise<Load> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError = '';
  const started = performance.now();
  const cpuBefore = cpuSeconds(t.pid);
  const deadline = started + ms;
  const worker = async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    while (performance.now() < deadline) {
      const payload = t.body ? Buffer.from(t.body()) : undefined;
      const t0 = performance.now();
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve) => {
        const req = request(
          t.url,
          {
            method: t.method,
            agent,
            headers: {
              ...t.headers,
              ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
            },
          },
          (res) => {
            let body = '';
            if (res.statusCode !== t.expect) res.on('data', (c: Buffer) => (body += c.toString()));
            else res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text: body }));
          },
        );
        req.on('error', (e) => resolve({ status: 0, text: e.message }));
        req.end(payload);
      });
      if (status === t.expect) latencies.push(performance.now() - t0);
      else {
        errors++;
        firstError ||= `${status} ${text.slice(0, 200)}`;
      }
    }
    agent.destroy();
  };
  await Promise.all(Array.from({ length: clients }, worker));
  const elapsed = (performance.now() - started) / 1000;
  const cpu = cpuSeconds(t.pid) - cpuBefore;
  if (errors > 0) console.error(`  ${errors} errors from ${t.url}; first: ${firstError}`);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return {
    perSecond: latencies.length / elapsed,
    perCpuSecond: latencies.length / cpu,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    errors,
  };
}

interface Side {
  readonly perSecond: Spread;
  readonly perCpuSecond: Spread;
  readonly p50Ms: Spread;
  readonly p99Ms: Spread;
  readonly errors: number;
}
interface Row {
  readonly figure: string;
  readonly clients: number;
  readonly keywright: Side;
  readonly peerName: string;
  readonly peer: Side | null;
  readonly skipped?: string;
}

type Loader = (t: Target, clients: number, ms: number) => Promise<Load>;

/**
 * wrk (C, one thread, pinned where this process is) as the load generator, for GETs: this process's one
 * event loop tops out near 10k answers a second, far below what nginx serves, so with it the nginx
 * figure is the generator's. Whole seconds only (wrk's -d).
 */
function wrkLoader(bin: string): Loader {
  const ms = (value: string, unit: string) =>
    Number(value) * ({ us: 0.001, ms: 1, s: 1000, m: 60_000 } as Record<string, number>)[unit]!;
  return async (t, clients, durationMs) => {
    const headers = Object.entries(t.headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
    const seconds = Math.max(1, Math.round(durationMs / 1000));
    const cpuBefore = cpuSeconds(t.pid);
    const { stdout } = await execFileAsync(
      bin,
      ['-t1', `-c${clients}`, `-d${seconds}s`, '--latency', ...headers, t.url],
      { encoding: 'utf8' },
    );
    const cpu = cpuSeconds(t.pid) - cpuBefore;
    const latency = (pct: string) => {
      const m = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s|m)$`, 'm').exec(stdout);
      return m ? ms(m[1]!, m[2]!) : NaN;
    };
    const done = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(stdout);
    const requests = done ? Number(done[1]) : 0;
    const elapsedS = done ? ms(done[2]!, done[3]!) / 1000 : seconds;
    const bad = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
    const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    const errors = bad + (socket ? socket.slice(1).reduce((n, x) => n + Number(x), 0) : 0);
    if (errors > 0) console.error(`  ${errors} errors from ${t.url} (wrk)`);
    return {
      perSecond: (requests - bad) / elapsedS,
      perCpuSecond: (requests - bad) / cpu,
      p50Ms: latency('50'),
      p99Ms: latency('99'),
      errors,
    };
  };
}

/** Warm both up, then alternate their samples so that drifting machine noise hits both alike. */
async function compare(plan: Plan, clients: number, kw: Target, peer: Target | null, run: Loader = load) {
  await run(kw, clients, plan.warmupMs);
  if (peer) await run(peer, clients, plan.warmupMs);
  const a: Load[] = [];
  const b: Load[] = [];
  for (let i = 0; i < plan.samples; i++) {
    a.push(await run(kw, clients, plan.sampleMs));
    if (peer) b.push(await run(peer, clients, plan.sampleMs));
  }
  const side = (l: Load[]): Side => ({
    perSecond: spread(l.map((x) => x.perSecond)),
    perCpuSecond: spread(l.map((x) => x.perCpuSecond)),
    p50Ms: spread(l.map((x) => x.p50Ms)),
    p99Ms: spread(l.map((x) => x.p99Ms)),
    errors: l.reduce((n, x) => n + x.errors, 0),
  });
  return { keywright: side(a), peer: peer ? side(b) : null };
}

/** A program on PATH, installed from a Debian package first when missing and we are root. */
function ensureBin(bin: string, pkg: string): string | undefined {
  let path = which(bin);
  if (!path && process.getuid?.() === 0 && which('apt-get')) {
    console.log(`  installing ${pkg} (apt-get)…`);
    spawnSync('apt-get', ['install', '-y', pkg], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 300_000,
    });
    path = which(bin);
  }
  return path;
}

/** cfssl from PATH, or installed from Debian's golang-cfssl when we are root; else why it is skipped. */
function ensureCfssl(): { bin: string; jsonBin: string } | string {
  const bin = ensureBin('cfssl', 'golang-cfssl');
  const jsonBin = which('cfssljson');
  if (!bin || !jsonBin) return 'cfssl not installed (apt-get install golang-cfssl needs root)';
  return { bin, jsonBin };
}

/**
 * CFSSL's certdb tables (its certdb/sqlite migration, as CFSSL 1.2 reads and writes them): with
 * `-db-config` cfssl records every certificate it signs, as keywright records every issuance. SQLite
 * commits each insert with an fsync (synchronous=FULL, the default), as a durable store must.
 */
const CFSSL_CERTDB_SCHEMA = `CREATE TABLE certificates (
  serial_number blob NOT NULL, authority_key_identifier blob NOT NULL, ca_label blob,
  status blob NOT NULL, reason int, expiry timestamp, revoked_at timestamp, pem blob NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier));
CREATE TABLE ocsp_responses (
  serial_number blob NOT NULL, authority_key_identifier blob NOT NULL, body blob NOT NULL,
  expiry timestamp, PRIMARY KEY(serial_number, authority_key_identifier));`;

const PINNABLE = availableParallelism() >= 2 && which('taskset') !== undefined;
const pin = (pid: number, cpus: string) => {
  if (PINNABLE) spawnSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
};

async function waitHttp(url: string, proc: ChildProcess, what: string, log: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) throw new Error(`${what} exited at start: ${log()}`);
    const ok = await requestJson(url, 'GET', '/').then(
      () => true,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not answer on ${url} within 10 s: ${log()}`);
}

async function stopProcess(p: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = once(p, 'exit');
  p.kill(signal);
  const timer = setTimeout(() => p.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Spawns a server pinned to CPU 0, stderr kept for the error message. */
function spawnPinned(bin: string, args: string[], cwd: string): { proc: ChildProcess; log: () => string } {
  const argv = PINNABLE ? ['taskset', '-c', '0', bin, ...args] : [bin, ...args];
  const proc = spawn(argv[0]!, argv.slice(1), { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-2000);
  });
  return { proc, log: () => err };
}

async function startCfssl(
  tools: { bin: string; jsonBin: string },
  dir: string,
  certdb?: { sqlite3: string },
): Promise<{ url: string; proc: ChildProcess }> {
  const write = (f: string, v: unknown) => writeFile(join(dir, f), JSON.stringify(v));
  await write('ca-csr.json', {
    CN: 'Bench CFSSL CA',
    key: { algo: 'ecdsa', size: 256 },
    names: [{ O: 'bench' }],
  });
  // keywright's `server` profile: digitalSignature for an EC leaf, serverAuth; 90 days like its default.
  await write('config.json', {
    signing: {
      default: { expiry: '2160h', usages: ['digital signature', 'server auth'] },
      profiles: { server: { expiry: '2160h', usages: ['digital signature', 'server auth'] } },
    },
  });
  const initca = execFileSync(tools.bin, ['gencert', '-initca', 'ca-csr.json'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  execFileSync(tools.jsonBin, ['-bare', 'ca'], {
    cwd: dir,
    input: initca,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  const dbArgs: string[] = [];
  if (certdb) {
    const db = join(dir, 'certs.db');
    execFileSync(certdb.sqlite3, [db], { input: CFSSL_CERTDB_SCHEMA, stdio: ['pipe', 'ignore', 'pipe'] });
    await write('db.json', { driver: 'sqlite3', data_source: db });
    dbArgs.push('-db-config', 'db.json');
  }
  const port = await freePort();
  const { proc, log } = spawnPinned(
    tools.bin,
    [
      'serve',
      ...dbArgs,
      '-address',
      '127.0.0.1',
      '-port',
      String(port),
      '-ca',
      'ca.pem',
      '-ca-key',
      'ca-key.pem',
      '-config',
      'config.json',
      '-loglevel',
      '4',
    ],
    dir,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(url, proc, 'cfssl serve', log);
  return { url, proc };
}

/**
 * node:http answering every GET with the same bytes, nothing else (no auth, unseal or audit): what any
 * Node server can reach on one core here, to set beside nginx.
 */
async function startBareNode(dir: string, body: string): Promise<{ url: string; proc: ChildProcess }> {
  const file = join(dir, 'bundle.pem');
  await writeFile(file, body);
  const port = await freePort();
  const script = `const b = require('node:fs').readFileSync(${JSON.stringify(file)}); require('node:http').createServer((q, s) => { s.writeHead(200, { 'content-type': 'application/pem-certificate-chain', 'content-length': b.length }); s.end(b); }).listen(${port}, '127.0.0.1')`;
  const { proc, log } = spawnPinned(process.execPath, ['-e', script], dir);
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(url, proc, 'bare node:http', log);
  return { url, proc };
}

async function startNginx(dir: string, body: string): Promise<{ url: string; proc: ChildProcess } | string> {
  const bin = which('nginx') ?? which('/usr/sbin/nginx');
  if (!bin) return 'nginx not installed';
  // As root, nginx's workers would run as nobody and could not read our 0700 tmpdir (it holds a key).
  for (const d of ['conf', 'logs', 'tmp', 'html']) await mkdir(join(dir, d));
  await writeFile(join(dir, 'html', 'bundle.pem'), body);
  const port = await freePort();
  await writeFile(
    join(dir, 'conf', 'nginx.conf'),
    `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path tmp/client_body;  proxy_temp_path tmp/proxy;
  fastcgi_temp_path tmp/fastcgi;  uwsgi_temp_path tmp/uwsgi;  scgi_temp_path tmp/scgi;
  default_type application/pem-certificate-chain;
  server {
    listen 127.0.0.1:${port};
    root ${join(dir, 'html')};
  }
}
`,
  );
  const { proc, log } = spawnPinned(
    bin,
    ['-p', `${dir}/`, '-c', 'conf/nginx.conf', '-e', 'logs/error.log', '-g', 'daemon off;'],
    dir,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(url, proc, 'nginx', log);
  return { url, proc };
}

async function startDaemonChild(): Promise<{ proc: ChildProcess; ready: ChildReady }> {
  const proc = fork(import.meta.filename, ['--child'], {
    // KW_BENCH_CPU_PROF=<dir> profiles the daemon (what the hot paths cost under this load).
    execArgv: [
      '--import',
      'tsx',
      ...(process.env.KW_BENCH_CPU_PROF
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.KW_BENCH_CPU_PROF}`]
        : []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<ChildReady>((resolve, reject) => {
    proc.once('message', (m: ChildReady) => resolve(m));
    proc.once('exit', (code) => reject(new Error(`bench daemon exited with ${code} before it was ready`)));
  });
  pin(proc.pid!, '0');
  return { proc, ready };
}

/**
 * What node:crypto alone needs for one CSR signing, on one core (this process, pinned): import the
 * requester's P-256 public key (JWK, the cheapest import OpenSSL 3 offers Node), verify a CSR-sized
 * signature by it and sign a TBS-sized message with a P-256 CA key, over CSR_POOL distinct keys. No CA
 * written in Node 20 signs CSRs faster than this; set beside CFSSL's whole request per CPU-second it
 * bounds the ratio goal 1 of issue 8 can reach whatever the rest of the request costs.
 */
function csrCryptoFloor(plan: Plan): Spread {
  const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const info = Buffer.alloc(300, 0x5a);
  const tbs = Buffer.alloc(520, 0xa5);
  const requesters = Array.from({ length: CSR_POOL }, () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return {
      jwk: publicKey.export({ format: 'jwk' }),
      signature: sign('sha256', info, privateKey),
    };
  });
  const rates: number[] = [];
  for (let s = 0; s < plan.samples + 1; s++) {
    let n = 0;
    const start = process.cpuUsage();
    const deadline = performance.now() + Math.min(plan.sampleMs, 2000);
    while (performance.now() < deadline) {
      const r = requesters[n++ % requesters.length]!;
      if (!verify('sha256', info, createPublicKey({ key: r.jwk, format: 'jwk' }), r.signature))
        throw new Error('floor: a signature did not verify');
      sign('sha256', tbs, ca);
    }
    const used = process.cpuUsage(start);
    if (s > 0) rates.push(n / ((used.user + used.system) / 1e6)); // the first sample warms up
  }
  return spread(rates);
}

/** Distinct CSRs (one key each), cycled: a server that cached a key or a verified CSR gains nothing. */
const CSR_POOL = 1000;

/** One P-256 CSR with the three SANs, in keywright's encoding: both servers get these very bytes. */
function csrPem(): string {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return csrToPem(
    buildCsr({
      subject: { commonName: SANS[0]! },
      sans: SANS.map((s) =>
        /^\d/.test(s) ? { type: 'ip' as const, value: s } : { type: 'dns' as const, value: s },
      ),
      privateKey,
    }),
  );
}

/** KW_BENCH_ONLY=sign,issue,newcert,bundle runs only those rows (profiling one path). */
const wanted = (row: string) =>
  !process.env.KW_BENCH_ONLY || process.env.KW_BENCH_ONLY.split(',').includes(row);

export async function peersBench(options: BenchOptions): Promise<BenchResult> {
  const plan = options.quick ? QUICK : FULL;
  const tmp = await mkdtemp(join(tmpdir(), 'kw-bench-peer-'));
  const procs: Array<[ChildProcess, NodeJS.Signals]> = [];
  let daemonProc: ChildProcess | undefined;
  const originalAffinity = PINNABLE
    ? spawnSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' })
        .stdout.split(':')
        .at(-1)
        ?.trim()
    : undefined;
  const rows: Row[] = [];
  const installed: string[] = [];
  const skipped: string[] = [];
  let floor: Spread | undefined;
  try {
    const daemon = await startDaemonChild();
    daemonProc = daemon.proc;
    pin(process.pid, '1');
    const kw = daemon.ready;
    if (wanted('sign')) floor = csrCryptoFloor(plan);
    const admin = { authorization: `Bearer ${kw.admin}` };

    // 1. CFSSL
    const cfsslTools = ensureCfssl();
    let cfssl: { url: string; proc: ChildProcess } | undefined;
    if (typeof cfsslTools === 'string') skipped.push(`cfssl: ${cfsslTools}`);
    else {
      await mkdir(join(tmp, 'cfssl'));
      cfssl = await startCfssl(cfsslTools, join(tmp, 'cfssl'));
      procs.push([cfssl.proc, 'SIGTERM']);
      installed.push(`cfssl (${cfsslTools.bin})`);
    }
    const csrs = Array.from({ length: CSR_POOL }, csrPem);
    let nextCsr = 0;
    const csr = () => csrs[nextCsr++ % csrs.length]!;
    const signKw: Target = {
      url: `${kw.url}/v1/cas/default/sign`,
      method: 'POST',
      headers: admin,
      pid: daemon.proc.pid!,
      expect: 201,
      body: () => JSON.stringify({ csr: csr(), profile: 'server' }),
    };
    const signCfssl: Target | null = cfssl
      ? {
          url: `${cfssl.url}/api/v1/cfssl/sign`,
          method: 'POST',
          headers: {},
          pid: cfssl.proc.pid!,
          expect: 200,
          body: () => JSON.stringify({ certificate_request: csr(), hosts: SANS, profile: 'server' }),
        }
      : null;
    let n = 0;
    const newKw: Target = {
      url: `${kw.url}/v1/certificates`,
      method: 'POST',
      headers: admin,
      pid: daemon.proc.pid!,
      expect: 201,
      body: () => JSON.stringify({ name: `n${(n++).toString(36)}`, sans: SANS }),
    };
    const newCfssl: Target | null = cfssl
      ? {
          url: `${cfssl.url}/api/v1/cfssl/newcert`,
          method: 'POST',
          headers: {},
          pid: cfssl.proc.pid!,
          expect: 200,
          body: () =>
            JSON.stringify({
              request: {
                CN: SANS[0],
                hosts: SANS,
                key: { algo: 'ecdsa', size: 256 },
                names: [{ O: 'bench' }],
              },
              profile: 'server',
            }),
        }
      : null;
    const peerSkip = cfssl ? {} : { skipped: skipped.at(-1)! };
    if (wanted('sign'))
      rows.push({
        figure: 'sign CSR',
        clients: CA_CLIENTS,
        peerName: 'cfssl /api/v1/cfssl/sign',
        ...(await compare(plan, CA_CLIENTS, signKw, signCfssl)),
        ...peerSkip,
      });
    const issueKw: Target = {
      url: `${kw.url}/v1/cas/default/issue`,
      method: 'POST',
      headers: admin,
      pid: daemon.proc.pid!,
      expect: 201,
      body: () => JSON.stringify({ sans: SANS, profile: 'server' }),
    };
    if (wanted('issue'))
      rows.push({
        figure: 'key + certificate',
        clients: CA_CLIENTS,
        peerName: 'cfssl /api/v1/cfssl/newcert',
        ...(await compare(plan, CA_CLIENTS, issueKw, newCfssl)),
        ...peerSkip,
      });
    if (wanted('newcert'))
      rows.push({
        figure: 'managed certificate (key sealed, stored)',
        clients: CA_CLIENTS,
        peerName: 'cfssl /api/v1/cfssl/newcert',
        ...(await compare(plan, CA_CLIENTS, newKw, newCfssl)),
        ...peerSkip,
      });
    if (cfssl) await stopProcess(cfssl.proc, 'SIGTERM');

    // 1b. CFSSL recording what it signs (its certdb in SQLite), as keywright records every issuance.
    const sqlite3 = typeof cfsslTools === 'string' ? undefined : ensureBin('sqlite3', 'sqlite3');
    if (typeof cfsslTools !== 'string' && sqlite3 === undefined)
      skipped.push('cfssl with certdb: sqlite3 not installed (apt-get install sqlite3 needs root)');
    if (typeof cfsslTools !== 'string' && sqlite3 !== undefined && (wanted('sign') || wanted('issue'))) {
      await mkdir(join(tmp, 'cfssl-db'));
      const recorded = await startCfssl(cfsslTools, join(tmp, 'cfssl-db'), { sqlite3 });
      procs.push([recorded.proc, 'SIGTERM']);
      installed.push('cfssl with its SQLite certdb');
      const on = (t: Target | null): Target | null =>
        t && { ...t, url: t.url.replace(cfssl!.url, recorded.url), pid: recorded.proc.pid! };
      if (wanted('sign'))
        rows.push({
          figure: 'sign CSR, both recording it',
          clients: CA_CLIENTS,
          peerName: 'cfssl sign + certdb (SQLite)',
          ...(await compare(plan, CA_CLIENTS, signKw, on(signCfssl))),
        });
      if (wanted('issue'))
        rows.push({
          figure: 'key + certificate, both recording it',
          clients: CA_CLIENTS,
          peerName: 'cfssl newcert + certdb (SQLite)',
          ...(await compare(plan, CA_CLIENTS, issueKw, on(newCfssl))),
        });
      await stopProcess(recorded.proc, 'SIGTERM');
    }

    // 2. nginx
    await mkdir(join(tmp, 'nginx'));
    const nginx = await startNginx(join(tmp, 'nginx'), kw.bundlePem);
    if (typeof nginx === 'string') skipped.push(nginx);
    else {
      procs.push([nginx.proc, 'SIGQUIT']);
      installed.push('nginx (1 worker, static file)');
    }
    const pull: Target = {
      url: `${kw.url}/v1/certificates/web/bundle?format=pem`,
      method: 'GET',
      headers: { authorization: `Bearer ${kw.service}` },
      expect: 200,
      pid: daemonProc.pid!,
    };
    const staticFile: Target | null =
      typeof nginx === 'string'
        ? null
        : { url: `${nginx.url}/bundle.pem`, method: 'GET', headers: {}, expect: 200, pid: nginx.proc.pid! };
    if (wanted('bundle'))
      rows.push({
        figure: `bundle pull (${Buffer.byteLength(kw.bundlePem)} B PEM with key)`,
        clients: BUNDLE_CLIENTS,
        peerName: 'nginx static file',
        ...(await compare(plan, BUNDLE_CLIENTS, pull, staticFile)),
        ...(typeof nginx === 'string' ? { skipped: nginx } : {}),
      });
    const wrk = wanted('bundle') ? ensureBin('wrk', 'wrk') : undefined;
    if (wanted('bundle') && wrk === undefined)
      skipped.push('wrk: not installed (apt-get install wrk needs root)');
    if (wrk !== undefined && staticFile) {
      installed.push('wrk (C load generator)');
      rows.push({
        figure: 'bundle pull, wrk generating the load',
        clients: BUNDLE_CLIENTS,
        peerName: 'nginx static file (wrk)',
        ...(await compare(plan, BUNDLE_CLIENTS, pull, staticFile, wrkLoader(wrk))),
      });
      await mkdir(join(tmp, 'bare'));
      const bare = await startBareNode(join(tmp, 'bare'), kw.bundlePem);
      procs.push([bare.proc, 'SIGTERM']);
      const bareTarget: Target = {
        url: `${bare.url}/bundle.pem`,
        method: 'GET',
        headers: {},
        expect: 200,
        pid: bare.proc.pid!,
      };
      rows.push({
        figure: 'bare node:http, same bytes, nothing else (wrk)',
        clients: BUNDLE_CLIENTS,
        peerName: 'nginx static file (wrk)',
        ...(await compare(plan, BUNDLE_CLIENTS, bareTarget, staticFile, wrkLoader(wrk))),
      });
      await stopProcess(bare.proc, 'SIGTERM');
    }
  } finally {
    for (const [p, signal] of procs) await stopProcess(p, signal);
    if (daemonProc && daemonProc.exitCode === null) {
      // a graceful stop through IPC: the daemon closes its store and audit log and removes its data dir
      const exited = once(daemonProc, 'exit');
      daemonProc.send({ kind: 'stop' });
      const timer = setTimeout(() => daemonProc?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (originalAffinity)
      spawnSync('taskset', ['-cp', originalAffinity, String(process.pid)], { stdio: 'ignore' });
    await rm(tmp, { recursive: true, force: true });
  }
  return {
    table: render(rows, plan, installed, skipped, floor),
    json: {
      plan,
      pinned: PINNABLE,
      installed,
      skipped,
      rows,
      ...(floor ? { csrCryptoFloorPerCpuSecond: floor } : {}),
    },
  };
}

const int = (x: number) => Math.round(x).toLocaleString('en');
const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
function fmtSide(s: Side | null, runs: number): [string, string, string, string] {
  if (!s) return ['skipped', '–', '–', '–'];
  const rate =
    runs === 1
      ? `${int(s.perSecond.median)}/s`
      : `${int(s.perSecond.median)}/s (${int(s.perSecond.min)}–${int(s.perSecond.max)})`;
  return [
    rate + (s.errors > 0 ? ` [${s.errors} err]` : ''),
    Number.isFinite(s.perCpuSecond.median) ? int(s.perCpuSecond.median) : '–',
    `${ms(s.p50Ms.median)} ms`,
    `${ms(s.p99Ms.median)} ms`,
  ];
}

function render(
  rows: readonly Row[],
  plan: Plan,
  installed: string[],
  skipped: string[],
  floor: Spread | undefined,
): string {
  const cfsslSign = rows.find((r) => r.figure === 'sign CSR')?.peer?.perCpuSecond.median;
  const header = [
    'figure',
    'clients',
    'keywright',
    'per CPU-s',
    'p50',
    'p99',
    'peer',
    'peer req/s',
    'per CPU-s',
    'p50',
    'p99',
    'kw/peer',
    'kw/peer per CPU-s',
  ];
  const body = rows.map((r) => [
    r.figure,
    String(r.clients),
    ...fmtSide(r.keywright, plan.samples),
    r.peerName,
    ...fmtSide(r.peer, plan.samples),
    r.peer ? (r.keywright.perSecond.median / r.peer.perSecond.median).toFixed(2) : '–',
    r.peer ? (r.keywright.perCpuSecond.median / r.peer.perCpuSecond.median).toFixed(2) : '–',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
    '',
    `median (min–max) of ${plan.samples} × ${plan.sampleMs / 1000} s samples after a ${plan.warmupMs / 1000}-s warm-up, keywright and peer alternating; plain HTTP/1.1 keep-alive on 127.0.0.1, p50/p99 are medians over the samples.`,
    'per CPU-s = answers per CPU-second the server process used (user + system, all threads and child processes, from /proc): the per-core cost, which noise from other processes on the machine does not change.',
    PINNABLE
      ? 'each server pinned to CPU 0 (taskset; keywright is the daemon in a child of the bench process, all its threads pinned), the load generator (this Node process, one event loop) to CPU 1.'
      : 'NOT pinned (one core or no taskset): servers and load generator share the CPUs.',
    "keywright commits every issuance (store + fsync'd audit entry) and audits every key export (its entry written before the key is sent, fdatasync'd beside the next pulls: audit.exportDurability written, the default); cfssl persists nothing (no -db-config) except in the rows 'both recording it' (-db-config, its certdb in SQLite: one fsync'd insert per certificate); nginx sends a cached file.",
    `sign: the same ${CSR_POOL} distinct P-256 CSRs (one key each, cycled) both sides, profile server (digitalSignature, serverAuth), P-256 CA (keywright signs with its default intermediate, cfssl with its root).`,
    ...(floor
      ? [
          `sign, node:crypto floor: import the requester's key (JWK) + verify its signature + sign, nothing else, one core: ${int(floor.median)}/CPU-s (${int(floor.min)}–${int(floor.max)})${cfsslSign ? ` = ${(floor.median / cfsslSign).toFixed(2)}× cfssl's whole request per CPU-s: the most a Node 20 CA could reach before parsing, building, HTTP or recording anything` : ''}.`,
        ]
      : []),
    'The load generator is one Node process (about 10k answers a second at most): against nginx it is the bottleneck, so the nginx figure is a lower bound and the ratio an upper bound; the rows marked wrk use wrk (C, one thread, on the same CPU as this process) instead, and show both servers\' own limits; in the row "bare node:http" the keywright columns hold a bare Node server sending the same bytes, the ceiling of any Node server here.',
    `peers used: ${installed.join(', ') || 'none'}${skipped.length ? `; skipped: ${skipped.join('; ')}` : ''}`,
  ].join('\n');
}

if (process.argv.includes('--child')) await child();
