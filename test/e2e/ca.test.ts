/**
 * The internal CA as a user runs it: the built CLI against `keywright serve --http-listen`, openssl on
 * every answer. Revocation through `keywright cert revoke` shows in the CRL fetched over plain HTTP
 * (`openssl verify -crl_check`) and in `openssl ocsp -url`; `ca create` with name constraints, `ca sign`,
 * `ca import`, `ca export-key` and `ca disable-key` work end to end and leak no secret.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { kw, startServe } from '../helpers/cli.js';
import { freePort } from '../helpers/net.js';
import { requirePeer, runPeer } from '../helpers/peers.js';
import { tempDir } from '../helpers/tmp.js';

function fetchDer(url: string): Promise<{ status: number; type: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: res.headers['content-type'],
          body: Buffer.concat(chunks),
        }),
      );
    })
      .on('error', reject)
      .end();
  });
}

describe('keywright ca, as a user runs it', () => {
  test('revocation served over --http-listen, CA create/sign/import/export-key/disable-key', async (t) => {
    if (!requirePeer(t, 'openssl')) return;
    const base = await tempDir(t, 'kw-e2e-ca-');
    const dir = join(base, 'data');
    const f = (n: string) => join(base, n);
    const init = await kw(['init', '--data-dir', dir, '--json']);
    assert.equal(init.code, 0, init.stderr);
    const { adminToken } = init.json<{ adminToken: string }>();
    const [port, httpPort] = [await freePort(), await freePort()];
    const daemon = await startServe(
      t,
      ['--data-dir', dir, '--listen', `127.0.0.1:${port}`, '--http-listen', `127.0.0.1:${httpPort}`],
      {},
      `https://127.0.0.1:${port}/healthz`,
    );
    const http = `http://127.0.0.1:${httpPort}`;
    const env = { KEYWRIGHT_DATA_DIR: dir, KEYWRIGHT_TOKEN: adminToken };
    const ok = async (args: string[], e: Record<string, string> = env) => {
      const res = await kw(args, e);
      assert.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}${res.stdout}`);
      return res;
    };

    const list = await ok(['ca', 'list', '--json']);
    assert.deepEqual(
      list.json<{ cas: Array<{ name: string }> }>().cas.map((c) => c.name),
      ['default', 'root'],
    );
    await ok(['ca', 'chain', 'default', '--out', f('chain.pem')]);
    const root = join(dir, 'ca.pem');
    await writeFile(
      f('inter.pem'),
      (await readFile(f('chain.pem'), 'utf8')).split(/(?<=-----END CERTIFICATE-----\n)/)[0]!,
    );

    await ok(['cert', 'issue', 'good', '--san', 'good.internal']);
    const bad = await ok(['cert', 'issue', 'bad', '--san', 'bad.internal', '--json']);
    const badSerial = bad.json<{ version: { serial: string } }>().version.serial;
    await ok(['cert', 'bundle', 'good', '--out', f('good')]);
    await ok(['cert', 'bundle', 'bad', '--out', f('bad')]);

    const crl1 = await fetchDer(`${http}/crl/default.crl`);
    assert.equal(crl1.status, 200);
    assert.equal(crl1.type, 'application/pkix-crl');
    const number = async (der: Buffer, name: string): Promise<number> => {
      await writeFile(f(`${name}.der`), der);
      const text = runPeer('openssl', ['crl', '-inform', 'DER', '-in', f(`${name}.der`), '-noout', '-text']);
      return Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text.stdout)?.[1]);
    };
    const n1 = await number(crl1.body, 'crl1');

    const ocsp = (args: string[]) =>
      runPeer('openssl', [
        'ocsp',
        '-issuer',
        f('inter.pem'),
        ...args,
        '-url',
        `${http}/ocsp/default`,
        '-CAfile',
        root,
      ]);
    const before = ocsp(['-cert', f('bad/cert.pem')]);
    assert.match(before.stderr, /Response verify OK/);
    assert.match(before.stdout, /cert\.pem: good/);

    await ok(['cert', 'revoke', 'bad', '--reason', 'keyCompromise']);

    const crl2 = await fetchDer(`${http}/crl/default.crl`);
    const n2 = await number(crl2.body, 'crl2');
    assert.ok(n2 > n1, `the CRL number increases (${n1} → ${n2})`);
    const pem = runPeer('openssl', ['crl', '-inform', 'DER', '-in', f('crl2.der'), '-out', f('crl2.pem')]);
    assert.equal(pem.status, 0, pem.stderr);
    const verify = (leaf: string) =>
      runPeer('openssl', [
        'verify',
        '-crl_check',
        '-CAfile',
        root,
        '-untrusted',
        f('inter.pem'),
        '-CRLfile',
        f('crl2.pem'),
        leaf,
      ]);
    const rejected = verify(f('bad/cert.pem'));
    assert.notEqual(rejected.status, 0);
    assert.match(rejected.stdout + rejected.stderr, /certificate revoked/);
    const accepted = verify(f('good/cert.pem'));
    assert.equal(accepted.status, 0, accepted.stdout + accepted.stderr);

    const after = ocsp(['-cert', f('bad/cert.pem')]);
    assert.equal(after.status, 0, 'openssl ocsp exits 0 whatever the status');
    assert.match(after.stdout, /cert\.pem: revoked/);
    assert.match(after.stdout, /Reason: keyCompromise/);
    const good = ocsp(['-cert', f('good/cert.pem')]);
    assert.match(good.stdout, /cert\.pem: good/);
    const foreign = ocsp(['-serial', '0x0123456789abcdef01']);
    assert.match(foreign.stdout, /: unknown/);
    assert.ok(badSerial.length > 0);

    const unknownSerial = await kw(['cert', 'revoke', '--serial', 'abcdef0123456789', '--json'], env);
    assert.equal(unknownSerial.code, 5, 'not found');
    assert.equal(unknownSerial.json<{ error: { code: string } }>().error.code, 'CERT_NOT_FOUND');

    // name constraints, honoured at issuance
    await ok([
      'ca',
      'create',
      'edge',
      '--parent',
      'root',
      '--key',
      'ec-p384',
      '--ttl',
      '365d',
      '--permit',
      'DNS:edge.internal',
      '--exclude',
      'IP:10.9.0.0/16',
    ]);
    const outside = await kw(
      ['cert', 'issue', 'outside', '--issuer', 'ca:edge', '--san', 'web.example.com'],
      env,
    );
    assert.equal(outside.code, 2, outside.stderr);
    assert.match(outside.stderr, /name_constraints/);
    assert.match(outside.stderr, /LINT_FAILED/);
    await ok(['cert', 'issue', 'inside', '--issuer', 'ca:edge', '--san', 'a.edge.internal']);
    await ok(['cert', 'bundle', 'inside', '--out', f('inside')]);
    const insideOk = runPeer('openssl', [
      'verify',
      '-CAfile',
      root,
      '-untrusted',
      f('inside/chain.pem'),
      f('inside/cert.pem'),
    ]);
    assert.equal(insideOk.status, 0, insideOk.stdout + insideOk.stderr);
    const show = await ok(['ca', 'show', 'edge']);
    assert.match(show.stdout, /permitted: DNS:edge\.internal/);

    // sign an openssl CSR
    const gen = runPeer('openssl', [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      f('svc.key'),
      '-out',
      f('svc.csr'),
      '-subj',
      '/CN=svc.internal',
    ]);
    assert.equal(gen.status, 0, gen.stderr);
    await ok([
      'ca',
      'sign',
      'default',
      '--csr',
      f('svc.csr'),
      '--profile',
      'server-client',
      '--out',
      f('svc.pem'),
    ]);
    const signedOk = runPeer('openssl', [
      'verify',
      '-CAfile',
      root,
      '-untrusted',
      f('inter.pem'),
      f('svc.pem'),
    ]);
    assert.equal(signedOk.status, 0, signedOk.stdout + signedOk.stderr);
    const noProfile = await kw(['ca', 'sign', 'default', '--csr', f('svc.csr'), '--profile', 'nope'], env);
    assert.equal(noProfile.code, 5);
    assert.match(noProfile.stderr, /PROFILE_NOT_FOUND/);

    // a key made by the daemon with its certificate, written once; the pair matches and verifies
    const issued = await ok([
      'ca',
      'issue',
      'default',
      '--san',
      'once.internal',
      '10.9.8.7',
      '--key',
      'ed25519',
      '--ttl',
      '2d',
      '--out',
      f('once'),
    ]);
    assert.match(issued.stdout, /issued serial [0-9a-f]+ \(DNS:once\.internal, IP:10\.9\.8\.7, ed25519\)/);
    assert.doesNotMatch(issued.stdout + issued.stderr, /PRIVATE KEY/, 'the key is not printed');
    assert.equal((await stat(f('once/privkey.pem'))).mode & 0o777, 0o600);
    const onceOk = runPeer('openssl', [
      'verify',
      '-CAfile',
      root,
      '-untrusted',
      f('once/chain.pem'),
      f('once/cert.pem'),
    ]);
    assert.equal(onceOk.status, 0, onceOk.stdout + onceOk.stderr);
    const certPub = runPeer('openssl', ['x509', '-in', f('once/cert.pem'), '-noout', '-pubkey']).stdout;
    assert.equal(runPeer('openssl', ['pkey', '-in', f('once/privkey.pem'), '-pubout']).stdout, certPub);

    // import an openssl CA; a mismatched key is refused
    const mk = (args: string[]) => assert.equal(runPeer('openssl', args).status, 0, args.join(' '));
    mk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', f('ext.key')]);
    mk([
      'req',
      '-x509',
      '-new',
      '-key',
      f('ext.key'),
      '-subj',
      '/CN=External Root',
      '-days',
      '365',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      f('ext.pem'),
    ]);
    const mismatch = await kw(['ca', 'import', 'ext', '--cert', f('ext.pem'), '--key', f('svc.key')], env);
    assert.equal(mismatch.code, 2);
    assert.match(mismatch.stderr, /KEY_INVALID/);
    assert.equal((await kw(['ca', 'show', 'ext'], env)).code, 5, 'nothing stored');
    await ok(['ca', 'import', 'ext', '--cert', f('ext.pem'), '--key', f('ext.key')]);

    // export the root key, then take it offline: the intermediate keeps issuing
    const passphrase = 'e2e export passphrase 0123';
    const noPass = await kw(['ca', 'export-key', 'root', '--out', f('root.key.enc')], env);
    assert.equal(noPass.code, 2);
    await ok(['ca', 'export-key', 'root', '--out', f('root.key.enc')], {
      ...env,
      KEYWRIGHT_EXPORT_PASSPHRASE: passphrase,
    });
    assert.equal((await stat(f('root.key.enc'))).mode & 0o777, 0o600);
    const opened = runPeer('openssl', [
      'pkey',
      '-in',
      f('root.key.enc'),
      '-passin',
      `pass:${passphrase}`,
      '-pubout',
    ]);
    assert.equal(opened.status, 0, opened.stderr);
    assert.equal(opened.stdout, runPeer('openssl', ['x509', '-in', root, '-noout', '-pubkey']).stdout);
    await ok(['ca', 'disable-key', 'root']);
    const rootShow = await ok(['ca', 'show', 'root', '--json']);
    assert.equal(rootShow.json<{ ca: { keyState: string } }>().ca.keyState, 'offline');
    await ok(['cert', 'issue', 'after', '--san', 'after.internal']);
    const rootCrl = await fetchDer(`${http}/crl/root.crl`);
    assert.equal(rootCrl.status, 200, 'the root CRL is still served');

    assert.equal(await daemon.stop(), 0, 'graceful stop');
    const log = daemon.output();
    assert.ok(!log.includes(adminToken), 'no token in the daemon log');
    assert.ok(!log.includes(passphrase), 'no passphrase in the daemon log');
    assert.ok(!log.includes('PRIVATE KEY'), 'no key in the daemon log');
    assert.match(log, /serving CRLs and OCSP over plain HTTP/);
  });
});
