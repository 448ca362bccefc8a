import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readLastLine, readLogLines } from '../../../src/audit/lines.js';
import { tempDir } from '../../helpers/tmp.js';

test('readLastLine finds the final line from the end, as a forward read would, whatever its length', async (t) => {
  const dir = await tempDir(t);
  const long = 'x'.repeat(150_000); // spans three 64 KiB reads
  const cases: [string, string][] = [
    ['empty', ''],
    ['one terminated line', '{"a":1}\n'],
    ['one line without newline', '{"a":1}'],
    ['only a newline', '\n'],
    ['several lines', 'one\ntwo\nthree\n'],
    ['a torn tail', 'one\ntwo\nthr'],
    ['a long last line', `one\n${long}\n`],
    ['a long torn tail', `one\n${long}`],
    ['a long first line, short last', `${long}\nlast\n`],
    ['multi-byte characters across a read', `a\n${'é'.repeat(40_000)}ü\n`],
  ];
  for (const [label, content] of cases) {
    const path = join(dir, `${label.replace(/\W+/g, '-')}.log`);
    await writeFile(path, content);
    const forward = [];
    for await (const l of readLogLines(path)) forward.push(l);
    const expected = forward.at(-1);
    const { size, last } = await readLastLine(path);
    assert.equal(size, Buffer.byteLength(content), label);
    if (expected === undefined) assert.equal(last, undefined, label);
    else {
      const { line: _line, ...rest } = expected;
      assert.deepEqual(last, rest, label);
    }
  }
});
