/**
 * ACME accounts declared in `acme.accounts`, against a real pebble and a real daemon: registered at start
 * with no manual step and used by a declared certificate, not registered twice across restarts, their
 * contact updated at the CA on reload, kept when no longer declared; a CA that is down (or trust that is
 * missing) at start does not stop the daemon, and the registration happens at the next reload or issue.
 * The start does not wait for them: a CA that accepts connections and never answers delays neither the
 * start nor the stop, and the background registration and an issue's share one newAccount.
 */
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { initDataDir } from '../../../src/app/init.js';
import { startDaemon, type RunningDaemon } from '../../../src/app/daemon.js';
import { parseConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { startPebble } from '../../helpers/pebble.js';
import { freePort } from '../../helpers/net.js';
import { httpsCall, type HttpsResult } from '../agent/daemon.js';
import { randomName } from './fixture.js';

interface Harness {
  readonly dir: string;
  /** The configuration the next start or reload reads. */
  config: Config;
  /** Replaces it (the raw form, as a YAML file would give it). */
  reconfigure(raw: Record<string, unknown>): void;
  daemon: RunningDaemon | undefined;
  readonly logs: string[];
  /** The `msg` of every log line so far. */
  messages(): string;
  start(): Promise<void>;
  stop(): Promise<void>;
  call(method: string, path: string, body?: unknown): Promise<HttpsResult>;
  /** `acme.account.register` entries in the audit log. */
  registrations(): Promise<number>;
  /** Successful audit entries of `action`, parsed. */
  succeeded(action: string): Promise<Array<{ details?: Record<string, unknown> }>>;
}

async function harness(t: TestContext, raw: (dataDir: string) => Record<string, unknown>): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'kw-acme-declared-'));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const parse = (r: Record<string, unknown>) =>
    parseConfig(
      {
        dataDir,
        listen: `127.0.0.1:${port}`,
        log: { level: 'info' },
        ca: { root: { key: 'ec-p256' } },
        ...r,
      },
      'test',
    );
  const first = parse(raw(dataDir));
  const init = await initDataDir({ config: first, secrets: {} });
  const ca = await readFile(init.rootCertificateFile, 'utf8');
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const h: Harness = {
    dir,
    config: first,
    reconfigure(r) {
      h.config = parse(r);
    },
    daemon: undefined,
    logs,
    messages: () =>
      logs
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { msg?: string }).msg ?? '')
        .join('\n'),
    async start() {
      h.daemon = await startDaemon({
        config: h.config,
        secrets: {},
        logDestination: sink,
        reloadConfig: async () => h.config,
      });
    },
    async stop() {
      const d = h.daemon;
      h.daemon = undefined;
      await d?.stop();
    },
    call: (method, path, body) =>
      httpsCall(`https://127.0.0.1:${port}`, ca, method, path, {
        token: init.adminToken,
        ...(body === undefined ? {} : { body }),
      }),
    async registrations() {
      return (await this.succeeded('acme.account.register')).length;
    },
    async succeeded(action: string) {
      const audit = await readFile(join(dataDir, 'audit.log'), 'utf8');
      return audit
        .split('\n')
        .filter((l) => l.includes(`"${action}"`) && l.includes('"success"'))
        .map((l) => JSON.parse(l) as { details?: Record<string, unknown> });
    },
  };
  t.after(async () => {
    await h.stop();
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  });
  return h;
}

interface AccountsView {
  accounts: Array<{ name: string; accountUrl: string; contact: string[]; declared: boolean; status: string }>;
  declared: Array<{ name: string; state: string; error?: { code: string; message: string } }>;
}

/** GET /v1/acme/accounts until no declared account is `pending` (the start registers in the background). */
async function settled(h: Harness, withinMs = 15_000): Promise<AccountsView> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    const view = (await h.call('GET', '/v1/acme/accounts')).json as AccountsView;
    if (!view.declared.some((d) => d.state === 'pending')) return view;
    if (performance.now() > deadline) assert.fail(`still pending: ${JSON.stringify(view.declared)}`);
    await sleep(50);
  }
}

