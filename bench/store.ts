/**
 * Store benchmark: the lowdb store (journal + compact document, blobs out of it, durable group commit) against raw
 * lowdb JSONFile (`db.update` pushing one 3 KB record, pretty-printed, no fsync), the anchor of
 * research/perf-anchors.md §4.
 *
 * Every measurement runs in a fresh child process (`node --import tsx bench/store.ts --child …`) so
 * start-up time and RSS are those of a process that loaded exactly one data set. Each size is measured
 * RUNS times; the table shows the median and the min–max over runs.
 *
 * Data set per size: managed-certificate-like records of about 500 B in the document (name, issuer,
 * SANs, key type, renewal state, deploy targets, two or three version summaries) and, per version, a
 * 1.1 KB PEM chain blob and a 550 B sealed-key blob. One measured write is what an issuance does: one
 * transaction that updates the record with a new version and puts its two blobs.
 */
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import { openLowdbStore } from '../src/store/lowdb/index.js';
import { LATEST_SCHEMA_VERSION } from '../src/store/lowdb/migrations.js';
import type { StoredRecord } from '../src/store/port.js';
import type { BenchOptions, BenchResult } from './run.js';
import { spread, type Spread } from './stats.js';

const COLLECTION = 'certificates';
const CONCURRENCY = 16;
/** Unmeasured writes first, so JIT compilation is not counted as an event-loop stall. */
const WARM_UP = 5;
const MiB = 1024 * 1024;

interface Plan {
  readonly sizes: readonly number[];
  readonly baselineSizes: readonly number[];
  readonly runs: number;
  /** Sequential writes per size. */
  readonly writes: (size: number) => number;
  /** Writes per writer in the 16-writer phase. */
  readonly rounds: (size: number) => number;
}

const FULL: Plan = {
  sizes: [1_000, 10_000, 50_000],
  baselineSizes: [1_000, 10_000], // 50k would take minutes per run and GiBs of RSS: anchors §4 has it
  runs: 3,
  writes: (n) => (n <= 1_000 ? 200 : n <= 10_000 ? 100 : 40),
  rounds: (n) => (n <= 10_000 ? 8 : 4),
};

const QUICK: Plan = {
  sizes: [1_000],
  baselineSizes: [1_000],
  runs: 1,
  writes: () => 50,
  rounds: () => 3,
};

// ---------------------------------------------------------------------------------------------------
// Records

interface VersionSummary {
  n: number;
  serial: string;
  notAfter: string;
  status: 'active' | 'superseded';
}

interface BenchCert extends StoredRecord {
  name: string;
  issuer: string;
  sans: string[];
  keyType: string;
  lifetime: string;
  renewBefore: string;
  renewal: { state: string; nextAt: string; failures: number };
  deploy: string[];
  currentVersion: number;
  versions: VersionSummary[];
  updatedAt: string;
}

/** A deterministic PRNG, so every run and both implementations touch the same records. */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const day = 86_400_000;
const T0 = Date.UTC(2026, 10, 1);

function summary(n: number, status: VersionSummary['status']): VersionSummary {
  return { n, serial: hex(16), notAfter: new Date(T0 + (n * 60 + 90) * day).toISOString(), status };
}

