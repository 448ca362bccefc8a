/**
 * The pull agent against a real daemon over HTTPS: files with certbot's names and modes, the reload
 * command only on change, the long poll picking up a renewal, a daemon restart survived, sealed
 * delivery, and refusals that write nothing.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runAgent, ephemeralSealKey, type PullOutcome } from '../../../src/agent/index.js';
import { isAppError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import { tempDir } from '../../helpers/tmp.js';
import { createCertificate, renew, startTestDaemon, type TestDaemon } from './daemon.js';

/** A reload command that appends one line per run: the version it was told about. */
function recorder(file: string): string[] {
  return [
    process.execPath,
    '-e',
    'require("node:fs").appendFileSync(process.argv[1], process.env.KEYWRIGHT_CERT_VERSION + "\\n")',
    file,
  ];
}

async function runs(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

async function fingerprintIn(dir: string): Promise<string> {
  const pem = await readFile(join(dir, 'cert.pem'), 'utf8');
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

async function exportsOf(d: TestDaemon, name: string): Promise<number> {
  const r = await d.call('GET', '/v1/audit?action=key.export&limit=1000', { token: d.adminToken });
  return (r.json.entries as Array<{ subject: string }>).filter((e) => e.subject === `cert:${name}`).length;
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('keywright agent', () => {
  test('--once writes certbot files (key 0600), runs the command, then does nothing when nothing changed', async (t) => {
    const d = await startTestDaemon(t);
    const v1 = await createCertificate(d, 'web');
    const token = await d.token('service', ['cert:web']);
    const dir = await tempDir(t, 'kw-agent-');
    const out = join(dir, 'live', 'web');
    const marker = join(dir, 'reloads');
    const base = {
      server: d.url,
      ca: d.ca,
      token,
      certificate: 'web',
      outDir: out,
      exec: recorder(marker),
      once: true,
    };

    const first = await runAgent(base, { logger: silentLogger });
    assert.deepEqual(
      { changed: first?.changed, reloaded: first?.reloaded, version: first?.version },
      { changed: true, reloaded: true, version: v1.version },
    );
    assert.deepEqual((await readdir(out)).filter((f) => !f.startsWith('.')).sort(), [
      'cert.pem',
      'chain.pem',
      'fullchain.pem',
      'privkey.pem',
    ]);
    assert.equal((await stat(join(out, 'privkey.pem'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(out, 'cert.pem'))).mode & 0o777, 0o644);
    assert.equal(await fingerprintIn(out), v1.fingerprint);
    const fullchain = await readFile(join(out, 'fullchain.pem'), 'utf8');
    assert.equal(
      fullchain,
      (await readFile(join(out, 'cert.pem'), 'utf8')) + (await readFile(join(out, 'chain.pem'), 'utf8')),
    );
    assert.deepEqual(await runs(marker), [String(v1.version)]);
    assert.equal(await exportsOf(d, 'web'), 1);
    const state = await readFile(join(out, '.keywright-agent.json'), 'utf8');
    assert.doesNotMatch(state, /PRIVATE|kw_/, 'the state file holds no secret');

    const second = await runAgent(base, { logger: silentLogger });
    assert.deepEqual(
      { changed: second?.changed, reloaded: second?.reloaded },
      { changed: false, reloaded: false },
    );
    assert.deepEqual(await runs(marker), [String(v1.version)], 'no reload when nothing changed');
    assert.equal(await exportsOf(d, 'web'), 1, 'a current agent gets a 304: nothing exported');

    const v2 = await renew(d, 'web');
    const third = await runAgent(base, { logger: silentLogger });
    assert.equal(third?.changed, true);
    assert.equal(await fingerprintIn(out), v2.fingerprint);
    assert.deepEqual(await runs(marker), [String(v1.version), String(v2.version)]);
  });

  test('watching: a renewal is written and reloaded within seconds; a daemon restart is survived', async (t) => {
    const d = await startTestDaemon(t);
    await createCertificate(d, 'api');
    const token = await d.token('service', ['cert:api']);
    const dir = await tempDir(t, 'kw-agent-');
    const out = join(dir, 'api');
    const marker = join(dir, 'reloads');
    const abort = new AbortController();
    t.after(() => abort.abort());
    const pulls: PullOutcome[] = [];
    const agent = runAgent(
      {
        server: d.url,
        ca: d.ca,
        token,
        certificate: 'api',
        outDir: out,
        exec: recorder(marker),
        waitSeconds: 30,
        backoff: { baseMs: 100, maxMs: 400 },
      },
      { logger: silentLogger, signal: abort.signal, onPull: (o) => pulls.push(o) },
    );
    await until('the first pull', () => pulls.length >= 1);
    await new Promise((r) => setTimeout(r, 300)); // now it is long-polling

    const renewedAt = Date.now();
    const v2 = await renew(d, 'api');
    await until('the renewal on disk', async () => (await runs(marker)).length === 2);
    assert.ok(Date.now() - renewedAt < 3000, `reloaded ${Date.now() - renewedAt} ms after the renewal`);
    assert.equal(await fingerprintIn(out), v2.fingerprint);

    // The daemon goes away and comes back on the same port; the files stay, the agent reconnects.
    await d.stop();
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(await fingerprintIn(out), v2.fingerprint, 'the last good files stay in place');
    await d.start();
    await new Promise((r) => setTimeout(r, 1000)); // back-off ≤ 400 ms: it is long-polling again
    const v3 = await renew(d, 'api');
    await until('the renewal after the restart', async () => (await runs(marker)).length === 3, 15_000);
    assert.equal(await fingerprintIn(out), v3.fingerprint);
    assert.deepEqual((await runs(marker)).slice(1), [String(v2.version), String(v3.version)]);

    abort.abort();
    await agent;
  });

  test('sealed delivery: the agent opens the bundle with a key held only in memory', async (t) => {
    const d = await startTestDaemon(t);
    const v1 = await createCertificate(d, 'vault');
    const token = await d.token('service', ['cert:vault']);
    const out = join(await tempDir(t, 'kw-agent-'), 'vault');
    const outcome = await runAgent(
      {
        server: d.url,
        ca: d.ca,
        token,
        certificate: 'vault',
        outDir: out,
        once: true,
        sealKey: await ephemeralSealKey(),
      },
      { logger: silentLogger },
    );
    assert.equal(outcome?.changed, true);
    assert.equal(await fingerprintIn(out), v1.fingerprint);
    const r = await d.call('GET', '/v1/audit?action=key.export', { token: d.adminToken });
    const e = (r.json.entries as Array<{ subject: string; details: { format: string } }>).find(
      (x) => x.subject === 'cert:vault',
    );
    assert.equal(e?.details.format, 'sealed');
  });

  test('refusals write nothing: unwritable --out, a token for another certificate, an unknown certificate', async (t) => {
    const d = await startTestDaemon(t);
    await createCertificate(d, 'web');
    await createCertificate(d, 'db');
    const webToken = await d.token('service', ['cert:web']);
    const dir = await tempDir(t, 'kw-agent-');
    const notADir = join(dir, 'file');
    await writeFile(notADir, 'x');

    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['unwritable out', { certificate: 'web', outDir: join(notADir, 'web') }, 'AGENT_OUTPUT_UNWRITABLE'],
      ['another certificate', { certificate: 'db', outDir: join(dir, 'db') }, 'ACCESS_DENIED'],
      ['unknown certificate', { certificate: 'nope', outDir: join(dir, 'nope') }, 'ACCESS_DENIED'],
      [
        'bad token',
        { certificate: 'web', outDir: join(dir, 'web'), token: `kw_${'B'.repeat(43)}` },
        'AUTH_INVALID',
      ],
    ];
    for (const [what, extra, code] of cases) {
      await assert.rejects(
        runAgent(
          { server: d.url, ca: d.ca, token: webToken, once: true, certificate: 'web', outDir: dir, ...extra },
          { logger: silentLogger },
        ),
        (err) => isAppError(err) && err.code === code,
        what,
      );
      const out = extra.outDir as string;
      const left = await readdir(out).catch(() => []);
      assert.deepEqual(left, [], `${what}: nothing written in ${out}`);
    }
    assert.equal(await exportsOf(d, 'web'), 0);
    assert.equal(await exportsOf(d, 'db'), 0);
  });

  test('the daemon down with --once is a retryable DAEMON_UNREACHABLE, and files are kept', async (t) => {
    const d = await startTestDaemon(t);
    await createCertificate(d, 'web');
    const token = await d.token('service', ['cert:web']);
    const out = join(await tempDir(t, 'kw-agent-'), 'web');
    const base = { server: d.url, ca: d.ca, token, certificate: 'web', outDir: out, once: true };
    await runAgent(base, { logger: silentLogger });
    const before = await fingerprintIn(out);
    await d.stop();
    await assert.rejects(runAgent(base, { logger: silentLogger }), (err) => {
      return isAppError(err) && err.code === 'DAEMON_UNREACHABLE' && err.retryable;
    });
    assert.equal(await fingerprintIn(out), before);
  });
});
