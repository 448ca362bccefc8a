import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { ERROR_CATALOGUE } from '../../../src/core/errors.js';

test('docs/errors.md lists exactly the codes of ERROR_CATALOGUE, with their category and retry flag', async () => {
  const doc = await readFile(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, { category: string; retryable: boolean }>();
  for (const m of doc.matchAll(/^\| `([A-Z0-9_]+)` \| ([a-z_]+) \| (yes|no) \|/gm)) {
    rows.set(m[1]!, { category: m[2]!, retryable: m[3] === 'yes' });
  }
  const codes = Object.keys(ERROR_CATALOGUE);
  assert.deepEqual(
    [...rows.keys()].sort(),
    [...codes].sort(),
    'codes in docs/errors.md differ from src/core/errors.ts',
  );
  for (const [code, e] of Object.entries(ERROR_CATALOGUE)) {
    assert.deepEqual(rows.get(code), { category: e.category, retryable: e.retryable }, `row for ${code}`);
  }
});
