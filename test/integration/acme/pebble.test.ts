import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile, readdir } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAppError } from '../../../src/core/errors.js';
import { parseCertificate } from '../../../src/pki/certificate.js';
import { SEALED_BLOB_PREFIX } from '../../../src/store/port.js';
import { startPebble } from '../../helpers/pebble.js';
import { runPeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';
import {
  acmeConfig,
  acmeFixture,
  assertChainVerifies,
  csrFor,
  randomName,
  registerInput,
  sanText,
} from './fixture.js';
import { writeChalltestHook } from './hooks.js';

/** With PEBBLE_VA_ALWAYS_VALID nothing is fetched; a webroot solver in a scratch dir stands in. */
async function webrootConfig(t: TestContext) {
  return acmeConfig({ solvers: [{ http01: { webroot: await tempDir(t) } }] });
}

describe('ACME against pebble', () => {
  test("http-01 through keywright's responder; the chain verifies with openssl against pebble's root", async (t) => {
    const pebble = await startPebble(t);
    if (!pebble) return;
    const dir = await tempDir(t);
    const { service, ctx, store } = await acmeFixture(t, {
      config: acmeConfig({ http01: { listen: `127.0.0.1:${pebble.httpPort}` }, requestTimeout: '5s' }),
    });
    const account = await service.accounts.register(registerInput(pebble, 'pebble'));
    assert.match(account.accountUrl, /^https:\/\/127\.0\.0\.1:\d+\/my-account\//);
    assert.equal(account.status, 'valid');
    assert.deepEqual(account.contact, ['mailto:pebble@example.test']);
    assert.ok(account.keyBlob?.startsWith(SEALED_BLOB_PREFIX), 'the account key is sealed under sealed/');
    const sealed = JSON.parse((await store.getBlob(account.keyBlob!))!.toString('utf8'));
    assert.equal(sealed.v, 1, 'a SealedBlob, not a PEM');
    const name = randomName();
    const t0 = Date.now();
    const sans = [name, `www.${name}`];
    const result = await service
      .issuer('pebble')
      .issue({ csrDer: await csrFor(sans), sans, certificateName: 'web' }, ctx);
    const ms = Date.now() - t0;
    assert.equal(result.issuer, 'acme:pebble');
    assertChainVerifies(pebble, result, dir);
    assert.match(
      sanText(result.certificatePem),
      new RegExp(`DNS:${name}, DNS:www\\.${name}|DNS:www\\.${name}, DNS:${name}`),
    );
    assert.equal(parseCertificate(result.certificatePem).serialHex, result.serialHex);
    assert.equal(
      result.chainPem[0],
      pebble.intermediatePem.trim() + '\n',
      "the chain is pebble's intermediate",
    );
    assert.equal(result.renewalWindow, undefined, 'pebble 2.4 has no renewalInfo');
    assert.equal(service.responder!.size, 0, 'tokens removed after the order');
    assert.ok(service.responder!.hits >= 2, 'pebble fetched the tokens from the responder');
    assert.ok(ms < 5000, `issued in ${ms} ms`);
  });

  test('http-01 webroot mode: files written where another server serves them, removed afterwards', async (t) => {
    const pebble = await startPebble(t);
    if (!pebble) return;
    const webroot = await tempDir(t);
    let served = 0;
    // Stands in for nginx serving the webroot.
    const server = createServer((req, res) => {
      void readFile(join(webroot, decodeURIComponent(req.url ?? '/').replace(/\.\./g, '')))
        .then((body) => {
          served++;
          res.end(body);
        })
        .catch(() => res.writeHead(404).end());
    });
    await new Promise<void>((r) => server.listen(pebble.httpPort, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => server.close(() => r())));
    const { service, ctx } = await acmeFixture(t, {
      config: acmeConfig({ solvers: [{ http01: { webroot } }] }),
    });
    await service.accounts.register(registerInput(pebble, 'web'));
    const name = randomName();
    await service.issuer('web').issue({ csrDer: await csrFor([name]), sans: [name] }, ctx);
    assert.ok(served >= 1, 'the CA read the token from the webroot');
    assert.deepEqual(
      await readdir(join(webroot, '.well-known', 'acme-challenge')),
      [],
      'token files removed',
    );
  });

  test('dns-01 through an exec hook driving challtestsrv set-txt, propagation checked; wildcard', async (t) => {
    const pebble = await startPebble(t);
    if (!pebble) return;
    const dir = await tempDir(t);
    const hook = writeChalltestHook(dir);
    const log = join(dir, 'hook.log');
    const argv = (action: string) => [process.execPath, hook, action, pebble.challtestsrvUrl, log];
    const { service, ctx } = await acmeFixture(t, {
      config: acmeConfig({
        solvers: [
          {
            dns01: {
              present: argv('present'),
              cleanup: argv('cleanup'),
              timeout: '10s',
              resolvers: [pebble.dnsServer],
              propagationTimeout: '5s',
              propagationInterval: '50ms',
            },
          },
        ],
      }),
    });
    process.env.KEYWRIGHT_TEST_SECRET = 'must-not-reach-hooks';
    t.after(() => delete process.env.KEYWRIGHT_TEST_SECRET);
    await service.accounts.register(registerInput(pebble, 'dns'));
    const name = randomName('dns');
    const sans = [`*.${name}`, name];
    const result = await service
      .issuer('dns')
      .issue({ csrDer: await csrFor(sans), sans, certificateName: 'wild' }, ctx);
    assertChainVerifies(pebble, result, dir);
    assert.match(sanText(result.certificatePem), /DNS:\*\./);
    const runs = (await readFile(log, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const presents = runs.filter((r) => r.action === 'present');
    assert.equal(presents.length, 2, 'one present per authorization (wildcard and base name)');
    for (const r of presents) {
      assert.equal(r.name, `_acme-challenge.${name}`);
      assert.equal(r.domain, name);
      assert.equal(r.certbotDomain, name);
      assert.equal(r.certbotValidation, r.value);
      assert.match(r.value, /^[A-Za-z0-9_-]{43}$/, 'base64url SHA-256 (RFC 8555 §8.4)');
      assert.equal(r.kwAction, 'present');
      assert.deepEqual(r.leaked, [], 'no KEYWRIGHT_* variable of the daemon reaches a hook');
    }
    assert.equal(runs.filter((r) => r.action === 'cleanup').length, 2, 'cleanup ran for each');
  });

  test('tls-alpn-01 on a configurable port', async (t) => {
    const pebble = await startPebble(t);
    if (!pebble) return;
    const dir = await tempDir(t);
    const { service, ctx } = await acmeFixture(t, {
      config: acmeConfig({ solvers: [{ tlsAlpn01: { listen: `127.0.0.1:${pebble.tlsPort}` } }] }),
    });
    await service.accounts.register(registerInput(pebble, 'alpn'));
    const name = randomName('alpn');
    const result = await service.issuer('alpn').issue({ csrDer: await csrFor([name]), sans: [name] }, ctx);
    assertChainVerifies(pebble, result, dir);
  });

  test('an IP certificate (RFC 8738 identifiers) over http-01', async (t) => {
    const pebble = await startPebble(t);
    if (!pebble) return;
    const dir = await tempDir(t);
    const { service, ctx } = await acmeFixture(t, {
      config: acmeConfig({ http01: { listen: `127.0.0.1:${pebble.httpPort}` } }),
    });
    await service.accounts.register(registerInput(pebble, 'ip'));
    const result = await service
      .issuer('ip')
      .issue({ csrDer: await csrFor(['127.0.0.1']), sans: ['IP:127.0.0.1'] }, ctx);
    assertChainVerifies(pebble, result, dir);
    assert.match(sanText(result.certificatePem), /IP Address:127\.0\.0\.1/);
  });

  test('revocation through the account; pebble reports it revoked with the reason', async (t) => {
    const pebble = await startPebble(t, { alwaysValid: true });
    if (!pebble) return;
    const { service, ctx } = await acmeFixture(t, {
      config: acmeConfig({ http01: { listen: `127.0.0.1:${pebble.httpPort}` } }),
    });
    await service.accounts.register(registerInput(pebble, 'rev'));
    const name = randomName();
    const issuer = service.issuer('rev');
    const result = await issuer.issue({ csrDer: await csrFor([name]), sans: [name] }, ctx);
    assert.equal((await pebble.certStatus(result.serialHex)).Status, 'Valid');
    await issuer.revoke(
      { serialHex: result.serialHex, certificatePem: result.certificatePem, reason: 'keyCompromise' },
      ctx,
    );
    const status = await pebble.certStatus(result.serialHex);
    assert.equal(status.Status, 'Revoked');
    assert.equal(status.Reason, 1);
    await assert.rejects(
      issuer.revoke(
        { serialHex: result.serialHex, certificatePem: result.certificatePem, reason: 'superseded' },
        ctx,
      ),
      (err) =>
        isAppError(err, 'ACME_ERROR') &&
        err.details.problemType === 'urn:ietf:params:acme:error:alreadyRevoked' &&
        !err.retryable,
    );
  });

  test('key rollover (RFC 8555 §7.3.5): new key sealed, old blob gone, the account keeps working', async (t) => {
    const pebble = await startPebble(t, { alwaysValid: true });
    if (!pebble) return;
    const { service, ctx, store } = await acmeFixture(t, { config: await webrootConfig(t) });
    const before = await service.accounts.register(registerInput(pebble, 'roll'));
    const after = await service.accounts.rollover('roll');
    assert.equal(after.accountUrl, before.accountUrl, 'same account');
    assert.notEqual(after.keyThumbprint, before.keyThumbprint);
    assert.notEqual(after.keyBlob, before.keyBlob);
    assert.equal(after.pendingKeyBlob, undefined);
    assert.ok(after.keyRolledAt);
    assert.deepEqual(await store.listBlobs(`${SEALED_BLOB_PREFIX}acme/roll/`), [after.keyBlob]);
    const name = randomName();
    const result = await service.issuer('roll').issue({ csrDer: await csrFor([name]), sans: [name] }, ctx);
    assert.ok(result.serialHex);
    // The old key no longer opens the account: pebble answers for the new key only.
    await service.accounts.rollover('roll');
    assert.equal((await store.listBlobs(`${SEALED_BLOB_PREFIX}acme/roll/`)).length, 1);
  });

  test('deactivation: the CA refuses the account afterwards, the sealed key is erased', async (t) => {
    const pebble = await startPebble(t, { alwaysValid: true });
    if (!pebble) return;
    const { service, ctx, store } = await acmeFixture(t, { config: await webrootConfig(t) });
    const account = await service.accounts.register(registerInput(pebble, 'gone'));
    const done = await service.accounts.deactivate('gone');
    assert.equal(done.status, 'deactivated');
    assert.equal(done.keyBlob, undefined);
    assert.equal(await store.getBlob(account.keyBlob!), undefined);
    const name = randomName();
    await assert.rejects(
      service.issuer('gone').issue({ csrDer: await csrFor([name]), sans: [name] }, ctx),
      (err) => isAppError(err, 'ACME_ACCOUNT_DEACTIVATED'),
    );
    await assert.rejects(service.accounts.rollover('gone'), (err) =>
      isAppError(err, 'ACME_ACCOUNT_DEACTIVATED'),
    );
  });

  test('several accounts at two CAs side by side, issuing concurrently', async (t) => {
    const [a, b] = await Promise.all([
      startPebble(t, { alwaysValid: true }),
      startPebble(t, { alwaysValid: true }),
    ]);
    if (!a || !b) return;
    const dir = await tempDir(t);
    const { service, ctx } = await acmeFixture(t, { config: await webrootConfig(t) });
    await Promise.all([
      service.accounts.register(registerInput(a, 'ca-a-1')),
      service.accounts.register(registerInput(a, 'ca-a-2')),
      service.accounts.register(registerInput(b, 'ca-b')),
    ]);
    assert.deepEqual(
      service.accounts.list().map((x) => x.id),
      ['ca-a-1', 'ca-a-2', 'ca-b'],
    );
    const issue = async (account: string) => {
      const name = randomName(account);
      return service.issuer(account).issue({ csrDer: await csrFor([name]), sans: [name] }, ctx);
    };
    const [r1, r2, r3] = await Promise.all([issue('ca-a-1'), issue('ca-a-2'), issue('ca-b')]);
    assertChainVerifies(a, r1, dir);
    assertChainVerifies(a, r2, dir);
    assertChainVerifies(b, r3, dir);
    assert.notEqual(a.rootPem, b.rootPem, 'two distinct CAs');
  });
});

describe('alternate chains', () => {
  test('preferred chain by issuer CN (RFC 8555 §7.4.2 Link rel="alternate"); the default chain otherwise', async (t) => {
    const pebble = await startPebble(t, { alwaysValid: true, alternateRoots: 1 });
    if (!pebble) return;
    const dir = await tempDir(t);
    const alternateRoot = await pebble.root(1);
    const rootCn = /CN ?= ?(.+)/
      .exec(runPeer('openssl', ['x509', '-noout', '-subject'], alternateRoot).stdout)![1]!
      .trim();
    const { service, ctx } = await acmeFixture(t, { config: await webrootConfig(t) });
    await service.accounts.register(registerInput(pebble, 'default'));
    await service.accounts.register({ ...registerInput(pebble, 'alt'), preferredChain: rootCn });
    const name = randomName();
    const plain = await service.issuer('default').issue({ csrDer: await csrFor([name]), sans: [name] }, ctx);
    const preferred = await service.issuer('alt').issue({ csrDer: await csrFor([name]), sans: [name] }, ctx);
    assertChainVerifies(pebble, plain, dir);
    const altRootFile = join(dir, 'alt-root.pem');
    writeFileSync(altRootFile, alternateRoot);
    assertChainVerifies({ ...pebble, rootFile: altRootFile }, preferred, dir);
    assert.notEqual(preferred.chainPem[0], plain.chainPem[0], 'another intermediate');
  });
});
