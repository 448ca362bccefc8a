import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { LINT_RULES } from '../../../src/ca/lint.js';

test('docs/ca.md lists every lint rule, and no rule that does not exist', async () => {
  const doc = await readFile(new URL('../../../docs/ca.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Lint'), doc.indexOf('## CRLs'));
  const documented = [...section.matchAll(/^\| `([a-z0-9_]+)` +\|/gm)].map((m) => m[1]);
  assert.deepEqual(documented.sort(), LINT_RULES.map((r) => r.name).sort());
});
