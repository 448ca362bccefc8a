import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { configSchema } from '../../../src/config/schema.js';
import { isAppError } from '../../../src/core/errors.js';
import { isWithin } from '../../../src/deploy/paths.js';
import { parseSecretRef, resolveSecret } from '../../../src/deploy/secret-ref.js';
import { createTargets } from '../../../src/deploy/targets.js';
import { signBody } from '../../../src/deploy/webhook-target.js';
import { tempDir } from '../../helpers/tmp.js';

function deployList(list: unknown[]) {
  const config = configSchema.parse({ certificates: [{ name: 'web', sans: ['web.test'], deploy: list }] });
  return config.certificates[0]!.deploy;
}

describe('createTargets', () => {
  test('builds each kind from config, with ids for deploy status', () => {
    const targets = createTargets(
      deployList([
        { file: { dir: '/etc/keywright/web' } },
        { exec: { command: ['nginx', '-s', 'reload'] } },
        { webhook: { url: 'https://hooks.example/cert?token=abc', secret: 'env:HOOK' } },
        { verify: { connect: '[::1]:8443' } },
      ]),
      { allowedDirs: ['/etc/keywright'], field: 'certificates[0].deploy' },
    );
    assert.deepEqual(
      targets.map((t) => t.id),
      ['file:/etc/keywright/web', 'exec:nginx', 'webhook:https://hooks.example/cert', 'verify:[::1]:8443'],
    );
  });

  test('a path outside the allowed directories names its config field', () => {
    assert.throws(
      () =>
        createTargets(deployList([{ exec: { command: ['true'] } }, { file: { dir: '/srv/x' } }]), {
          allowedDirs: ['/etc/keywright'],
          field: 'certificates[0].deploy',
        }),
      (err: unknown) => {
        assert.ok(isAppError(err, 'DEPLOY_TARGET_INVALID'));
        assert.equal(err.details.field, 'certificates[0].deploy[1].file.dir');
        assert.match(
          err.message,
          /^certificates\[0\]\.deploy\[1\]\.file\.dir: "\/srv\/x" is outside the allowed deploy directories \(\/etc\/keywright\)/,
        );
        return true;
      },
    );
  });

  test('an unknown target kind is refused by the schema, with its path', () => {
    const result = configSchema.safeParse({
      certificates: [{ name: 'web', sans: ['web.test'], deploy: [{ ftp: { host: 'x' } }] }],
    });
    assert.equal(result.success, false);
    assert.deepEqual(result.error.issues[0]?.path, ['certificates', 0, 'deploy', 0]);
  });

  test('the schema refuses an inline webhook secret, a bad mode and a file name with a slash', () => {
    for (const [bad, path] of [
      [{ webhook: { url: 'https://h.example/', secret: 'hunter2' } }, 'secret'],
      [{ file: { dir: '/etc/keywright/a', mode: 644 } }, 'mode'],
      [{ file: { dir: '/etc/keywright/a', names: { cert: 'a/b.pem' } } }, 'cert'],
      [{ webhook: { url: 'ftp://h.example/' } }, 'url'],
    ] as const) {
      const r = configSchema.safeParse({
        certificates: [{ name: 'web', sans: ['web.test'], deploy: [bad] }],
      });
      assert.equal(r.success, false, JSON.stringify(bad));
      assert.ok(
        JSON.stringify(r.error.issues).includes(`"${path}"`),
        `${path}: ${JSON.stringify(r.error.issues)}`,
      );
    }
    const modes = deployList([{ file: { dir: '/etc/keywright/a', mode: '0640', keyMode: 0o400 } }])[0]!;
    assert.ok('file' in modes);
    assert.equal(modes.file.mode, 0o640);
    assert.equal(modes.file.keyMode, 0o400);
  });
});

describe('paths and secrets', () => {
  test('isWithin', () => {
    assert.equal(isWithin('/etc/keywright', '/etc/keywright'), true);
    assert.equal(isWithin('/etc/keywright/a/b', '/etc/keywright'), true);
    assert.equal(isWithin('/etc/keywright-x', '/etc/keywright'), false);
    assert.equal(isWithin('/etc', '/etc/keywright'), false);
    assert.equal(isWithin('/etc/keywright/..x', '/etc/keywright'), true);
  });

  test('secret references resolve from the environment or a file (trailing newline dropped)', async (t) => {
    const dir = await tempDir(t);
    await writeFile(join(dir, 's'), 'from-file\n');
    assert.equal(
      (await resolveSecret(parseSecretRef('env:HOOK', 'f'), { HOOK: 'from-env' })).toString(),
      'from-env',
    );
    assert.equal(
      (await resolveSecret(parseSecretRef(`file:${join(dir, 's')}`, 'f'))).toString(),
      'from-file',
    );
    await assert.rejects(resolveSecret(parseSecretRef('env:MISSING', 'f'), {}), (err: unknown) => {
      assert.ok(isAppError(err, 'DEPLOY_FAILED'));
      assert.equal(err.retryable, false);
      assert.match(err.message, /env:MISSING is not set/);
      return true;
    });
  });

  test('an inline secret is refused without echoing it', () => {
    assert.throws(
      () => parseSecretRef('hunter2-secret', 'certificates[0].deploy[2].webhook.secret'),
      (err: unknown) =>
        isAppError(err, 'DEPLOY_TARGET_INVALID') &&
        !err.message.includes('hunter2') &&
        !JSON.stringify(err.details).includes('hunter2'),
    );
  });

  test('signature: sha256=<hex HMAC-SHA256 of the body> (RFC 4231 test case 2)', () => {
    assert.equal(
      signBody(Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?')),
      'sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
  });
});
