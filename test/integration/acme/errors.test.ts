import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import { isAppError, type AppError } from '../../../src/core/errors.js';
import { SEALED_BLOB_PREFIX } from '../../../src/store/port.js';
import { startPebble } from '../../helpers/pebble.js';
import { freePort } from '../../helpers/net.js';
import { tempDir } from '../../helpers/tmp.js';
import { acmeConfig, acmeFixture, csrFor, randomName, registerInput, type Fixture } from './fixture.js';
import { writeBadHook } from './hooks.js';

async function rejection(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isAppError(err), `expected an AppError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

async function assertNothingStored(f: Fixture): Promise<void> {
  assert.deepEqual(f.service.accounts.list(), []);
  assert.deepEqual(await f.store.listBlobs(SEALED_BLOB_PREFIX), []);
}

describe('ACME failures: each a clear error, nothing half-stored', () => {
  test('unknown directory: connection refused, a 404, a silent server: ACME_DIRECTORY_UNREACHABLE in seconds', async (t) => {
    const f = await acmeFixture(t, { config: acmeConfig({ requestTimeout: '800ms' }) });
    const port = await freePort();
    let t0 = Date.now();
    const refused = await rejection(
      f.service.accounts.register({ name: 'x', directory: `https://127.0.0.1:${port}/dir`, agreeTos: true }),
    );
    assert.equal(refused.code, 'ACME_DIRECTORY_UNREACHABLE');
    assert.match(
      refused.message,
      /cannot reach https:\/\/127\.0\.0\.1:\d+: ECONNREFUSED; check the directory URL/,
    );
    assert.ok(Date.now() - t0 < 2000, `refused after ${Date.now() - t0} ms`);

    // A server that accepts and never answers: the request timeout ends it, not a 75 s retry loop.
    const sockets = new Set<Socket>();
    const silent = createTcpServer((s) => sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    t.after(() => {
      for (const s of sockets) s.destroy();
      silent.close();
    });
    t0 = Date.now();
    const hung = await rejection(
      f.service.accounts.register({
        name: 'x',
        directory: `https://127.0.0.1:${(silent.address() as { port: number }).port}/dir`,
        agreeTos: true,
      }),
    );
    assert.equal(hung.code, 'ACME_DIRECTORY_UNREACHABLE');
    assert.match(hung.message, /no answer within 800 ms/);
    assert.ok(Date.now() - t0 < 3000, `timed out after ${Date.now() - t0} ms`);
    assert.equal(hung.retryable, true);

    const pebble = await startPebble(t);
    if (!pebble) return;
    const notFound = await rejection(
      f.service.accounts.register({
        ...registerInput(pebble, 'x'),
        directory: pebble.directoryUrl.replace(/\/dir$/, '/nope'),
      }),
    );
    assert.equal(notFound.code, 'ACME_DIRECTORY_UNREACHABLE');
    assert.match(notFound.message, /HTTP 404; is this the directory URL\?/);
    const bad = await rejection(
      f.service.accounts.register({ name: 'x', directory: 'http://acme.example/dir', agreeTos: true }),
    );
    assert.equal(bad.code, 'INVALID_ARGUMENT');
    assert.match(bad.message, /https:\/\//);
    await assertNothingStored(f);
  });

  test("TLS failure (pebble's certificate not trusted): a TLS error within seconds, no TypeError", async (t) => {
    const pebble = await startPebble(t);
    if (!pebble) return;
    const f = await acmeFixture(t);
    const t0 = Date.now();
    const { caPem: _caPem, ...untrusted } = registerInput(pebble, 'tls');
    const err = await rejection(f.service.accounts.register(untrusted));
    const ms = Date.now() - t0;
    assert.equal(err.code, 'ACME_DIRECTORY_UNREACHABLE');
    assert.match(err.message, /TLS: the server's certificate is not trusted \([A-Z_]+\).*--ca-file/);
    assert.equal(err.retryable, false, 'trust does not fix itself');
    assert.ok(ms < 3000, `failed after ${ms} ms`);
    await assertNothingStored(f);
  });

  test('a CA policy rejecting an identifier: rejectedIdentifier, terminal, detail kept', async (t) => {
    const pebble = await startPebble(t, { blocklist: ['blocked.example.test'] });
    if (!pebble) return;
    const f = await acmeFixture(t, {
      config: acmeConfig({ http01: { listen: `127.0.0.1:${pebble.httpPort}` } }),
    });
    await f.service.accounts.register(registerInput(pebble, 'policy'));
    const name = 'www.blocked.example.test';
    const err = await rejection(
      f.service.issuer('policy').issue({ csrDer: await csrFor([name]), sans: [name] }, f.ctx),
    );
    assert.equal(err.code, 'ACME_ERROR');
    assert.equal(err.details.problemType, 'urn:ietf:params:acme:error:rejectedIdentifier');
    assert.equal(err.retryable, false);
    assert.match(err.message, /creating the ACME order: rejectedIdentifier: .*forbidden by policy/);
    assert.equal(f.service.responder!.size, 0);
  });

  test('a challenge the CA cannot validate: ACME_CHALLENGE_FAILED naming the identifier and the problem', async (t) => {
    const pebble = await startPebble(t);
    if (!pebble) return;
    // The responder listens, but not where pebble's VA connects.
    const f = await acmeFixture(t, { config: acmeConfig({ http01: { listen: '127.0.0.1:0' } }) });
    await f.service.accounts.register(registerInput(pebble, 'unreach'));
    const name = randomName();
    const err = await rejection(
      f.service.issuer('unreach').issue({ csrDer: await csrFor([name]), sans: [name] }, f.ctx),
    );
    assert.equal(err.code, 'ACME_CHALLENGE_FAILED');
    assert.equal(err.details.identifier, name);
    assert.equal(err.details.problemType, 'urn:ietf:params:acme:error:connection');
    assert.match(
      err.message,
      new RegExp(
        `validating ${name.replace(/\./g, '\\.')} by http-01 for ${name.replace(/\./g, '\\.')}: connection: `,
      ),
    );
    assert.equal(f.service.responder!.size, 0, 'token removed although the order failed');
  });

  test('dns-01 hook exiting non-zero, and one that hangs: clear errors, cleanup still runs, no output in the error', async (t) => {
    const pebble = await startPebble(t, { alwaysValid: true });
    if (!pebble) return;
    const dir = await tempDir(t);
    const cleanupMarker = join(dir, 'cleaned');
    const make = async (kind: 'fail' | 'hang') =>
      acmeFixture(t, {
        config: acmeConfig({
          solvers: [
            {
              dns01: {
                present: [writeBadHook(dir, kind)],
                cleanup: ['/bin/sh', '-c', `echo x >> ${cleanupMarker}`],
                timeout: '700ms',
                checkPropagation: false,
              },
            },
          ],
        }),
      });
    const failing = await make('fail');
    await failing.service.accounts.register(registerInput(pebble, 'hook'));
    const name = randomName();
    const err = await rejection(
      failing.service.issuer('hook').issue({ csrDer: await csrFor([name]), sans: [name] }, failing.ctx),
    );
    assert.equal(err.code, 'ACME_SOLVER_FAILED');
    assert.match(
      err.message,
      new RegExp(
        `dns-01 present hook for ${name.replace(/\./g, '\\.')}: the hook .*hook-fail\\.sh exited with code 7`,
      ),
    );
    assert.ok(!err.message.includes('provider said no'), 'hook output stays in the log');
    assert.ok(
      failing.logger.lines.some(
        (l) => l.level === 'warn' && String(l.obj.stderr).includes('provider said no'),
      ),
    );

    const hanging = await make('hang');
    await hanging.service.accounts.register(registerInput(pebble, 'hook'));
    const t0 = Date.now();
    const hung = await rejection(
      hanging.service.issuer('hook').issue({ csrDer: await csrFor([name]), sans: [name] }, hanging.ctx),
    );
    const ms = Date.now() - t0;
    assert.equal(hung.code, 'ACME_SOLVER_FAILED');
    assert.match(hung.message, /did not finish within 700 ms and was killed/);
    assert.ok(ms < 3000, `gave up after ${ms} ms`);
    const { readFile } = await import('node:fs/promises');
    assert.equal(
      (await readFile(cleanupMarker, 'utf8')).trim().split('\n').length,
      2,
      'cleanup ran after each failure',
    );
  });

  test('http-01 port already in use: the daemon keeps running, each order says which address is taken', async (t) => {
    const pebble = await startPebble(t);
    if (!pebble) return;
    const squatter = createHttpServer((_q, s) => s.end('not keywright'));
    await new Promise<void>((r) => squatter.listen(pebble.httpPort, '127.0.0.1', r));
    t.after(() => {
      squatter.close();
      squatter.closeAllConnections();
    });
    const f = await acmeFixture(t, {
      config: acmeConfig({ http01: { listen: `127.0.0.1:${pebble.httpPort}` } }),
    });
    assert.ok(
      f.logger.lines.some((l) => l.level === 'error' && l.msg === 'ACME http-01 responder not started'),
    );
    await f.service.accounts.register(registerInput(pebble, 'busy'));
    const name = randomName();
    const err = await rejection(
      f.service.issuer('busy').issue({ csrDer: await csrFor([name]), sans: [name] }, f.ctx),
    );
    assert.equal(err.code, 'ACME_SOLVER_FAILED');
    assert.match(
      err.message,
      new RegExp(
        `http-01 responder cannot listen on 127\\.0\\.0\\.1:${pebble.httpPort}: the address is already in use`,
      ),
    );
    // Once the port is free the next order binds it.
    await new Promise<void>((r) => {
      squatter.close(() => r());
      squatter.closeAllConnections();
    });
    const ok = await f.service.issuer('busy').issue({ csrDer: await csrFor([name]), sans: [name] }, f.ctx);
    assert.ok(ok.serialHex);
  });

  test('an ACME profile the directory does not offer: refused before any order', async (t) => {
    const pebble = await startPebble(t, { alwaysValid: true });
    if (!pebble) return;
    const f = await acmeFixture(t, {
      config: acmeConfig({ solvers: [{ http01: { webroot: await tempDir(t) } }] }),
    });
    await f.service.accounts.register(registerInput(pebble, 'prof'));
    const name = randomName();
    const err = await rejection(
      f.service
        .issuer('prof')
        .issue({ csrDer: await csrFor([name]), sans: [name], profile: 'shortlived' }, f.ctx),
    );
    assert.equal(err.code, 'ACME_PROFILE_UNKNOWN');
    assert.match(err.message, /offers no ACME profiles/);
  });

  test('PEBBLE_WFE_NONCEREJECT=40: badNonce answers are retried with the fresh nonce and issuance succeeds', async (t) => {
    const pebble = await startPebble(t, { nonceReject: 40 });
    if (!pebble) return;
    const f = await acmeFixture(t, {
      config: acmeConfig({ http01: { listen: `127.0.0.1:${pebble.httpPort}` } }),
    });
    await f.service.accounts.register(registerInput(pebble, 'nonce'));
    let badNonces = 0;
    for (let i = 0; i < 2; i++) {
      const name = randomName();
      await f.service.issuer('nonce').issue({ csrDer: await csrFor([name]), sans: [name] }, f.ctx);
      const issued = f.logger.lines.filter((l) => l.msg === 'ACME certificate issued').at(-1)!;
      badNonces += Number(issued.obj.badNonces);
    }
    assert.ok(badNonces > 0, `badNonce retries exercised (${badNonces})`);
  });
});
