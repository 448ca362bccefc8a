import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/load.js';
import { configSchema } from '../../../src/config/schema.js';
import { isAppError } from '../../../src/core/errors.js';
import { tempDir } from '../../helpers/tmp.js';

const EXAMPLE = new URL('../../../config/keywright.example.yaml', import.meta.url);

async function rejects(
  promise: Promise<unknown>,
  code: string,
): Promise<{ message: string; details: Record<string, unknown> }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isAppError(err), `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code);
    return { message: err.message, details: err.details };
  }
  assert.fail(`expected ${code}`);
}

/** Every key path of the schema (objects only; list items by their element's keys). */
function schemaKeys(schema: unknown, prefix = ''): string[] {
  // zod 4 exposes the shape on .shape for objects; unwrap defaults, optionals, pipes and arrays.
  let s = schema as { def?: Record<string, unknown>; shape?: Record<string, unknown> };
  for (let i = 0; i < 10 && s.def && !s.shape; i++) {
    const d = s.def;
    s = d.innerType ?? d.in ?? d.element ?? d.schema ?? s;
    if (s === (d as unknown)) break;
  }
  if (!s.shape) return [];
  return Object.entries(s.shape).flatMap(([k, v]) => [prefix + k, ...schemaKeys(v, `${prefix}${k}.`)]);
}

describe('config', () => {
  test('defaults load with no file', async () => {
    const c = await loadConfig({ env: {} });
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 8443 });
    assert.equal(c.masterKey.source, 'file');
    assert.equal(c.ca.intermediate.name, 'default');
    assert.equal(c.ca.root.key, 'ec-p384');
    assert.equal(c.api.bodyLimit, 1024 * 1024);
    assert.ok(c.dataDir.startsWith('/'), 'dataDir is made absolute');
  });

  test('the example file parses and documents every key of the schema', async () => {
    const c = await loadConfig({ file: EXAMPLE.pathname, env: {} });
    assert.equal(c.certificates[0]?.name, 'web');
    assert.equal(c.certificates[0]?.lifetime, 90 * 86_400_000);
    const text = await readFile(EXAMPLE, 'utf8');
    const keys = schemaKeys(configSchema);
    assert.ok(
      keys.includes('acme.http01.listen') && keys.includes('certificates.renewBefore'),
      'schema walk reaches nested keys',
    );
    const missing = keys.filter((path) => !new RegExp(`\\b${path.split('.').pop()!}:`).test(text));
    assert.deepEqual(missing, [], 'keys missing from config/keywright.example.yaml');
  });

  test('env overrides the file and flags override env', async (t) => {
    const dir = await tempDir(t);
    const file = join(dir, 'kw.yaml');
    await writeFile(file, 'listen: 127.0.0.1:1000\nlog: { level: warn }\n');
    const c = await loadConfig({
      file,
      env: { KEYWRIGHT_LISTEN: '127.0.0.1:2000', KEYWRIGHT_LOG_LEVEL: 'debug' },
      overrides: [[['listen'], '127.0.0.1:3000']],
    });
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 3000 });
    assert.equal(c.log.level, 'debug');
  });

  test('every bad field is named with its path, unknown keys included', async (t) => {
    const dir = await tempDir(t);
    const file = join(dir, 'kw.yaml');
    await writeFile(
      file,
      [
        'listen: nowhere',
        'lisen: 1',
        'log: { level: loud }',
        'certificates:',
        '  - name: Web!',
        '    sans: []',
        '    lifetime: forever',
      ].join('\n'),
    );
    const { message, details } = await rejects(loadConfig({ file, env: {} }), 'CONFIG_INVALID');
    const paths = (details.issues as Array<{ path: string }>).map((i) => i.path).sort();
    assert.deepEqual(paths, [
      'certificates[0].lifetime',
      'certificates[0].name',
      'certificates[0].sans',
      'lisen',
      'listen',
      'log.level',
    ]);
    assert.match(message, /lisen: unknown key/);
    assert.match(message, /listen: expected HOST:PORT/);
    assert.match(message, /"forever" is not a duration/);
  });

  test('an unreadable or non-YAML file is CONFIG_UNREADABLE naming the file', async (t) => {
    const dir = await tempDir(t);
    const missing = join(dir, 'nope.yaml');
    assert.match(
      (await rejects(loadConfig({ file: missing, env: {} }), 'CONFIG_UNREADABLE')).message,
      /nope\.yaml/,
    );
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'a: [1, 2\nb: :');
    await rejects(loadConfig({ file: bad, env: {} }), 'CONFIG_UNREADABLE');
    const dup = join(dir, 'dup.yaml');
    await writeFile(dup, 'listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n');
    await rejects(loadConfig({ file: dup, env: {} }), 'CONFIG_UNREADABLE');
    const scalar = join(dir, 'scalar.yaml');
    await writeFile(scalar, '42\n');
    await rejects(loadConfig({ file: scalar, env: {} }), 'CONFIG_INVALID');
  });

  test('IPv6 listeners and masterKey variants', async () => {
    const c = await loadConfig({
      env: { KEYWRIGHT_LISTEN: '[::1]:9000', KEYWRIGHT_MASTER_KEY_SOURCE: 'env' },
    });
    assert.deepEqual(c.listen, { host: '::1', port: 9000 });
    assert.deepEqual(c.masterKey, { source: 'env', variable: 'KEYWRIGHT_MASTER_KEY' });
    await rejects(loadConfig({ env: { KEYWRIGHT_MASTER_KEY_SOURCE: 'vault' } }), 'CONFIG_INVALID');
    await rejects(loadConfig({ env: { KEYWRIGHT_LISTEN: '127.0.0.1:70000' } }), 'CONFIG_INVALID');
  });
});
