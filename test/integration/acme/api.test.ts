import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { createApiServer } from '../../../src/api/server.js';
import { AuditLog } from '../../../src/audit/index.js';
import { TokenService } from '../../../src/access/token-service.js';
import { createLogger } from '../../../src/app/logger.js';
import { systemClock } from '../../../src/core/clock.js';
import { runCli } from '../../../src/cli/program.js';
import { splitCaFiles } from '../../../src/cli/commands/acme.js';
import { startPebble } from '../../helpers/pebble.js';
import { tempDir } from '../../helpers/tmp.js';
import { acmeConfig, acmeFixture } from './fixture.js';

function call(base: string, method: string, path: string, token?: string, body?: unknown) {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise<{ status: number; json: any; text: string }>((resolve, reject) => {
    const req = httpRequest(
      new URL(path, base),
      {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }
            : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined, text }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await runCli(args, { stdout, stderr, env: {} });
  return { code, stdout: out, stderr: err };
}

describe('ACME accounts over the API and the CLI', () => {
  test('register, list, show, rollover, deactivate: audited, scoped, no secret in any answer', async (t) => {
    const pebble = await startPebble(t, { alwaysValid: true });
    if (!pebble) return;
    const dir = await tempDir(t);
    const f = await acmeFixture(t, { config: acmeConfig({ solvers: [{ http01: { webroot: dir } }] }) });
    const audit = await AuditLog.open({ path: join(dir, 'audit.log') });
    const tokens = new TokenService({ store: f.store, clock: systemClock });
    const app = createApiServer(
      {
        clock: systemClock,
        store: f.store,
        audit,
        tokens,
        version: 'test',
        acme: f.service,
        isSealed: () => false,
        notReadyReason: () => undefined,
      },
      { logger: createLogger('silent'), bodyLimit: 512 * 1024 },
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    t.after(async () => {
      await app.close();
      await audit.close();
    });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const { token: admin } = await tokens.create({ role: 'admin', createdBy: 'test' });
    const { token: reader } = await tokens.create({ role: 'reader', createdBy: 'test' });
    const { token: scoped } = await tokens.create({
      role: 'operator',
      scopes: ['acme:web-*'],
      createdBy: 'test',
    });

    const created = await call(url, 'POST', '/v1/acme/accounts', admin, {
      name: 'web-le',
      directory: pebble.directoryUrl,
      email: 'ops@example.test',
      agreeTos: true,
      caPem: pebble.tlsCaPem,
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.issuer, 'acme:web-le');
    assert.equal(created.json.status, 'valid');
    assert.equal(created.json.customTrust, true);
    assert.ok(
      !/PRIVATE KEY|"keyBlob"|sealed\//.test(created.text),
      'no key material or blob names in the view',
    );

    const badBody = await call(url, 'POST', '/v1/acme/accounts', admin, {
      name: 'Bad Name',
      directory: pebble.directoryUrl,
      eab: { kid: 'k', hmacKey: 'c2VjcmV0LWhtYWMtdmFsdWUtMTIzNDU2' },
    });
    assert.equal(badBody.status, 400);
    assert.equal(badBody.json.code, 'API_BAD_REQUEST');
    assert.ok(!badBody.text.includes('c2VjcmV0LWhtYWMtdmFsdWUtMTIzNDU2'), 'the HMAC is never echoed');

    const dup = await call(url, 'POST', '/v1/acme/accounts', admin, {
      name: 'web-le',
      directory: pebble.directoryUrl,
      agreeTos: true,
      caPem: pebble.tlsCaPem,
    });
    assert.equal(dup.status, 409);
    assert.equal(dup.json.code, 'ACME_ACCOUNT_EXISTS');

    const tls = await call(url, 'POST', '/v1/acme/accounts', admin, {
      name: 'other',
      directory: pebble.directoryUrl,
      agreeTos: true,
    });
    assert.equal(tls.status, 502);
    assert.equal(tls.json.code, 'ACME_DIRECTORY_UNREACHABLE');

    assert.equal((await call(url, 'GET', '/v1/acme/accounts', reader)).json.accounts.length, 1);
    assert.equal((await call(url, 'POST', '/v1/acme/accounts/web-le/rollover', reader, {})).status, 403);
    assert.equal(
      (await call(url, 'GET', '/v1/acme/accounts/nope', admin)).json.code,
      'ACME_ACCOUNT_NOT_FOUND',
    );
    await f.service.accounts.register({
      name: 'api-le',
      directory: pebble.directoryUrl,
      agreeTos: true,
      caPem: pebble.tlsCaPem,
    });
    const seen = await call(url, 'GET', '/v1/acme/accounts', scoped);
    assert.deepEqual(
      seen.json.accounts.map((a: { name: string }) => a.name),
      ['web-le'],
      'scope acme:web-* sees web-* only',
    );
    assert.equal((await call(url, 'POST', '/v1/acme/accounts/api-le/rollover', scoped, {})).status, 403);

    const rolled = await call(url, 'POST', '/v1/acme/accounts/web-le/rollover', scoped, {});
    assert.equal(rolled.status, 200, rolled.text);
    assert.notEqual(rolled.json.keyThumbprint, created.json.keyThumbprint);
    const gone = await call(url, 'POST', '/v1/acme/accounts/web-le/deactivate', admin, {});
    assert.equal(gone.json.status, 'deactivated');

    const entries = (await audit.query({ limit: 50 })).map((e) => `${e.action} ${e.subject} ${e.outcome}`);
    assert.ok(entries.includes('acme.account.register acme:web-le success'));
    assert.ok(
      entries.includes('acme.account.register acme:other failure'),
      'a failed registration is audited too',
    );
    assert.ok(entries.includes('acme.account.rollover acme:web-le success'));
    assert.ok(entries.includes('acme.account.deactivate acme:web-le success'));

    // The CLI: --ca-file after `register` is the directory's trust; the daemon here is plain HTTP.
    const caFile = join(dir, 'pebble-tls-ca.pem');
    writeFileSync(caFile, pebble.tlsCaPem);
    const reg = await cli([
      '--url',
      url,
      '--token',
      admin,
      '--json',
      'acme',
      'account',
      'register',
      'cli-le',
      '--directory',
      pebble.directoryUrl,
      '--email',
      'cli@example.test',
      '--agree-tos',
      '--ca-file',
      caFile,
    ]);
    assert.equal(reg.code, 0, reg.stderr);
    assert.equal(JSON.parse(reg.stdout).issuer, 'acme:cli-le');
    const list = await cli(['--url', url, '--token', admin, 'acme', 'account', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /cli-le\s+valid/);
    const refused = await cli(['--url', url, '--token', admin, 'acme', 'account', 'deactivate', 'cli-le']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /pass --yes/);
    const noTrust = await cli([
      '--url',
      url,
      '--token',
      admin,
      'acme',
      'account',
      'register',
      'cli-2',
      '--directory',
      pebble.directoryUrl,
      '--agree-tos',
    ]);
    assert.equal(noTrust.code, 10, 'upstream failure exit code');
    assert.match(noTrust.stderr, /ACME_DIRECTORY_UNREACHABLE/);
  });

  test('--ca-file before `acme` is the daemon trust, after `register` the directory trust', () => {
    assert.deepEqual(
      splitCaFiles(['--ca-file', 'd.pem', 'acme', 'account', 'register', 'x', '--ca-file', 'acme.pem']),
      {
        daemon: 'd.pem',
        directory: 'acme.pem',
      },
    );
    assert.deepEqual(splitCaFiles(['acme', 'account', 'register', 'x', '--ca-file=acme.pem']), {
      directory: 'acme.pem',
    });
    assert.deepEqual(splitCaFiles(['--ca-file', 'd.pem', 'acme', 'account', 'list']), { daemon: 'd.pem' });
  });
});
