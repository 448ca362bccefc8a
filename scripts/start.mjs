#!/usr/bin/env node
// `npm start [-- args]`: builds dist/ only when it is missing or older than its sources, then runs
// `keywright serve --init args` in this process. `npm ci` has built dist already (through `prepare`), so
// a fresh checkout starts serving at once instead of compiling everything a second time (11–16 s here).
//
// Stale means: a src/**/*.ts without its dist/**/*.js, or with one older than the source or than
// tsconfig.json / tsconfig.build.json. With isolatedModules each output depends only on its own source
// and the compiler options, so per-file mtimes are enough. (Sources copied in with their old mtimes kept,
// e.g. by `cp -p` or `tar`, are not seen: run `npm run build` after such a copy.)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

/** Why dist/ must be rebuilt, or undefined when it is up to date. */
function staleReason() {
  const src = join(root, 'src');
  const dist = join(root, 'dist');
  const configMs = Math.max(
    ...['tsconfig.json', 'tsconfig.build.json'].map((f) => statSync(join(root, f)).mtimeMs),
  );
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.d.ts')) continue;
    const source = join(entry.parentPath, entry.name);
    const output = join(dist, relative(src, source)).replace(/\.ts$/, '.js');
    const built = statSync(output, { throwIfNoEntry: false });
    if (built === undefined) return `${relative(root, output)} is missing`;
    if (built.mtimeMs < Math.max(statSync(source).mtimeMs, configMs))
      return `${relative(root, output)} is older than its source or the tsconfig`;
  }
  return undefined;
}

const reason = staleReason();
if (reason !== undefined) {
  process.stderr.write(`keywright: ${reason}; building (npm run build)\n`);
  const build = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
process.argv.splice(2, 0, 'serve', '--init');
await import('../bin/keywright.js');