function makeCert(i: number): BenchCert {
  const name = `svc-${String(i).padStart(6, '0')}`;
  return {
    id: name,
    name,
    issuer: 'ca:default',
    sans: [`${name}.internal.example`, name, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`],
    keyType: 'ec-p256',
    lifetime: '90d',
    renewBefore: '33%',
    renewal: {
      state: 'scheduled',
      nextAt: new Date(T0 + 60 * day).toISOString(),
      failures: 0,
    },
    deploy: [`file:/etc/keywright/${name}`],
    currentVersion: 2,
    versions: [summary(2, 'active'), summary(1, 'superseded')],
    updatedAt: new Date(T0).toISOString(),
  };
}

/** What an issuance changes: a new active version, the older ones superseded, the last three kept. */
function withNewVersion(c: BenchCert, n: number): BenchCert {
  const versions = [
    summary(n, 'active'),
    ...c.versions.map((v) => ({ ...v, status: 'superseded' as const })),
  ];
  return {
    ...c,
    currentVersion: n,
    versions: versions.slice(0, 3),
    updatedAt: new Date(T0 + n * day).toISOString(),
  };
}

function pemChain(): Buffer {
  const body = randomBytes(790)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return Buffer.from(`-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`);
}

function sealedKey(): Buffer {
  // The SealedBlob JSON of anchors §3: about 544 B.
  return Buffer.from(
    JSON.stringify({
      v: 1,
      kek: hex(8),
      alg: 'A256GCM',
      iv: hex(12),
      wrappedKey: hex(60),
      tag: hex(16),
      ct: hex(150),
    }),
  );
}

/** The 3 KB record of anchors §4 (PEM, sealed key, SANs, labels, renewal state, history inline). */
function make3kRecord(i: number) {
  const c = makeCert(i);
  return {
    ...c,
    labels: { team: 'platform', env: 'prod', tier: String(i % 3) },
    pem: pemChain().toString(),
    sealedKey: sealedKey().toString(),
    history: [1, 2, 3].map((n) => ({
      at: new Date(T0 + n * day).toISOString(),
      event: 'issued',
      serial: hex(16),
    })),
  };
}

const blobKeys = (name: string, n: number) => [`cert/${name}/${n}/chain`, `cert/${name}/${n}/key`] as const;

// ---------------------------------------------------------------------------------------------------
// Data sets (built directly on disk, without fsync, then one `sync`: populating is not what we measure)

async function populateStore(
  dir: string,
  size: number,
): Promise<{ documentBytes: number; recordBytes: number }> {
  const certs: Record<string, BenchCert> = {};
  const blobs: [string, Buffer][] = [];
  for (let i = 0; i < size; i++) {
    const c = makeCert(i);
    certs[c.id] = c;
    for (const v of c.versions) {
      const [chain, key] = blobKeys(c.name, v.n);
      blobs.push([chain, pemChain()], [key, sealedKey()]);
    }
  }
  const text = JSON.stringify({ schemaVersion: LATEST_SCHEMA_VERSION, collections: { [COLLECTION]: certs } });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'keywright.json'), text, { mode: 0o600 });
  let next = 0;
  const worker = async () => {
    while (next < blobs.length) {
      const [key, bytes] = blobs[next++]!;
      const path = join(dir, 'blobs', ...key.split('/'));
      await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
      await writeFile(path, bytes, { mode: 0o600 });
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  execFileSync('sync');
  return { documentBytes: Buffer.byteLength(text), recordBytes: Math.round(Buffer.byteLength(text) / size) };
}

async function populateBaseline(file: string, size: number): Promise<{ documentBytes: number }> {
  const records = Array.from({ length: size }, (_, i) => make3kRecord(i));
  const text = JSON.stringify({ records }, null, 2); // what JSONFile writes
  await writeFile(file, text);
  execFileSync('sync');
  return { documentBytes: Buffer.byteLength(text) };
}

// ---------------------------------------------------------------------------------------------------
// Measurement, in a child process

interface ChildTask {
  readonly kind: 'store' | 'baseline';
  readonly path: string;
  readonly size: number;
  readonly writes: number;
  readonly rounds: number;
  readonly seed: number;
}

interface RunFigures {
  startupMs: number;
  rssAfterLoadMiB: number;
  peakRssMiB: number;
  writeP50Ms: number;
  writeP99Ms: number;
  concP50Ms: number;
  concP99Ms: number;
  /** Transactions per journal append in the 16-writer phase (group commit). */
  txPerFlush: number | null;
  stallMaxMs: number;
  stallP99Ms: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

const sortNum = (xs: number[]) => [...xs].sort((a, b) => a - b);

async function timed(fn: () => Promise<unknown>, into: number[]): Promise<void> {
  const t = performance.now();
  await fn();
  into.push(performance.now() - t);
}

async function measure(task: ChildTask): Promise<RunFigures> {
  const rand = prng(task.seed);
  const pick = () => Math.floor(rand() * task.size);
  const sequential: number[] = [];
  const concurrent: number[] = [];
  const loop = monitorEventLoopDelay({ resolution: 1 });
  let startupMs: number;
  let rssAfterLoad: number;
  let txPerFlush: number | null = null;

  if (task.kind === 'store') {
    const t = performance.now();
    // compactAtBytes 1: a compaction starts as soon as the last one ends, so every measured write
    // competes with one (worst case; by default the journal is folded every 8 MiB or document size)
    const store = await openLowdbStore({ dataDir: task.path, compactAtBytes: 1 });
    startupMs = performance.now() - t;
    rssAfterLoad = process.memoryUsage().rss;
    const issue = (i: number) =>
      store.tx((tx) => {
        const certs = tx.collection<BenchCert>(COLLECTION);
        const current = certs.get(makeCert(i).id);
        const n = current.currentVersion + 1;
        certs.update(current.id, (c) => withNewVersion(c, n));
        const [chain, key] = blobKeys(current.name, n);
        tx.putBlob(chain, pemChain());
        tx.putBlob(key, sealedKey());
      });
    for (let w = 0; w < WARM_UP; w++) await issue(pick());
    loop.enable();
    for (let w = 0; w < task.writes; w++) await timed(() => issue(pick()), sequential);
    const before = store.stats().flushes;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let r = 0; r < task.rounds; r++) await timed(() => issue(pick()), concurrent);
      }),
    );
    loop.disable();
    txPerFlush = concurrent.length / (store.stats().flushes - before);
    await store.close();
  } else {
    const t = performance.now();
    const db = new Low(new JSONFile<{ records: unknown[] }>(task.path), { records: [] });
    await db.read();
    startupMs = performance.now() - t;
    rssAfterLoad = process.memoryUsage().rss;
    let i = task.size;
    const push = () => db.update((d) => d.records.push(make3kRecord(i++)));
    for (let w = 0; w < WARM_UP; w++) await push();
    loop.enable();
    for (let w = 0; w < task.writes; w++) await timed(push, sequential);
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let r = 0; r < task.rounds; r++) await timed(push, concurrent);
      }),
    );
    loop.disable();
  }
  const seq = sortNum(sequential);
  const conc = sortNum(concurrent);
  return {
    startupMs,
    rssAfterLoadMiB: rssAfterLoad / MiB,
    peakRssMiB: (process.resourceUsage().maxRSS * 1024) / MiB,
    writeP50Ms: percentile(seq, 50),
    writeP99Ms: percentile(seq, 99),
    concP50Ms: percentile(conc, 50),
    concP99Ms: percentile(conc, 99),
    txPerFlush,
    stallMaxMs: loop.max / 1e6,
    stallP99Ms: loop.percentile(99) / 1e6,
  };
}

function runChild(task: ChildTask): Promise<RunFigures> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', import.meta.filename, '--child', JSON.stringify(task)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk) => (out += String(chunk)));
    child.on('error', fail);
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || line === undefined)
        fail(new Error(`bench child ${task.kind} ${task.size} exited ${code}`));
      else done(JSON.parse(line.slice('RESULT '.length)) as RunFigures);
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Orchestration and report

interface SizeResult {
  kind: 'store' | 'baseline';
  records: number;
  documentMiB: number;
  recordBytes?: number;
  writes: number;
  concurrentWrites: number;
  runs: RunFigures[];
  summary: Record<keyof RunFigures, Spread | null>;
}

function summarize(runs: RunFigures[]): SizeResult['summary'] {
  const keys = Object.keys(runs[0]!) as (keyof RunFigures)[];
  return Object.fromEntries(
    keys.map((k) => {
      const values = runs.map((r) => r[k]).filter((v): v is number => v !== null);
      return [k, values.length === 0 ? null : spread(values)];
    }),
  ) as SizeResult['summary'];
}

export async function storeBench(options: BenchOptions): Promise<BenchResult> {
  const plan = options.quick ? QUICK : FULL;
  const root = await mkdtemp(join(tmpdir(), 'kw-bench-store-'));
  const results: SizeResult[] = [];
  try {
    for (const size of plan.sizes) {
      const dir = join(root, `store-${size}`);
      const t = performance.now();
      const { documentBytes, recordBytes } = await populateStore(dir, size);
      log(
        `store ${size}: populated in ${((performance.now() - t) / 1000).toFixed(1)} s, document ${mib(documentBytes)} MiB (${recordBytes} B/record)`,
      );
      const runs: RunFigures[] = [];
      for (let r = 0; r < plan.runs; r++) {
        const task: ChildTask = {
          kind: 'store',
          path: dir,
          size,
          writes: plan.writes(size),
          rounds: plan.rounds(size),
          seed: r + 1,
        };
        runs.push(await runChild(task));
        log(`store ${size} run ${r + 1}/${plan.runs}: ${JSON.stringify(round(runs.at(-1)!))}`);
      }
      const finalBytes = (await stat(join(dir, 'keywright.json'))).size;
      results.push({
        kind: 'store',
        records: size,
        documentMiB: mib(finalBytes),
        recordBytes,
        writes: plan.writes(size),
        concurrentWrites: CONCURRENCY * plan.rounds(size),
        runs,
        summary: summarize(runs),
      });
      await rm(dir, { recursive: true, force: true });
    }
    for (const size of plan.baselineSizes) {
      const file = join(root, `baseline-${size}.json`);
      const { documentBytes } = await populateBaseline(file, size);
      const writes = Math.min(plan.writes(size), size <= 1_000 ? 100 : 30);
      const rounds = size <= 1_000 ? plan.rounds(size) : 1;
      const runs: RunFigures[] = [];
      for (let r = 0; r < plan.runs; r++) {
        runs.push(await runChild({ kind: 'baseline', path: file, size, writes, rounds, seed: r + 1 }));
        log(`baseline ${size} run ${r + 1}/${plan.runs}: ${JSON.stringify(round(runs.at(-1)!))}`);
      }
      results.push({
        kind: 'baseline',
        records: size,
        documentMiB: mib(documentBytes),
        writes,
        concurrentWrites: CONCURRENCY * rounds,
        runs,
        summary: summarize(runs),
      });
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  return {
    table: render(results, plan),
    json: {
      plan: { ...plan, writes: undefined, rounds: undefined },
      results,
      targets: checkTargets(results),
    },
  };
}

/** The targets of the issue, at 10k records. */
const TARGETS = { records: 10_000, writeP99Ms: 100, stallMaxMs: 50, rssMiB: 400, startupMs: 2000 };

function checkTargets(results: SizeResult[]) {
  const r = results.find((x) => x.kind === 'store' && x.records === TARGETS.records);
  if (r === undefined) return null;
  const s = r.summary;
  return {
    writeP99: {
      target: TARGETS.writeP99Ms,
      median: s.writeP99Ms!.median,
      met: s.writeP99Ms!.median <= TARGETS.writeP99Ms,
    },
    stallMax: {
      target: TARGETS.stallMaxMs,
      median: s.stallMaxMs!.median,
      met: s.stallMaxMs!.median <= TARGETS.stallMaxMs,
    },
    peakRss: {
      target: TARGETS.rssMiB,
      median: s.peakRssMiB!.median,
      met: s.peakRssMiB!.median <= TARGETS.rssMiB,
    },
    startup: {
      target: TARGETS.startupMs,
      median: s.startupMs!.median,
      met: s.startupMs!.median <= TARGETS.startupMs,
    },
  };
}

const COLUMNS: [keyof RunFigures, string][] = [
  ['startupMs', 'start-up ms'],
  ['rssAfterLoadMiB', 'RSS load MiB'],
  ['peakRssMiB', 'peak RSS MiB'],
  ['writeP50Ms', 'write p50 ms'],
  ['writeP99Ms', 'write p99 ms'],
  ['concP50Ms', '16× p50 ms'],
  ['concP99Ms', '16× p99 ms'],
  ['txPerFlush', 'tx/flush 16×'],
  ['stallMaxMs', 'stall max ms'],
  ['stallP99Ms', 'stall p99 ms'],
];

function render(results: SizeResult[], plan: Plan): string {
  const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  const cell = (s: Spread | null) =>
    s === null ? '–' : plan.runs === 1 ? fmt(s.median) : `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
  const header = ['impl', 'records', 'doc MiB', ...COLUMNS.map(([, label]) => label)];
  const rows: string[][] = [];
  for (const r of results) {
    rows.push([
      r.kind === 'store' ? 'keywright lowdb' : 'raw JSONFile',
      String(r.records),
      fmt(r.documentMiB),
      ...COLUMNS.map(([k]) => cell(r.summary[k])),
    ]);
  }
  for (const base of results.filter((r) => r.kind === 'baseline')) {
    const ours = results.find((r) => r.kind === 'store' && r.records === base.records);
    if (ours === undefined) continue;
    const ratio = (k: keyof RunFigures) => {
      const b = base.summary[k];
      const o = ours.summary[k];
      return b === null || o === null || o.median === 0 ? '–' : `${(b.median / o.median).toFixed(1)}×`;
    };
    rows.push([
      'JSONFile ÷ ours',
      String(base.records),
      (base.documentMiB / ours.documentMiB).toFixed(1) + '×',
      ...COLUMNS.map(([k]) => ratio(k)),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const notes = [
    `median (min–max) over ${plan.runs} fresh process(es) per row; "write" = one issuance-like tx (record update + 2 blob puts) for keywright, one db.update pushing a 3 KB record for raw JSONFile`,
    `16× = ${CONCURRENCY} concurrent writers; tx/flush = transactions per journal append in that phase (group commit); keywright runs with a compaction (journal folded into the document and blob files) always in progress, the worst case; stall = monitorEventLoopDelay during all writes`,
    'keywright fdatasyncs the journal line holding the record and both blobs before acknowledging (compaction then writes blob files and the document, each fsynced); raw JSONFile never fsyncs. Raw JSONFile at 50k is not run (minutes per run; see perf-anchors §4 for 100k)',
  ];
  const targets = checkTargets(results);
  if (targets !== null) {
    notes.push(
      `targets at 10k: ${Object.entries(targets)
        .map(([k, v]) => `${k} ${fmt(v.median)} ≤ ${v.target} ${v.met ? 'met' : 'MISSED'}`)
        .join('; ')}`,
    );
  }
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), '', ...notes].join('\n');
}

const mib = (bytes: number) => bytes / MiB;
const log = (msg: string) => console.error(`  ${msg}`);
const round = (f: RunFigures) =>
  Object.fromEntries(Object.entries(f).map(([k, v]) => [k, v === null ? null : Math.round(v * 100) / 100]));

if (process.argv[2] === '--child' && resolve(process.argv[1] ?? '') === import.meta.filename) {
  const figures = await measure(JSON.parse(process.argv[3]!) as ChildTask);
  process.stdout.write(`RESULT ${JSON.stringify(figures)}\n`);
}
