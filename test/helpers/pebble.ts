/**
 * pebble (Let's Encrypt's test ACME server, Debian package `pebble`) and pebble-challtestsrv on free
 * 127.0.0.1 ports, with an HTTPS certificate made by openssl for this run. Everything started here is
 * killed in t.after (a bench passes its own after list). pebble's root and intermediate are regenerated
 * at every start, so they are fetched from its management port once it answers.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './net.js';
import { requirePeer } from './peers.js';

export interface PebbleOptions {
  /** Where pebble's VA connects for http-01 (keywright's responder); a free port when absent. */
  readonly httpPort?: number;
  /** Where pebble's VA connects for tls-alpn-01. */
  readonly tlsPort?: number;
  /** kid → base64url HMAC key: pebble then requires External Account Binding. */
  readonly eab?: Readonly<Record<string, string>>;
  /** PEBBLE_WFE_NONCEREJECT: percentage of good nonces refused with badNonce. Default 0. */
  readonly nonceReject?: number;
  readonly alwaysValid?: boolean;
  /** Names pebble refuses with rejectedIdentifier. */
  readonly blocklist?: readonly string[];
  /** PEBBLE_ALTERNATE_ROOTS: extra hierarchies, offered as Link rel="alternate" chains. */
  readonly alternateRoots?: number;
}

export interface Pebble {
  readonly dir: string;
  readonly directoryUrl: string;
  /** Trust for pebble's HTTPS (the run's own test CA). */
  readonly tlsCaPem: string;
  readonly tlsCertFile: string;
  readonly tlsKeyFile: string;
  /** pebble's root and intermediate of this run (fetched from the management port). */
  readonly rootPem: string;
  readonly rootFile: string;
  readonly intermediatePem: string;
  readonly httpPort: number;
  readonly tlsPort: number;
  /** challtestsrv's DNS, `127.0.0.1:port`: every A query answers 127.0.0.1, AAAA nothing. */
  readonly dnsServer: string;
  readonly challtestsrvUrl: string;
  setTxt(host: string, value: string): Promise<void>;
  clearTxt(host: string): Promise<void>;
  /** `{ Status: 'Valid' | 'Revoked', Reason? }` from the management port. */
  certStatus(serialHex: string): Promise<{ Status: string; Reason?: number }>;
  /** The root of hierarchy `index` (0 is the default chain's), PEM. */
  root(index: number): Promise<string>;
  log(): string;
}

interface TlsFiles {
  caPem: string;
  certFile: string;
  keyFile: string;
}

let tlsFiles: TlsFiles | undefined;

