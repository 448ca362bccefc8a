import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DocumentFile, toStoreDocument } from '../../../src/store/lowdb/document-file.js';

test('a loaded document re-encodes byte for byte as JSON.stringify would, odd ids included', () => {
  const text =
    '{"schemaVersion":3,"collections":{"certs":{' +
    '"web":{"id":"web","sans":["a","b"],"nested":{"n":1.5,"ok":true,"none":null}},' +
    '"10":{"id":"10","text":"quote \\" backslash \\\\ newline \\n ünïcødé \\u2028"},' +
    '"2":{"id":"2"},"__proto__":{"id":"__proto__"},"constructor":{"id":"constructor"}},' +
    '"empty":{},"9lives":{"x":{"id":"x"}}}}';
  const parsed = JSON.parse(text) as {
    schemaVersion: number;
    collections: Record<string, Record<string, unknown>>;
  };
  assert.ok(
    Object.hasOwn(parsed.collections.certs!, '__proto__'),
    'JSON.parse keeps __proto__ as an own key',
  );
  const doc = toStoreDocument(parsed, 'test.json');
  const file = new DocumentFile('/nonexistent/keywright.json');
  const expected = JSON.stringify(parsed);
  assert.equal(file.encode(doc).toString('utf8'), expected);
  // a second encode comes from the cache and is the same
  assert.equal(file.encode(doc).toString('utf8'), expected);
  // replacing a record (as a commit does) is picked up
  doc.collections.get('certs')!.set('web', { id: 'web', changed: true } as never);
  const reparsed = JSON.parse(file.encode(doc).toString('utf8')) as typeof parsed;
  assert.deepEqual(reparsed.collections.certs!.web, { id: 'web', changed: true });
});
