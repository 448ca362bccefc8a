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

test('warm caches record encodings a slice at a time; encode then encodes nothing new', () => {
  const records = Array.from({ length: 1100 }, (_, i) => ({ id: `r${i}`, n: i }));
  const doc = toStoreDocument(
    { schemaVersion: 1, collections: { certs: Object.fromEntries(records.map((r) => [r.id, r])) } },
    'test.json',
  );
  const file = new DocumentFile('/nonexistent/keywright.json');
  const it = doc.collections.get('certs')!.values();
  assert.deepEqual(
    [file.warm(it, 500), file.warm(it, 500), file.warm(it, 500), file.warm(it, 500)],
    [500, 500, 100, 0],
  );
  assert.equal(file.encodedRecords, 1100);
  const bytes = file.encode(doc);
  assert.equal(file.encodedRecords, 1100, 'every record came from the cache');
  assert.equal(
    bytes.toString('utf8'),
    JSON.stringify({
      schemaVersion: 1,
      collections: { certs: Object.fromEntries(records.map((r) => [r.id, r])) },
    }),
  );
  assert.equal(file.warm(doc.collections.get('certs')!.values(), 2000), 1100);
  assert.equal(file.encodedRecords, 1100, 'warming cached records again encodes nothing');
});