describe('ACME accounts declared in configuration', () => {
  test('registered at start, used by a declared certificate, stable across restarts, contact updated on reload, kept when removed', async (t) => {
    const pebble = await startPebble(t);
    if (!pebble) return;
    const caFile = join(pebble.dir, 'tls-ca.pem');
    await writeFile(caFile, pebble.tlsCaPem);
    const account = (email: string) => ({
      name: 'pebble',
      directory: pebble.directoryUrl,
      email,
      termsOfServiceAgreed: true,
      caFile,
    });
    const san = randomName('declared');
    const raw = (accounts: unknown[]) => ({
      acme: { http01: { listen: `127.0.0.1:${pebble.httpPort}` }, accounts },
      certificates: [{ name: 'web', issuer: 'acme:pebble', sans: [san] }],
    });
    const h = await harness(t, () => raw([account('ops@example.com')]));
    await h.start();

    await h.daemon!.runSweep('renewal');
    const cert = await h.call('GET', '/v1/certificates/web');
    assert.equal(cert.status, 200, cert.text);
    assert.equal(cert.json.certificate.currentVersion, 1, `issued with no manual step: ${cert.text}`);
    let view = (await h.call('GET', '/v1/acme/accounts')).json as AccountsView;
    assert.equal(view.accounts.length, 1);
    const registered = view.accounts[0]!;
    assert.deepEqual(
      { contact: registered.contact, declared: registered.declared, status: registered.status },
      { contact: ['mailto:ops@example.com'], declared: true, status: 'valid' },
    );
    assert.deepEqual(
      view.declared.map((d) => [d.name, d.state]),
      [['pebble', 'registered']],
    );
    assert.equal(await h.registrations(), 1);

    await h.stop();
    await h.start();
    view = (await h.call('GET', '/v1/acme/accounts')).json as AccountsView;
    assert.equal(view.accounts[0]?.accountUrl, registered.accountUrl, 'the same account after a restart');
    assert.equal(await h.registrations(), 1, 'no second registration');

    h.reconfigure(raw([account('security@example.com')]));
    const reloaded = await h.daemon!.reload('test');
    assert.deepEqual(reloaded.acmeAccounts?.updated, ['pebble'], JSON.stringify(reloaded.acmeAccounts));
    view = (await h.call('GET', '/v1/acme/accounts')).json as AccountsView;
    assert.deepEqual(view.accounts[0]?.contact, ['mailto:security@example.com']);
    assert.equal(view.accounts[0]?.accountUrl, registered.accountUrl);

    // Another directory for an existing account: refused in the report, never re-registered.
    h.reconfigure(raw([{ ...account('security@example.com'), directory: 'https://127.0.0.1:9/dir' }]));
    const moved = await h.daemon!.reload('test');
    assert.deepEqual(
      moved.acmeAccounts?.refused.map((r) => r.name),
      ['pebble'],
    );
    assert.match(
      moved.acmeAccounts?.refused[0]?.message ?? '',
      /is registered at https:\/\/127\.0\.0\.1:\d+\/dir/,
    );
    view = (await h.call('GET', '/v1/acme/accounts')).json as AccountsView;
    assert.equal(view.accounts[0]?.accountUrl, registered.accountUrl);
    assert.equal(view.declared[0]?.state, 'refused');
    assert.equal(await h.registrations(), 1);

    // Removed from configuration: kept and usable (web still names it), only logged.
    h.reconfigure(raw([]));
    const removed = await h.daemon!.reload('test');
    assert.deepEqual(removed.acmeAccounts?.undeclared, ['pebble']);
    view = (await h.call('GET', '/v1/acme/accounts')).json as AccountsView;
    assert.deepEqual(
      view.accounts.map((a) => [a.name, a.status, a.declared]),
      [['pebble', 'valid', false]],
    );
    assert.match(
      h.messages(),
      /"pebble" is no longer declared in acme\.accounts; it is kept \(not deactivated\)/,
    );
    const renewed = await h.call('POST', '/v1/certificates/web/renew', {});
    assert.equal(renewed.status, 200, renewed.text);

    // Declared again: adopted, and the adoption is audited like a contact change.
    const updatesBefore = (await h.succeeded('acme.account.update')).length;
    h.reconfigure(raw([account('security@example.com')]));
    const readopted = await h.daemon!.reload('test');
    assert.deepEqual(readopted.acmeAccounts?.updated, ['pebble'], JSON.stringify(readopted.acmeAccounts));
    const updates = await h.succeeded('acme.account.update');
    assert.equal(updates.length, updatesBefore + 1);
    assert.equal(updates.at(-1)?.details?.declared, true);
    assert.equal(await h.registrations(), 1);
  });

  test('a CA down at start: the daemon starts and reports it; the next reload registers the account', async (t) => {
    const deadPort = await freePort();
    const declared = (directory: string, caFile?: string) => ({
      acme: {
        accounts: [{ name: 'late', directory, termsOfServiceAgreed: true, ...(caFile ? { caFile } : {}) }],
      },
    });
    const h = await harness(t, () => declared(`https://127.0.0.1:${deadPort}/dir`));
    const started = performance.now();
    await h.start();
    const startMs = performance.now() - started;
    let view = await settled(h);
    assert.deepEqual(view.accounts, []);
    assert.equal(view.declared[0]?.state, 'failed');
    assert.equal(view.declared[0]?.error?.code, 'ACME_DIRECTORY_UNREACHABLE', JSON.stringify(view.declared));
    assert.match(h.messages(), /declared ACME account "late": .*; retried at the next reload/);
    t.diagnostic(`daemon start with the CA down: ${startMs.toFixed(0)} ms`);

    const pebble = await startPebble(t);
    if (!pebble) return;
    const caFile = join(h.dir, 'pebble-ca.pem');
    await writeFile(caFile, pebble.tlsCaPem);
    h.reconfigure(declared(pebble.directoryUrl, caFile));
    const report = await h.daemon!.reload('test');
    assert.deepEqual(report.acmeAccounts?.registered, ['late'], JSON.stringify(report.acmeAccounts));
    view = (await h.call('GET', '/v1/acme/accounts')).json as AccountsView;
    assert.deepEqual(
      view.accounts.map((a) => [a.name, a.status]),
      [['late', 'valid']],
    );
    assert.equal(view.declared[0]?.state, 'registered');
  });

  test('not registered at start (its trust file missing): issuing the certificate registers it first', async (t) => {
    const pebble = await startPebble(t);
    if (!pebble) return;
    const caFile = join(pebble.dir, 'later-ca.pem');
    const san = randomName('declared-late');
    const h = await harness(t, () => ({
      acme: {
        http01: { listen: `127.0.0.1:${pebble.httpPort}` },
        accounts: [{ name: 'p', directory: pebble.directoryUrl, termsOfServiceAgreed: true, caFile }],
      },
      certificates: [{ name: 'api', issuer: 'acme:p', sans: [san] }],
    }));
    await h.start();
    let view = await settled(h);
    assert.equal(view.declared[0]?.state, 'failed');
    assert.equal(view.declared[0]?.error?.code, 'CONFIG_UNREADABLE');
    assert.match(view.declared[0]?.error?.message ?? '', /acme\.accounts\[0\]\.caFile: cannot read/);

    await writeFile(caFile, pebble.tlsCaPem);
    const renewed = await h.call('POST', '/v1/certificates/api/renew', {});
    assert.equal(renewed.status, 200, renewed.text);
    view = (await h.call('GET', '/v1/acme/accounts')).json as AccountsView;
    assert.deepEqual(
      view.accounts.map((a) => [a.name, a.declared]),
      [['p', true]],
    );
    assert.equal(view.declared[0]?.state, 'registered');
    assert.equal(await h.registrations(), 1);
  });

  test('a CA that accepts connections and never answers: the daemon listens at once, shows pending, stops promptly', async (t) => {
    // Holds every connection open and never says a word (not even a TLS handshake).
    const held = new Set<Socket>();
    const silent = createServer((socket) => {
      held.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => held.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      for (const socket of held) socket.destroy();
      silent.close();
    });
    const port = (silent.address() as { port: number }).port;
    const hmacEnv = 'KW_TEST_SILENT_CA_EAB_HMAC';
    const hmac = 'c2lsZW50LWNhLWVhYi1obWFjLXRoYXQtbXVzdC1uZXZlci1iZS1sb2dnZWQ';
    process.env[hmacEnv] = hmac;
    t.after(() => delete process.env[hmacEnv]);
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    t.after(() => process.off('unhandledRejection', onRejection));

    const h = await harness(t, () => ({
      acme: {
        requestTimeout: '30s',
        accounts: [
          {
            name: 'silent',
            directory: `https://127.0.0.1:${port}/dir`,
            termsOfServiceAgreed: true,
            eab: { kid: 'kid-1', hmac: `env:${hmacEnv}` },
          },
        ],
      },
      certificates: [{ name: 'web', issuer: 'acme:silent', sans: [randomName('silent')] }],
    }));
    const started = performance.now();
    await h.start();
    const startMs = performance.now() - started;
    const health = await h.call('GET', '/healthz');
    const healthMs = performance.now() - started;
    assert.equal(health.status, 200, health.text);
    assert.ok(healthMs < 3_000, `listening and healthy ${healthMs.toFixed(0)} ms after the start began`);

    // The background registration reached the CA and waits there.
    const deadline = performance.now() + 5_000;
    while (held.size === 0 && performance.now() < deadline) await sleep(20);
    assert.equal(held.size, 1, 'the registration connected to the silent CA');
    const view = (await h.call('GET', '/v1/acme/accounts')).json as AccountsView;
    assert.deepEqual(view.accounts, []);
    assert.deepEqual(
      view.declared.map((d) => [d.name, d.state, d.error]),
      [['silent', 'pending', undefined]],
    );

    // An issue through the account waits on the same registration: no second connection to the CA.
    const sweep = h.daemon!.runSweep('renewal').catch((err: unknown) => err);
    await sleep(300);
    assert.equal(held.size, 1, 'one registration at a time: the issue joined the one in flight');

    const stopStarted = performance.now();
    await h.stop();
    const stopMs = performance.now() - stopStarted;
    assert.ok(stopMs < 3_000, `stop took ${stopMs.toFixed(0)} ms`);
    await sweep;
    await sleep(50); // a rejection nobody handled is reported on a later turn
    assert.deepEqual(rejections, []);
    assert.match(h.messages(), /declared ACME account "silent": left for the next start \(stopping\)/);
    const output = h.logs.join('') + JSON.stringify(view);
    assert.ok(!output.includes(hmac), 'the EAB HMAC key is in no log line and no answer');
    t.diagnostic(
      `silent CA: start ${startMs.toFixed(0)} ms, /healthz after ${healthMs.toFixed(0)} ms, stop ${stopMs.toFixed(0)} ms`,
    );
  });

  test('registered in the background after the start; an issue racing it shares the one registration', async (t) => {
    const pebble = await startPebble(t);
    if (!pebble) return;
    const caFile = join(pebble.dir, 'bg-ca.pem');
    await writeFile(caFile, pebble.tlsCaPem);
    const h = await harness(t, () => ({
      acme: {
        http01: { listen: `127.0.0.1:${pebble.httpPort}` },
        accounts: [{ name: 'bg', directory: pebble.directoryUrl, termsOfServiceAgreed: true, caFile }],
      },
      certificates: [{ name: 'web', issuer: 'acme:bg', sans: [randomName('declared-bg')] }],
    }));
    await h.start();
    // Right away, while the background registration is (most likely) still running.
    await h.daemon!.runSweep('renewal');
    const view = await settled(h);
    assert.deepEqual(
      view.declared.map((d) => [d.name, d.state]),
      [['bg', 'registered']],
    );
    assert.deepEqual(
      view.accounts.map((a) => [a.name, a.status, a.declared]),
      [['bg', 'valid', true]],
    );
    const cert = await h.call('GET', '/v1/certificates/web');
    assert.equal(cert.json.certificate.currentVersion, 1, `issued once: ${cert.text}`);
    const versions = await h.call('GET', '/v1/certificates/web/versions');
    assert.equal(versions.status, 200, versions.text);
    assert.equal((versions.json.versions as unknown[]).length, 1, versions.text);
    assert.equal(await h.registrations(), 1, 'one registration recorded');
    const newAccounts = pebble.log().match(/POST \/sign-me-up/g) ?? [];
    assert.equal(newAccounts.length, 1, 'pebble saw one newAccount');
  });
});
