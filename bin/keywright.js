#!/usr/bin/env node
// The installed entry point: runs the compiled CLI (npm run build, which npm ci runs through "prepare").
import { existsSync } from 'node:fs';
const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('keywright: not built yet; run `npm run build` in the keywright checkout\n');
  process.exit(1);
}
await import(main.href);
