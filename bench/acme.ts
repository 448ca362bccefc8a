/**
 * ACME benchmark for issue 8: N certificates (50; 3 with --quick) from one pebble in always-valid mode
 * (PEBBLE_VA_ALWAYS_VALID=1: the CA accepts every challenge without connecting back), obtained
 *   - by keywright: the daemon in a child of this process (`initDataDir` + `startDaemon`, plain HTTP on
 *     loopback), one managed certificate per name created with `POST /v1/certificates` and issuer
 *     `acme:pebble`, CONCURRENCY requests in flight; the request answers once the certificate is
 *     issued, its key sealed and the version committed;
 *   - by certbot (Debian package, installed with apt-get when missing and we are root, else skipped):
 *     `certbot certonly --standalone` once per name, one after another, which is how certbot is run;
 *     each run is a fresh Python process, and its start-up is part of what is measured.
 * Both use the same pebble, the same names in a sample, P-256 keys and an account registered before
 * the timed part (its time is reported on its own row). One untimed warm-up certificate each side, then
 * the samples, keywright and certbot alternating so that drifting machine noise hits both alike.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BenchOptions, BenchResult } from './run.js';
import { requestJson } from './http.js';
import { freePort } from '../test/helpers/net.js';
import { startPebbleIn, type Pebble } from '../test/helpers/pebble.js';
import { spread, which, type Spread } from './stats.js';

const CONCURRENCY = 8;
const ACCOUNT = 'pebble';
const EMAIL = 'bench@example.test';
/** One certbot run: far above the ~2 s it takes, low enough that a hung run does not hang the bench. */
const CERTBOT_TIMEOUT_MS = 120_000;

interface Plan {
  readonly certificates: number;
  readonly samples: number;
}
const FULL: Plan = { certificates: 50, samples: 3 };
const QUICK: Plan = { certificates: 3, samples: 1 };

// ---------------------------------------------------------------------------------------------------
// Child: the daemon.

interface ChildStart {
  readonly kind: 'start';
  readonly http01Port: number;
}
interface ChildReady {
  readonly kind: 'ready';
  readonly url: string;
  readonly admin: string;
}

async function child(): Promise<void> {
  const start = await new Promise<ChildStart>((resolve) =>
    process.once('message', (m: ChildStart) => resolve(m)),
  );
  const { initDataDir } = await import('../src/app/init.js');
  const { startDaemon } = await import('../src/app/daemon.js');
  const { parseConfig } = await import('../src/config/load.js');
  const root = await mkdtemp(join(tmpdir(), 'kw-bench-acme-'));
  const config = parseConfig(
    {
      dataDir: join(root, 'data'),
      listen: `127.0.0.1:${await freePort()}`,
      tls: { enabled: false },
      log: { level: 'silent' },
      api: { rateLimit: 100_000_000 },
      ca: { root: { key: 'ec-p256' } },
      // Never connected to in always-valid mode, but the http-01 solver wants a responder.
      acme: { http01: { listen: `127.0.0.1:${start.http01Port}` } },
    },
    'bench',
  );
  const init = await initDataDir({ config, secrets: {} });
  const daemon = await startDaemon({ config, secrets: {} });
  process.on('message', (m: { kind: string }) => {
    if (m.kind !== 'stop') return;
    void daemon
      .stop()
      .then(() => rm(root, { recursive: true, force: true }))
      .then(() => process.exit(0));
  });
  const ready: ChildReady = { kind: 'ready', url: daemon.url, admin: init.adminToken };
  process.send!(ready);
}

// ---------------------------------------------------------------------------------------------------
// Parent: pebble, certbot and the timing.

/** One sample: N certificates, wall time of the whole and of each. */
interface Sample {
  readonly totalS: number;
  readonly perSecond: number;
  readonly p50S: number;
  readonly p99S: number;
  /** Each certificate's wall time, in the order they finished. */
  readonly latenciesS: readonly number[];
}
function sampleOf(totalMs: number, latenciesMs: number[]): Sample {
  const s = [...latenciesMs].sort((a, b) => a - b);
  const pct = (p: number) => (s[Math.min(s.length - 1, Math.floor(s.length * p))] ?? NaN) / 1000;
  return {
    totalS: totalMs / 1000,
    perSecond: s.length / (totalMs / 1000),
    p50S: pct(0.5),
    p99S: pct(0.99),
    latenciesS: latenciesMs.map((x) => Math.round(x) / 1000),
  };
}

