import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../../src/core/logger.js';
import { isAppError } from '../../../src/core/errors.js';
import { Http01Responder } from '../../../src/acme/solvers/http01.js';
import { dns01Record } from '../../../src/acme/solvers/dns01.js';
import { alpnServerName } from '../../../src/acme/solvers/tls-alpn01.js';
import { runHook, hookEnvironment } from '../../../src/acme/solvers/exec.js';
import {
  globMatches,
  identifierMatches,
  buildSolverRules,
  selectSolver,
  type SolverRule,
} from '../../../src/acme/solvers/select.js';
import type { ChallengeSolver, ChallengeType } from '../../../src/acme/solvers/port.js';
import { requirePeer, runPeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const fake = (type: ChallengeType, description: string): ChallengeSolver => ({
  type,
  description,
  present: async () => undefined,
  cleanup: async () => undefined,
});

describe('challenge solvers', () => {
  test('http-01 responder: serves exactly the token path, 404 otherwise, HEAD without body', async (t) => {
    const r = new Http01Responder({ host: '127.0.0.1', port: 0 }, silentLogger);
    await r.start();
    t.after(() => r.stop());
    const port = r.address!.port;
    r.set('tok_EN-1', 'tok_EN-1.thumb');
    assert.deepEqual(await get(port, '/.well-known/acme-challenge/tok_EN-1'), {
      status: 200,
      body: 'tok_EN-1.thumb',
    });
    assert.deepEqual(await get(port, '/.well-known/acme-challenge/tok_EN-1', 'HEAD'), {
      status: 200,
      body: '',
    });
    assert.equal((await get(port, '/.well-known/acme-challenge/other')).status, 404);
    assert.equal((await get(port, '/.well-known/acme-challenge/../../etc/passwd')).status, 404);
    assert.equal((await get(port, '/')).status, 404);
    assert.equal((await get(port, '/.well-known/acme-challenge/tok_EN-1', 'POST')).status, 404);
    r.delete('tok_EN-1');
    assert.equal((await get(port, '/.well-known/acme-challenge/tok_EN-1')).status, 404);
    assert.throws(
      () => r.set('../x', 'y'),
      (e) => isAppError(e, 'ACME_ERROR'),
    );
  });

  test('http-01 responder on a taken port: ACME_SOLVER_FAILED naming the address; a later start succeeds', async (t) => {
    const squatter = createServer();
    await new Promise<void>((res) => squatter.listen(0, '127.0.0.1', res));
    const port = (squatter.address() as { port: number }).port;
    const r = new Http01Responder({ host: '127.0.0.1', port }, silentLogger);
    t.after(() => r.stop());
    await assert.rejects(r.start(), (e) => {
      assert.ok(isAppError(e, 'ACME_SOLVER_FAILED'));
      assert.equal(
        e.message,
        `http-01 responder cannot listen on 127.0.0.1:${port}: the address is already in use; stop what listens there or change acme.http01.listen`,
      );
      return true;
    });
    await new Promise<void>((res) => squatter.close(() => res()));
    await r.start();
    assert.equal(r.listening, true);
  });

  test('dns-01 record (RFC 8555 §8.4): name and base64url SHA-256 of the key authorization, as openssl computes it', (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const keyAuthorization =
      'evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ';
    const record = dns01Record({ identifier: { type: 'dns', value: 'www.example.org' }, keyAuthorization });
    assert.equal(record.name, '_acme-challenge.www.example.org');
    const digest = /([0-9a-f]{64})/.exec(
      runPeer('openssl', ['dgst', '-sha256'], keyAuthorization).stdout,
    )![1]!;
    const expected = Buffer.from(digest, 'hex').toString('base64url');
    assert.equal(record.value, expected);
    assert.equal(record.value.length, 43);
  });

  test('tls-alpn-01 SNI: the name itself, or the reverse name of an IP (RFC 8738 §6)', () => {
    assert.equal(
      alpnServerName({ identifier: { type: 'dns', value: 'WWW.Example.org' } }),
      'www.example.org',
    );
    assert.equal(
      alpnServerName({ identifier: { type: 'ip', value: '192.0.2.1' } }),
      '1.2.0.192.in-addr.arpa',
    );
    assert.equal(
      alpnServerName({ identifier: { type: 'ip', value: '2001:db8::1' } }),
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
    );
  });

  test('solver rules: first match wins, only offered types, domain and certificate patterns, wildcards need dns-01', () => {
    const http = fake('http-01', 'http');
    const dnsZone = fake('dns-01', 'dns zone');
    const alpn = fake('tls-alpn-01', 'alpn');
    const rules: SolverRule[] = [
      { solver: dnsZone, domains: ['*.example.com', 'example.com'], certificates: ['web-*'] },
      { solver: http, domains: ['*.example.com', '10.0.0.0/8'] },
      { solver: alpn },
    ];
    const pick = (value: string, offered: ChallengeType[], certificateName?: string, wildcard = false) =>
      selectSolver(rules, {
        identifier: { type: /^[\d.]+$/.test(value) ? 'ip' : 'dns', value },
        wildcard,
        certificateName,
        offered,
      }).description;
    const all: ChallengeType[] = ['http-01', 'dns-01', 'tls-alpn-01'];
    assert.equal(pick('a.example.com', all, 'web-1'), 'dns zone');
    assert.equal(pick('a.example.com', all, 'api'), 'http', 'certificate pattern does not match');
    assert.equal(pick('a.example.com', ['http-01', 'tls-alpn-01'], 'web-1'), 'http', 'dns-01 not offered');
    assert.equal(pick('10.1.2.3', all), 'http', 'CIDR');
    assert.equal(pick('192.0.2.1', all), 'alpn');
    assert.equal(pick('example.com', ['dns-01'], 'web-2', true), 'dns zone', 'the wildcard *.example.com');
    assert.throws(
      () => pick('example.org', ['dns-01'], undefined, true),
      (e) =>
        isAppError(e, 'ACME_SOLVER_FAILED') &&
        !e.retryable &&
        /no challenge solver for \*\.example\.org.*wildcards need a dns01 solver/.test(e.message),
    );
    assert.equal(identifierMatches('*.example.com', { type: 'dns', value: 'example.com' }, false), false);
    assert.equal(identifierMatches('*.example.com', { type: 'dns', value: 'a.b.example.com' }, false), true);
    assert.equal(identifierMatches('*', { type: 'ip', value: '::1' }, false), true);
    assert.equal(identifierMatches('::1', { type: 'ip', value: '0:0::1' }, false), true);
    assert.equal(globMatches('web-*', 'web-1'), true);
    assert.equal(globMatches('web-*', 'api.web-1'), false);
    assert.equal(globMatches('a.b', 'axb'), false, '. is literal');
  });

  test('hooks: argv without a shell, no KEYWRIGHT_* secrets in the environment, exit codes, a timeout kills the whole group', async (t) => {
    const dir = await tempDir(t);
    const out = join(dir, 'env.txt');
    process.env.KEYWRIGHT_MASTER_KEY = 'secret-kek';
    t.after(() => delete process.env.KEYWRIGHT_MASTER_KEY);
    const env = hookEnvironment({ KEYWRIGHT_ACME_DOMAIN: 'a.example; rm -rf /' });
    assert.equal(env.KEYWRIGHT_MASTER_KEY, undefined);
    await runHook({
      label: 'test hook',
      argv: ['/bin/sh', '-c', `env > ${out}`, 'sh'],
      env,
      timeoutMs: 5000,
      logger: silentLogger,
    });
    const written = await readFile(out, 'utf8');
    assert.match(
      written,
      /KEYWRIGHT_ACME_DOMAIN=a\.example; rm -rf \//,
      'passed verbatim, never interpreted',
    );
    assert.ok(!written.includes('secret-kek'));

    await assert.rejects(
      runHook({ label: 'x', argv: ['/bin/sh', '-c', 'exit 4'], env, timeoutMs: 5000, logger: silentLogger }),
      (e) =>
        isAppError(e, 'ACME_SOLVER_FAILED') &&
        /exited with code 4/.test(e.message) &&
        e.details.exitCode === 4,
    );
    await assert.rejects(
      runHook({ label: 'x', argv: [join(dir, 'missing')], env, timeoutMs: 5000, logger: silentLogger }),
      (e) => isAppError(e, 'ACME_SOLVER_FAILED') && /cannot run the hook .*: ENOENT/.test(e.message),
    );
    const pidFile = join(dir, 'child.pid');
    const t0 = Date.now();
    await assert.rejects(
      runHook({
        label: 'x',
        argv: ['/bin/sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`],
        env,
        timeoutMs: 300,
        logger: silentLogger,
      }),
      (e) =>
        isAppError(e, 'ACME_SOLVER_FAILED') && /did not finish within 300 ms and was killed/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 2000);
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    await new Promise((r) => setTimeout(r, 200));
    // Gone, or a zombie waiting for a reaper (containers without an init): either way not running.
    const state = await readFile(`/proc/${pid}/stat`, 'utf8').then(
      (s) => s.split(') ')[1]?.[0],
      () => 'gone',
    );
    assert.ok(
      state === 'gone' || state === 'Z',
      `the grandchild (sleep) was killed with the group (state ${state})`,
    );
  });

  test('the default http01 rule without acme.http01.listen says what to configure, only when used', async () => {
    const [rule] = buildSolverRules([{ http01: {} }], { logger: silentLogger });
    const task = {
      type: 'http-01' as const,
      identifier: { type: 'dns' as const, value: 'a.example' },
      wildcard: false,
      token: 't',
      keyAuthorization: 't.x',
    };
    await assert.rejects(
      rule!.solver.present(task, { logger: silentLogger }),
      (e) =>
        isAppError(e, 'ACME_SOLVER_FAILED') &&
        !e.retryable &&
        /set acme\.http01\.listen \(or serve --http01-listen\)/.test(e.message),
    );
    await rule!.solver.cleanup(task, { logger: silentLogger });
  });
});