/** One TLS CA + localhost/127.0.0.1 certificate per test process. */
function pebbleTls(): TlsFiles {
  if (tlsFiles) return tlsFiles;
  const dir = mkdtempSync(join(tmpdir(), 'kw-pebble-tls-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=pebble test TLS CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  run(['req', ...ec, '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', '/CN=localhost']);
  writeFileSync(
    join(dir, 'ext.cnf'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  run([
    'x509',
    '-req',
    '-in',
    'tls.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'tls.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  ]);
  tlsFiles = {
    caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    certFile: join(dir, 'tls.pem'),
    keyFile: join(dir, 'tls.key'),
  };
  return tlsFiles;
}

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, timeout: 2000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function postJson(url: string, body: unknown): Promise<number> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

class PortTaken extends Error {}

/** Where the processes and files started here are cleaned up: a test context, or a bench's own list. */
export interface PebbleScope {
  after(fn: () => Promise<unknown>): void;
}

/** Starts challtestsrv + pebble; skips the test (or fails under CI) when pebble is not installed. */
export async function startPebble(t: TestContext, options: PebbleOptions = {}): Promise<Pebble | undefined> {
  if (
    !requirePeer(t, 'pebble') ||
    !requirePeer(t, 'pebble-challtestsrv', 'pebble') ||
    !requirePeer(t, 'openssl')
  ) {
    return undefined;
  }
  return startPebbleIn(t, options);
}

/** startPebble without a test context (benchmarks): the caller has checked the binaries are there. */
export async function startPebbleIn(scope: PebbleScope, options: PebbleOptions = {}): Promise<Pebble> {
  // A port picked free can be taken by a concurrent test before pebble binds it: pick new ones and retry.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startPebbleOnce(scope, options);
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt >= 3) throw err;
    }
  }
}

async function startPebbleOnce(scope: PebbleScope, options: PebbleOptions): Promise<Pebble> {
  const tls = pebbleTls();
  const dir = await mkdtemp(join(tmpdir(), 'kw-pebble-'));
  scope.after(() => rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));
  const [acmePort, mgmtPort, dnsPort, ctsPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const httpPort = options.httpPort ?? (await freePort());
  const tlsPort = options.tlsPort ?? (await freePort());
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: tls.certFile,
      privateKey: tls.keyFile,
      httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: options.eab !== undefined,
      ...(options.eab ? { externalAccountMACKeys: options.eab } : {}),
      ...(options.blocklist ? { domainBlocklist: options.blocklist } : {}),
    },
  };
  writeFileSync(join(dir, 'pebble-config.json'), JSON.stringify(config));
  const logs: string[] = [];
  const children: ChildProcess[] = [];
  scope.after(async () => {
    await Promise.all(children.map(stop));
  });
  const launch = (cmd: string, args: string[], env: Record<string, string>) => {
    const child = spawn(cmd, args, {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const collect = (d: Buffer) => logs.push(d.toString());
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    return child;
  };
  // AAAA disabled: otherwise pebble's VA tries [::1] first, where nothing listens.
  const challtestsrv = launch(
    'pebble-challtestsrv',
    [
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-management',
      `127.0.0.1:${ctsPort}`,
      '-defaultIPv6',
      '',
    ],
    {},
  );
  const pebble = launch(
    'pebble',
    ['-config', 'pebble-config.json', '-dnsserver', `127.0.0.1:${dnsPort}`, '-strict=false'],
    {
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: String(options.nonceReject ?? 0),
      PEBBLE_AUTHZREUSE: '0',
      ...(options.alwaysValid ? { PEBBLE_VA_ALWAYS_VALID: '1' } : {}),
      ...(options.alternateRoots ? { PEBBLE_ALTERNATE_ROOTS: String(options.alternateRoots) } : {}),
    },
  );
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const mgmt = `https://127.0.0.1:${mgmtPort}`;
  const challtestsrvUrl = `http://127.0.0.1:${ctsPort}`;
  let rootPem: string;
  let intermediatePem: string;
  for (let i = 0; ; i++) {
    if (pebble.exitCode !== null || challtestsrv.exitCode !== null) {
      const log = logs.join('');
      await Promise.all(children.map(stop));
      throw new (/address already in use/.test(log) ? PortTaken : Error)(`pebble exited at start:\n${log}`);
    }
    try {
      const [dirRes, root, inter] = await Promise.all([
        get(directoryUrl, tls.caPem),
        get(`${mgmt}/roots/0`, tls.caPem),
        get(`${mgmt}/intermediates/0`, tls.caPem),
      ]);
      const cts = await postJson(`${challtestsrvUrl}/clear-txt`, { host: 'ready.test.' });
      if (dirRes.status === 200 && root.status === 200 && inter.status === 200 && cts === 200) {
        rootPem = root.body;
        intermediatePem = inter.body;
        break;
      }
    } catch {
      // not listening yet
    }
    if (i > 250) throw new Error(`pebble not ready after 5 s:\n${logs.join('')}`);
    await sleep(20);
  }
  const rootFile = join(dir, 'root.pem');
  writeFileSync(rootFile, rootPem);
  const fqdn = (host: string) => (host.endsWith('.') ? host : `${host}.`);
  return {
    dir,
    directoryUrl,
    tlsCaPem: tls.caPem,
    tlsCertFile: tls.certFile,
    tlsKeyFile: tls.keyFile,
    rootPem,
    rootFile,
    intermediatePem,
    httpPort,
    tlsPort,
    dnsServer: `127.0.0.1:${dnsPort}`,
    challtestsrvUrl,
    async setTxt(host, value) {
      const status = await postJson(`${challtestsrvUrl}/set-txt`, { host: fqdn(host), value });
      if (status !== 200) throw new Error(`challtestsrv set-txt: HTTP ${status}`);
    },
    async clearTxt(host) {
      await postJson(`${challtestsrvUrl}/clear-txt`, { host: fqdn(host) });
    },
    async certStatus(serialHex) {
      const res = await get(`${mgmt}/cert-status-by-serial/${serialHex}`, tls.caPem);
      // pebble 2.4 answers Python-style single quotes
      return JSON.parse(res.body.replace(/'/g, '"')) as { Status: string; Reason?: number };
    },
    async root(index) {
      return (await get(`${mgmt}/roots/${index}`, tls.caPem)).body;
    },
    log: () => logs.join(''),
  };
}