interface Side {
  readonly registerS: number;
  readonly totalS: Spread;
  readonly perSecond: Spread;
  readonly p50S: Spread;
  readonly p99S: Spread;
  readonly samples: readonly Sample[];
}
function sideOf(registerS: number, samples: readonly Sample[]): Side {
  return {
    registerS,
    totalS: spread(samples.map((x) => x.totalS)),
    perSecond: spread(samples.map((x) => x.perSecond)),
    p50S: spread(samples.map((x) => x.p50S)),
    p99S: spread(samples.map((x) => x.p99S)),
    samples,
  };
}

/** The binaries, installed from Debian `pkg` when missing and we are root; else why they are missing. */
function ensure(bins: readonly string[], pkg: string): string | undefined {
  const missing = () => bins.filter((b) => which(b) === undefined);
  if (missing().length > 0 && process.getuid?.() === 0 && which('apt-get')) {
    console.log(`  installing ${pkg} (apt-get)…`);
    spawnSync('apt-get', ['install', '-y', pkg], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 300_000,
    });
  }
  const still = missing();
  return still.length === 0
    ? undefined
    : `${still.join(', ')} not installed (apt-get install ${pkg} needs root)`;
}

function packageVersions(pkgs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pkg of pkgs) {
    const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout) out[pkg] = r.stdout.trim();
  }
  return out;
}

async function startDaemonChild(http01Port: number): Promise<{ proc: ChildProcess; ready: ChildReady }> {
  const proc = fork(import.meta.filename, ['--child'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = new Promise<ChildReady>((resolve, reject) => {
    proc.once('message', (m: ChildReady) => resolve(m));
    proc.once('exit', (code) => reject(new Error(`bench daemon exited with ${code} before it was ready`)));
  });
  const start: ChildStart = { kind: 'start', http01Port };
  proc.send(start);
  return { proc, ready: await ready };
}

async function stopDaemonChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  // graceful through IPC: the daemon closes its store and audit log and removes its data dir
  const exited = once(proc, 'exit');
  proc.send({ kind: 'stop' });
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

class Keywright {
  constructor(
    private readonly url: string,
    private readonly admin: string,
  ) {}

  private async call(method: string, path: string, body: unknown): Promise<void> {
    const r = await requestJson(this.url, method, path, { token: this.admin, body });
    if (r.status !== 201) throw new Error(`keywright ${method} ${path}: ${r.status} ${r.text.slice(0, 500)}`);
  }

  /** Registers the account; seconds taken. */
  async register(pebble: Pebble): Promise<number> {
    const t0 = performance.now();
    await this.call('POST', '/v1/acme/accounts', {
      name: ACCOUNT,
      directory: pebble.directoryUrl,
      email: EMAIL,
      agreeTos: true,
      caPem: pebble.tlsCaPem,
    });
    return (performance.now() - t0) / 1000;
  }

  issue(name: string, dns: string): Promise<void> {
    return this.call('POST', '/v1/certificates', { name, sans: [dns], issuer: `acme:${ACCOUNT}` });
  }

  /** All `names` with CONCURRENCY requests in flight. */
  async sample(tag: string, names: readonly string[]): Promise<Sample> {
    const latencies: number[] = [];
    let next = 0;
    const t0 = performance.now();
    const worker = async () => {
      for (let i = next++; i < names.length; i = next++) {
        const s = performance.now();
        await this.issue(`${tag}-${i}`, names[i]!);
        latencies.push(performance.now() - s);
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, names.length) }, worker));
    return sampleOf(performance.now() - t0, latencies);
  }
}

class Certbot {
  private running: ChildProcess | undefined;

  constructor(
    private readonly dir: string,
    private readonly caFile: string,
    private readonly pebble: Pebble,
    private readonly http01Port: number,
  ) {}

  private common(): string[] {
    return [
      '--non-interactive',
      '--server',
      this.pebble.directoryUrl,
      '--config-dir',
      join(this.dir, 'config'),
      '--work-dir',
      join(this.dir, 'work'),
      '--logs-dir',
      join(this.dir, 'logs'),
    ];
  }

