/**
 * `npm run bench [-- --quick] [name...]`: runs the benchmarks, prints each one's table and writes its
 * figures to bench/results/<name>.json (<name>.quick.json for a --quick smoke run, so a smoke run never
 * overwrites the figures of a full one). To add a benchmark, add one line to BENCHES.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface BenchOptions {
  /** A smoke run (about 100 s for all six on 2 cores): smallest size only, fewer and shorter samples. */
  readonly quick: boolean;
}

export interface BenchResult {
  readonly table: string;
  readonly json: unknown;
}

export type Bench = (options: BenchOptions) => Promise<BenchResult>;

const BENCHES: Record<string, () => Promise<Bench>> = {
  store: async () => (await import('./store.js')).storeBench,
  bundle: async () => (await import('./bundle.js')).bundleBench,
  ca: async () => (await import('./ca.js')).caBench,
  peers: async () => (await import('./peers.js')).peersBench,
  acme: async () => (await import('./acme.js')).acmeBench,
  startup: async () => (await import('./startup.js')).startupBench,
};

async function main(argv: string[]): Promise<void> {
  const quick = argv.includes('--quick');
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !(n in BENCHES));
  if (unknown.length > 0) {
    throw new Error(`unknown benchmark ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
  }
  const selected = names.length > 0 ? names : Object.keys(BENCHES);
  const resultsDir = join(import.meta.dirname, 'results');
  await mkdir(resultsDir, { recursive: true });
  for (const name of selected) {
    const bench = await BENCHES[name]!();
    const started = Date.now();
    console.log(`# ${name}${quick ? ' (quick)' : ''}`);
    const result = await bench({ quick });
    console.log(result.table);
    const file = join(resultsDir, `${name}${quick ? '.quick' : ''}.json`);
    const meta = { bench: name, quick, node: process.version, at: new Date().toISOString() };
    await writeFile(file, `${JSON.stringify({ ...meta, ...(result.json as object) }, null, 2)}\n`);
    console.log(`\n${name}: ${((Date.now() - started) / 1000).toFixed(0)} s; figures in ${file}\n`);
  }
}

await main(process.argv.slice(2));
