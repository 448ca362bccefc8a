#!/usr/bin/env node
// Runs one or more test tiers (unit, integration, e2e) with node's test runner and tsx.
// Usage: node scripts/run-tests.mjs unit [integration e2e] [-- file-filter]
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

const args = process.argv.slice(2);
const dash = args.indexOf('--');
const tiers = (dash === -1 ? args : args.slice(0, dash)).filter(Boolean);
const filter = dash === -1 ? undefined : args[dash + 1];
if (tiers.length === 0) tiers.push('unit');

function walk(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

let files = tiers.flatMap((t) => walk(join('test', t))).sort();
if (filter) files = files.filter((f) => f.includes(filter));
if (files.length === 0) {
  console.error(`no test files for ${tiers.join(', ')}${filter ? ` matching ${filter}` : ''}`);
  process.exit(1);
}
// Integration and e2e tests start servers and peers: fewer at once on a 2-core machine.
const concurrency = tiers.includes('unit') && tiers.length === 1 ? Math.max(2, availableParallelism()) : 2;
const res = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    '--test-reporter=spec',
    ...files.map((f) => relative('.', f)),
  ],
  { stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
process.exit(res.status ?? 1);