  /** One certbot process to its exit; throws with its output when it fails. */
  private async run(args: string[]): Promise<void> {
    const proc = spawn('certbot', [...args, ...this.common()], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, REQUESTS_CA_BUNDLE: this.caFile },
    });
    this.running = proc;
    let out = '';
    const keep = (d: Buffer) => (out = (out + d.toString()).slice(-4000));
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const timer = setTimeout(() => proc.kill('SIGKILL'), CERTBOT_TIMEOUT_MS);
    const [code] = (await once(proc, 'exit')) as [number | null];
    clearTimeout(timer);
    this.running = undefined;
    if (code !== 0) throw new Error(`certbot ${args[0]} exited with ${code}:\n${out}`);
  }

  /** How long a certbot process takes to start and exit without talking to a CA (`--help` loads its plugins). */
  async startupS(): Promise<number> {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await this.run(['--help']);
      times.push((performance.now() - t0) / 1000);
    }
    return spread(times).median;
  }

  async register(): Promise<number> {
    const t0 = performance.now();
    await this.run(['register', '--agree-tos', '--no-eff-email', '-m', EMAIL]);
    return (performance.now() - t0) / 1000;
  }

  async issue(dns: string): Promise<void> {
    await this.run([
      'certonly',
      '--standalone',
      '--preferred-challenges',
      'http-01',
      '--http-01-address',
      '127.0.0.1',
      '--http-01-port',
      String(this.http01Port),
      '--key-type',
      'ecdsa',
      '-d',
      dns,
    ]);
    // certonly exits 0 without a new certificate in some cases (e.g. one already there): make sure
    await access(join(this.dir, 'config', 'live', dns, 'fullchain.pem'));
  }

  /** All `names`, one process after another. */
  async sample(names: readonly string[]): Promise<Sample> {
    const latencies: number[] = [];
    const t0 = performance.now();
    for (const dns of names) {
      const s = performance.now();
      await this.issue(dns);
      latencies.push(performance.now() - s);
    }
    return sampleOf(performance.now() - t0, latencies);
  }

  async stop(): Promise<void> {
    const p = this.running;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = once(p, 'exit');
    p.kill('SIGKILL');
    await exited;
  }
}

interface Outcome {
  readonly plan: Plan;
  readonly keywright: Side | null;
  readonly certbot: Side | null;
  /** Median wall time of `certbot --help`: the Python start-up inside every certbot figure. */
  readonly certbotStartupS: number | null;
  /** Debian package versions, for the notes. */
  readonly versions: Readonly<Record<string, string>>;
  readonly skipped: readonly string[];
}

async function measure(plan: Plan, tmp: string, cleanups: Array<() => Promise<unknown>>): Promise<Outcome> {
  const skipped: string[] = [];
  const noPebble = ensure(['pebble', 'pebble-challtestsrv', 'openssl'], 'pebble');
  if (noPebble) {
    return {
      plan,
      keywright: null,
      certbot: null,
      certbotStartupS: null,
      versions: {},
      skipped: [`everything: ${noPebble}`],
    };
  }
  const noCertbot = ensure(['certbot'], 'certbot');
  if (noCertbot) skipped.push(`certbot: ${noCertbot}`);

  const pebble = await startPebbleIn({ after: (fn) => cleanups.push(fn) }, { alwaysValid: true });
  const daemon = await startDaemonChild(await freePort());
  cleanups.push(() => stopDaemonChild(daemon.proc));
  const kw = new Keywright(daemon.ready.url, daemon.ready.admin);
  let cb: Certbot | undefined;
  if (!noCertbot) {
    const caFile = join(tmp, 'pebble-tls-ca.pem');
    await writeFile(caFile, pebble.tlsCaPem);
    cb = new Certbot(join(tmp, 'certbot'), caFile, pebble, await freePort());
    const certbot = cb;
    cleanups.push(() => certbot.stop());
  }

  const kwRegister = await kw.register(pebble);
  const cbRegister = cb ? await cb.register() : NaN;
  const certbotStartupS = cb ? await cb.startupS() : null;
  await kw.issue('warm-up', 'warm-up.example.test');
  if (cb) await cb.issue('warm-up.example.test');

  const kwSamples: Sample[] = [];
  const cbSamples: Sample[] = [];
  for (let k = 0; k < plan.samples; k++) {
    // fresh names per sample, the same for both sides: nothing to renew or reuse (PEBBLE_AUTHZREUSE=0)
    const names = Array.from({ length: plan.certificates }, (_, i) => `n${i}.s${k}.example.test`);
    kwSamples.push(await kw.sample(`s${k}`, names));
    if (cb) cbSamples.push(await cb.sample(names));
  }
  return {
    plan,
    keywright: sideOf(kwRegister, kwSamples),
    certbot: cb ? sideOf(cbRegister, cbSamples) : null,
    certbotStartupS,
    versions: packageVersions(['pebble', 'certbot']),
    skipped,
  };
}

