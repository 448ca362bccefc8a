import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { FileTarget } from '../../../src/deploy/file-target.js';
import { pemFingerprint, type DeployContext } from '../../../src/deploy/port.js';
import { tempDir } from '../../helpers/tmp.js';
import { testCa, type TestCa } from './material.js';

const ctx: DeployContext = { clock: new FakeClock(), logger: silentLogger, earlierChanged: false, files: [] };
const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

function refused(fn: () => unknown, code: string, field: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isAppError(err), String(err));
    assert.equal(err.code, code);
    assert.equal(err.details.field, field);
    assert.match(err.message, new RegExp(field.replace(/[.[\]]/g, '\\$&')));
    return true;
  });
}

describe('file target', () => {
  let ca: TestCa;
  before(async () => {
    ca = await testCa();
  });

  test("writes certbot's four files, key 0600 and the rest 0644, then answers unchanged", async (t) => {
    const base = await tempDir(t);
    const dir = join(base, 'web');
    const artifact = await ca.leaf(['web.test'], 1);
    const target = new FileTarget({ dir, allowedDirs: [base] });
    const first = await target.deploy(artifact, ctx);
    assert.equal(first.outcome, 'deployed');
    assert.deepEqual((await readdir(dir)).sort(), ['cert.pem', 'chain.pem', 'fullchain.pem', 'privkey.pem']);
    assert.equal(await readFile(join(dir, 'cert.pem'), 'utf8'), artifact.certificatePem);
    assert.equal(await readFile(join(dir, 'chain.pem'), 'utf8'), ca.rootPem);
    assert.equal(await readFile(join(dir, 'fullchain.pem'), 'utf8'), artifact.certificatePem + ca.rootPem);
    assert.match(await readFile(join(dir, 'privkey.pem'), 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    assert.equal(await mode(join(dir, 'privkey.pem')), 0o600);
    assert.equal(await mode(join(dir, 'cert.pem')), 0o644);
    assert.equal(await mode(join(dir, 'fullchain.pem')), 0o644);
    assert.equal(pemFingerprint(await readFile(join(dir, 'cert.pem'), 'utf8')), artifact.fingerprint);
    assert.deepEqual(first.files, {
      dir,
      cert: join(dir, 'cert.pem'),
      chain: join(dir, 'chain.pem'),
      fullchain: join(dir, 'fullchain.pem'),
      privkey: join(dir, 'privkey.pem'),
    });
    assert.ok(!first.detail.includes('PRIVATE KEY'));

    const second = await target.deploy(artifact, ctx);
    assert.equal(second.outcome, 'unchanged');
    assert.deepEqual(second.files, first.files, 'exec still gets the paths when nothing changed');
    assert.deepEqual(await target.verify(artifact), {
      ok: true,
      detail: `${join(dir, 'cert.pem')} holds version 1`,
    });

    const next = await ca.leaf(['web.test'], 2);
    assert.equal((await target.deploy(next, ctx)).outcome, 'deployed');
    assert.equal(pemFingerprint(await readFile(join(dir, 'cert.pem'), 'utf8')), next.fingerprint);
    assert.equal((await target.verify(artifact)).ok, false);
  });

  test('a changed mode or a damaged file is rewritten, not reported unchanged', async (t) => {
    const base = await tempDir(t);
    const artifact = await ca.leaf(['web.test'], 1);
    const target = new FileTarget({ dir: base, allowedDirs: [base], mode: 0o640 });
    await target.deploy(artifact, ctx);
    assert.equal(await mode(join(base, 'cert.pem')), 0o640);
    await writeFile(join(base, 'chain.pem'), 'garbage');
    assert.equal((await target.deploy(artifact, ctx)).outcome, 'deployed');
    assert.equal(await readFile(join(base, 'chain.pem'), 'utf8'), ca.rootPem);
  });

  test('custom names, no key file, no temp files left behind', async (t) => {
    const base = await tempDir(t);
    const artifact = await ca.leaf(['web.test'], 1);
    const target = new FileTarget({
      dir: base,
      allowedDirs: [base],
      names: { cert: 'site.crt', fullchain: 'site-full.crt' },
      includeKey: false,
    });
    const result = await target.deploy(artifact, ctx);
    assert.deepEqual((await readdir(base)).sort(), ['chain.pem', 'site-full.crt', 'site.crt']);
    assert.equal(result.files?.privkey, undefined);
  });

  test('an artifact without a key (issued from a CSR) writes no key file', async (t) => {
    const base = await tempDir(t);
    const { privateKey: _drop, ...withoutKey } = await ca.leaf(['web.test'], 1);
    await new FileTarget({ dir: base, allowedDirs: [base] }).deploy(withoutKey, ctx);
    assert.ok(!(await readdir(base)).includes('privkey.pem'));
  });

  test('a directory outside the allowed ones is refused, naming the field', async (t) => {
    const base = await tempDir(t);
    const field = 'certificates[0].deploy[0].file';
    refused(
      () => new FileTarget({ dir: '/etc/elsewhere', allowedDirs: [base], field }),
      'DEPLOY_TARGET_INVALID',
      `${field}.dir`,
    );
    refused(
      () => new FileTarget({ dir: join(base, '..', 'sibling'), allowedDirs: [base], field }),
      'DEPLOY_TARGET_INVALID',
      `${field}.dir`,
    );
    refused(
      () => new FileTarget({ dir: 'relative/dir', allowedDirs: [base], field }),
      'DEPLOY_TARGET_INVALID',
      `${field}.dir`,
    );
    refused(
      () => new FileTarget({ dir: `${base}-evil`, allowedDirs: [base], field }),
      'DEPLOY_TARGET_INVALID',
      `${field}.dir`,
    );
    refused(
      () => new FileTarget({ dir: base, allowedDirs: [base], names: { cert: '../x.pem' }, field }),
      'DEPLOY_TARGET_INVALID',
      `${field}.names.cert`,
    );
    refused(
      () =>
        new FileTarget({
          dir: base,
          allowedDirs: [base],
          names: { cert: 'same.pem', chain: 'same.pem' },
          field,
        }),
      'DEPLOY_TARGET_INVALID',
      `${field}.names.chain`,
    );
    refused(
      () => new FileTarget({ dir: base, allowedDirs: [], field }),
      'DEPLOY_TARGET_INVALID',
      `${field}.dir`,
    );
  });

  test('a symlink inside the allowed directory cannot lead the write outside', async (t) => {
    const allowed = await tempDir(t);
    const outside = await tempDir(t);
    await symlink(outside, join(allowed, 'link'));
    const target = new FileTarget({ dir: join(allowed, 'link', 'web'), allowedDirs: [allowed] });
    await assert.rejects(target.deploy(await ca.leaf(['web.test'], 1), ctx), (err: unknown) => {
      assert.ok(isAppError(err, 'DEPLOY_TARGET_INVALID'));
      return true;
    });
    assert.deepEqual(await readdir(outside), []);
  });

  test('owner and group are applied when running as root (numeric ids)', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to chown');
    const base = await tempDir(t);
    const dir = join(base, 'svc');
    const target = new FileTarget({ dir, allowedDirs: [base], owner: '65534', group: '65534' });
    const artifact = await ca.leaf(['web.test'], 1);
    await target.deploy(artifact, ctx);
    for (const name of ['cert.pem', 'privkey.pem']) {
      const st = await stat(join(dir, name));
      assert.equal(st.uid, 65534);
      assert.equal(st.gid, 65534);
    }
    assert.equal((await stat(dir)).uid, 65534);
    assert.equal((await target.deploy(artifact, ctx)).outcome, 'unchanged');
  });

  test('owner names resolve from the passwd file; an unknown one names the field', async (t) => {
    const base = await tempDir(t);
    const passwd = join(base, 'passwd');
    const group = join(base, 'group');
    await writeFile(passwd, 'root:x:0:0::/root:/bin/sh\nsvc:x:4242:4242::/:/bin/false\n');
    await writeFile(group, 'root:x:0:\nsvc:x:4343:\n');
    const dir = join(base, 'out');
    const uid = process.getuid?.() === 0 ? 4242 : undefined;
    const target = new FileTarget({
      dir,
      allowedDirs: [base],
      owner: 'svc',
      group: 'svc',
      asRoot: uid !== undefined,
      idFiles: { passwd, group },
      field: 'f',
    });
    await target.deploy(await ca.leaf(['web.test'], 1), ctx);
    if (uid !== undefined) assert.equal((await stat(join(dir, 'cert.pem'))).gid, 4343);
    const unknown = new FileTarget({
      dir,
      allowedDirs: [base],
      owner: 'nobody-here',
      asRoot: true,
      idFiles: { passwd, group },
      field: 'f',
    });
    await assert.rejects(unknown.deploy(await ca.leaf(['web.test'], 2), ctx), (err: unknown) => {
      assert.ok(isAppError(err, 'DEPLOY_TARGET_INVALID'));
      assert.equal(err.details.field, 'f.owner');
      return true;
    });
  });

  test('not root: owner/group are skipped, the files are still written', async (t) => {
    const base = await tempDir(t);
    const target = new FileTarget({ dir: base, allowedDirs: [base], owner: 'nobody-here', asRoot: false });
    assert.equal((await target.deploy(await ca.leaf(['web.test'], 1), ctx)).outcome, 'deployed');
  });

  test('undo restores the previous files and removes ones that did not exist', async (t) => {
    const base = await tempDir(t);
    const v1 = await ca.leaf(['web.test'], 1);
    const v2 = await ca.leaf(['web.test'], 2);
    await new FileTarget({ dir: base, allowedDirs: [base], includeKey: false }).deploy(v1, ctx);
    const before = await readFile(join(base, 'cert.pem'), 'utf8');
    const target = new FileTarget({ dir: base, allowedDirs: [base], rollback: true });
    const result = await target.deploy(v2, ctx);
    assert.ok(result.undo);
    assert.equal(pemFingerprint(await readFile(join(base, 'cert.pem'), 'utf8')), v2.fingerprint);
    await result.undo.restore();
    assert.equal(await readFile(join(base, 'cert.pem'), 'utf8'), before);
    assert.ok(
      !(await readdir(base)).includes('privkey.pem'),
      'the key file that did not exist is gone again',
    );
  });

  test('a write failure is DEPLOY_FAILED and retryable, naming the directory', async (t) => {
    const base = await tempDir(t);
    await mkdir(join(base, 'web'));
    await mkdir(join(base, 'web', 'cert.pem')); // a directory where the file should go
    const target = new FileTarget({ dir: join(base, 'web'), allowedDirs: [base] });
    await assert.rejects(target.deploy(await ca.leaf(['web.test'], 1), ctx), (err: unknown) => {
      assert.ok(isAppError(err, 'DEPLOY_FAILED'));
      assert.equal(err.retryable, true);
      assert.match(err.message, /file target: writing .*web failed/);
      return true;
    });
  });

  test('the artifact never shows its key when logged or serialized', async () => {
    const artifact = await ca.leaf(['web.test'], 1);
    const shown = [
      JSON.stringify(artifact),
      inspect(artifact, { depth: 5 }),
      String(artifact.privateKey),
      `${String(artifact.privateKey)}`,
      [artifact.privateKey].join(''),
    ];
    for (const text of shown) {
      assert.ok(!text.includes('PRIVATE KEY'), text.slice(0, 200));
      assert.ok(text.includes('[private key redacted]'));
    }
    assert.match(artifact.privateKey!.reveal().toString(), /BEGIN PRIVATE KEY/);
  });
});