export async function acmeBench(options: BenchOptions): Promise<BenchResult> {
  const plan = options.quick ? QUICK : FULL;
  const tmp = await mkdtemp(join(tmpdir(), 'kw-bench-acme-peer-'));
  const cleanups: Array<() => Promise<unknown>> = [];
  let outcome: Outcome;
  try {
    outcome = await measure(plan, tmp, cleanups);
  } finally {
    // last started, first stopped: certbot, then the daemon, then pebble and its directory
    for (const fn of cleanups.reverse()) await fn();
    await rm(tmp, { recursive: true, force: true });
  }
  return { table: render(outcome), json: { concurrency: CONCURRENCY, ...outcome } };
}

const secs = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
function cell(s: Spread, runs: number, fmt: (x: number) => string, unit: string): string {
  return runs === 1 ? `${fmt(s.median)}${unit}` : `${fmt(s.median)}${unit} (${fmt(s.min)}–${fmt(s.max)})`;
}

function render(o: Outcome): string {
  const { plan, keywright: kw, certbot: cb } = o;
  const n = plan.certificates;
  if (!kw) return `skipped: ${o.skipped.join('; ')}`;
  const runs = plan.samples;
  // every ratio reads "how many times faster keywright is": time rows certbot ÷ keywright, rate row inverted
  const rows: Array<[string, string, string, string]> = [
    [
      `${n} certificates, total`,
      cell(kw.totalS, runs, secs, ' s'),
      cb ? cell(cb.totalS, runs, secs, ' s') : 'skipped',
      cb ? (cb.totalS.median / kw.totalS.median).toFixed(1) : '–',
    ],
    [
      'per certificate p50',
      cell(kw.p50S, runs, secs, ' s'),
      cb ? cell(cb.p50S, runs, secs, ' s') : 'skipped',
      cb ? (cb.p50S.median / kw.p50S.median).toFixed(1) : '–',
    ],
    [
      'per certificate p99',
      cell(kw.p99S, runs, secs, ' s'),
      cb ? cell(cb.p99S, runs, secs, ' s') : 'skipped',
      cb ? (cb.p99S.median / kw.p99S.median).toFixed(1) : '–',
    ],
    [
      'certificates/s',
      cell(kw.perSecond, runs, (x) => x.toFixed(2), ''),
      cb ? cell(cb.perSecond, runs, (x) => x.toFixed(2), '') : 'skipped',
      cb ? (kw.perSecond.median / cb.perSecond.median).toFixed(1) : '–',
    ],
    [
      'account registration (once)',
      `${secs(kw.registerS)} s`,
      cb ? `${secs(cb.registerS)} s` : 'skipped',
      cb ? (cb.registerS / kw.registerS).toFixed(1) : '–',
    ],
  ];
  const header = [
    'figure',
    `keywright (${CONCURRENCY} in flight)`,
    'certbot (one after another)',
    'speed-up',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
    runs === 1
      ? `one sample of ${n} certificates per side, after one untimed warm-up certificate each.`
      : `median (min–max) of ${runs} samples of ${n} certificates per side, keywright and certbot alternating, after one untimed warm-up certificate each; p50/p99 are medians over the samples.`,
    `speed-up: how many times faster keywright is (certbot time ÷ keywright time; rate row keywright ÷ certbot). p99 of ${n} is the slowest of them.`,
    `one pebble ${o.versions.pebble ?? ''} for both, always-valid mode (PEBBLE_VA_ALWAYS_VALID=1, no validation connection back), no authz reuse, fresh names per sample, the same names both sides; P-256 keys both sides; HTTPS to pebble, everything on 127.0.0.1.`,
    `keywright: the daemon in a child process, POST /v1/certificates with issuer acme:${ACCOUNT}, ${CONCURRENCY} requests in flight; a request returns once the certificate is issued, its key sealed and the version committed (store + fsync'd audit entry); per-certificate latency includes waiting behind the other ${CONCURRENCY - 1} in flight.`,
    `certbot ${o.versions.certbot ?? ''}: \`certbot certonly --standalone\` once per name, one after another, each a new Python process whose start-up is included, as that is how certbot is run${o.certbotStartupS === null ? '' : ` (start-up alone, \`certbot --help\`: ${secs(o.certbotStartupS)} s)`}; it writes key, certificate and renewal config to its config dir.`,
    '2 shared cores: pebble, the daemon, certbot and this process compete for them.',
    ...(o.skipped.length ? [`skipped: ${o.skipped.join('; ')}`] : []),
  ].join('\n');
}

if (process.argv.includes('--child')) await child();
