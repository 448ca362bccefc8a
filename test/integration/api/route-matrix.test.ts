/**
 * The role × route matrix (docs/access.md): every route of the API, called over HTTPS against a real
 * daemon by every role (and by nobody), must answer exactly the status in its row. A route the server
 * registers that has no row fails the test, so a new route cannot ship without its access decision.
 *
 * To add a route: add one row to ROUTES — its fastify pattern, a request (functions of the role when a
 * call changes state, so each role acts on its own resource) and the six statuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { createApiServer } from '../../../src/api/server.js';
import { createLogger } from '../../../src/app/logger.js';
import { systemClock } from '../../../src/core/clock.js';
import type { ApiDeps } from '../../../src/api/deps.js';
import { generateKeyPair } from '../../../src/keys/generate.js';
import { buildCsr } from '../../../src/pki/csr.js';
import { parseSanText } from '../../../src/pki/general-name.js';
import { createCertificate, startTestDaemon, type TestDaemon } from '../agent/daemon.js';

const CALLERS = ['admin', 'operator', 'issuer', 'reader', 'service', 'none'] as const;
type Caller = (typeof CALLERS)[number];
/** Statuses in CALLERS order. */
type Row = readonly [number, number, number, number, number, number];

interface RouteCase {
  /** `METHOD /fastify/:pattern`, as the server registers it. */
  readonly route: string;
  readonly path: string | ((who: Caller) => string);
  readonly body?: (who: Caller, fx: Fixtures) => unknown;
  readonly headers?: Record<string, string>;
  readonly expect: Row;
}

interface Fixtures {
  readonly csr: string;
}

const PUBLIC: Row = [200, 200, 200, 200, 200, 200];
const net = (who: Caller) => CALLERS.indexOf(who) + 20;

const ROUTES: readonly RouteCase[] = [
  { route: 'GET /healthz', path: '/healthz', expect: PUBLIC },
  { route: 'GET /readyz', path: '/readyz', expect: PUBLIC },
  { route: 'GET /metrics', path: '/metrics', expect: [200, 200, 200, 200, 403, 401] },
  { route: 'GET /v1/status', path: '/v1/status', expect: [200, 200, 200, 200, 403, 401] },
  { route: 'GET /v1/tokens', path: '/v1/tokens', expect: [200, 403, 403, 403, 403, 401] },
  {
    route: 'POST /v1/tokens',
    path: '/v1/tokens',
    body: () => ({ role: 'reader' }),
    expect: [201, 403, 403, 403, 403, 401],
  },
  {
    route: 'DELETE /v1/tokens/:id',
    path: '/v1/tokens/VICTIM',
    expect: [200, 403, 403, 403, 403, 401],
  },
  { route: 'GET /v1/audit', path: '/v1/audit', expect: [200, 200, 403, 403, 403, 401] },
  // A backup holds every sealed key and the audit log: admin only.
  { route: 'GET /v1/backup', path: '/v1/backup', expect: [200, 403, 403, 403, 403, 401] },
  // Certificates
  { route: 'GET /v1/certificates', path: '/v1/certificates', expect: [200, 200, 200, 200, 403, 401] },
  {
    route: 'POST /v1/certificates',
    path: '/v1/certificates',
    body: (who) => ({ name: `m-${who}`, sans: ['m.internal'], ttl: '30d' }),
    expect: [201, 201, 201, 403, 403, 401],
  },
  {
    route: 'GET /v1/certificates/:name',
    path: '/v1/certificates/web',
    expect: [200, 200, 200, 200, 403, 401],
  },
  {
    route: 'GET /v1/certificates/:name/versions',
    path: '/v1/certificates/web/versions',
    expect: [200, 200, 200, 200, 403, 401],
  },
  {
    route: 'POST /v1/certificates/:name/renew',
    path: '/v1/certificates/web/renew',
    expect: [200, 200, 200, 403, 403, 401],
  },
  {
    route: 'POST /v1/certificates/:name/revoke',
    path: '/v1/certificates/rv/revoke',
    body: () => ({ reason: 'superseded' }),
    expect: [200, 200, 403, 403, 403, 401],
  },
  // Only a client certificate renews itself: every token, even admin, is refused.
  {
    route: 'POST /v1/mtls/renew',
    path: '/v1/mtls/renew',
    body: () => ({ csr: 'x' }),
    expect: [403, 403, 403, 403, 403, 401],
  },
  // Allowed roles reach the state check: the current version's key is active, so restoring it is a conflict.
  {
    route: 'POST /v1/certificates/:name/versions/:version/key/restore',
    path: '/v1/certificates/web/versions/1/key/restore',
    expect: [409, 409, 403, 403, 403, 401],
  },
  // Readers and issuers get the public bundle, services the key; an operator never sees a key.
  {
    route: 'GET /v1/certificates/:name/bundle',
    path: '/v1/certificates/web/bundle',
    expect: [200, 200, 200, 200, 200, 401],
  },
  { route: 'GET /v1/events', path: '/v1/events', expect: [200, 200, 200, 200, 200, 401] },
  // VPN
  { route: 'GET /v1/vpn/networks', path: '/v1/vpn/networks', expect: [200, 200, 403, 200, 403, 401] },
  {
    route: 'POST /v1/vpn/networks',
    path: '/v1/vpn/networks',
    body: (who) => ({ name: `n-${who}`, cidrs: [`10.${net(who)}.0.0/24`] }),
    expect: [201, 201, 403, 403, 403, 401],
  },
  {
    route: 'GET /v1/vpn/networks/:net',
    path: '/v1/vpn/networks/office',
    expect: [200, 200, 403, 200, 403, 401],
  },
  {
    route: 'POST /v1/vpn/networks/:net/peers',
    path: '/v1/vpn/networks/office/peers',
    body: (who) => ({ name: `p-${who}` }),
    expect: [201, 201, 403, 403, 403, 401],
  },
  {
    route: 'DELETE /v1/vpn/networks/:net/peers/:peer',
    path: (who) => `/v1/vpn/networks/office/peers/p-${who}`,
    expect: [200, 200, 403, 403, 403, 401],
  },
  {
    route: 'POST /v1/vpn/networks/:net/rotate',
    path: '/v1/vpn/networks/office/rotate',
    body: () => ({ what: 'psk' }),
    expect: [200, 200, 403, 403, 403, 401],
  },
  {
    route: 'GET /v1/vpn/networks/:net/peers/:peer/config',
    path: '/v1/vpn/networks/office/peers/laptop/config',
    expect: [200, 403, 403, 403, 200, 401],
  },
  // CAs
  { route: 'GET /v1/cas', path: '/v1/cas', expect: [200, 200, 200, 200, 403, 401] },
  { route: 'GET /v1/cas/:ca', path: '/v1/cas/default', expect: [200, 200, 200, 200, 403, 401] },
  { route: 'GET /v1/cas/:ca/chain', path: '/v1/cas/default/chain', expect: [200, 200, 200, 200, 403, 401] },
  {
    route: 'POST /v1/cas',
    path: '/v1/cas',
    body: (who) => ({ name: `ca-${who}`, parent: 'root' }),
    expect: [201, 201, 403, 403, 403, 401],
  },
  {
    // Past authorization, the import fails on the PEM: 400 shows the caller got that far.
    route: 'POST /v1/cas/:ca/import',
    path: '/v1/cas/imported/import',
    body: () => ({ certificate: 'not a certificate', key: 'not a key' }),
    expect: [400, 400, 403, 403, 403, 401],
  },
  {
    route: 'POST /v1/cas/:ca/sign',
    path: '/v1/cas/default/sign',
    body: (_who, fx) => ({ csr: fx.csr, ttl: '1d' }),
    expect: [201, 201, 201, 403, 403, 401],
  },
  {
    route: 'POST /v1/cas/:ca/issue',
    path: '/v1/cas/default/issue',
    body: () => ({ sans: ['matrix.internal.example'], ttl: '1d' }),
    expect: [201, 201, 201, 403, 403, 401],
  },
  {
    route: 'POST /v1/cas/:ca/revoke',
    path: '/v1/cas/default/revoke',
    body: () => ({ serial: 'ff01' }),
    expect: [404, 404, 403, 403, 403, 401],
  },
  {
    route: 'POST /v1/cas/:ca/export-key',
    path: '/v1/cas/default/export-key',
    body: () => ({ passphrase: 'correct horse battery staple' }),
    expect: [200, 403, 403, 403, 403, 401],
  },
  {
    route: 'POST /v1/cas/:ca/disable-key',
    path: (who) => `/v1/cas/ca-${who}/disable-key`,
    expect: [200, 200, 403, 403, 403, 401],
  },
  { route: 'POST /v1/reload', path: '/v1/reload', expect: [200, 200, 403, 403, 403, 401] },
  // Deploy state
  { route: 'GET /v1/deployments', path: '/v1/deployments', expect: [200, 200, 403, 200, 403, 401] },
  {
    // Past authorization, `web` has no deploy targets: 400.
    route: 'POST /v1/deployments/:name/retry',
    path: '/v1/deployments/web/retry',
    expect: [400, 400, 403, 403, 403, 401],
  },
  // ACME accounts (no ACME server here: past authorization, the calls fail as they would upstream)
  { route: 'GET /v1/acme/accounts', path: '/v1/acme/accounts', expect: [200, 200, 403, 200, 403, 401] },
  {
    route: 'GET /v1/acme/accounts/:name',
    path: '/v1/acme/accounts/nope',
    expect: [404, 404, 403, 404, 403, 401],
  },
  {
    route: 'POST /v1/acme/accounts',
    path: '/v1/acme/accounts',
    body: (who) => ({ name: `acme-${who}`, directory: 'https://127.0.0.1:9/directory', agreeTos: true }),
    expect: [502, 502, 403, 403, 403, 401],
  },
  {
    route: 'POST /v1/acme/accounts/:name/rollover',
    path: '/v1/acme/accounts/nope/rollover',
    expect: [404, 404, 403, 403, 403, 401],
  },
  {
    route: 'POST /v1/acme/accounts/:name/deactivate',
    path: '/v1/acme/accounts/nope/deactivate',
    expect: [404, 404, 403, 403, 403, 401],
  },
  // Relying parties: no token, same answer for everyone.
  { route: 'GET /crl/:file', path: '/crl/default.crl', expect: PUBLIC },
  { route: 'GET /ca/:file', path: '/ca/default.crt', expect: PUBLIC },
  {
    route: 'POST /ocsp/:ca',
    path: '/ocsp/default',
    headers: { 'content-type': 'application/ocsp-request' },
    expect: PUBLIC,
  },
  { route: 'GET /ocsp/:ca/*', path: '/ocsp/default/MAA%3D', expect: PUBLIC },
];

/** The routes the API server registers (HEAD twins aside), read from fastify itself. */
async function registeredRoutes(): Promise<string[]> {
  const deps = {
    clock: systemClock,
    version: 'routes',
    isSealed: () => false,
    notReadyReason: () => undefined,
  } as unknown as ApiDeps;
  const app = createApiServer(deps, { logger: createLogger('silent'), bodyLimit: 1024, rateLimit: 1 });
  const routes: string[] = [];
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push(`${m} ${r.url}`);
  });
  await app.ready();
  await app.close();
  return routes;
}

/** One request; an event stream counts as answered once its status line arrives. */
function send(
  d: TestDaemon,
  method: string,
  path: string,
  token: string | undefined,
  body: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { ...extraHeaders };
  if (token) headers.authorization = `Bearer ${token}`;
  if (payload) {
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = httpsRequest(new URL(path, d.url), { method, headers, ca: d.ca, agent: false }, (res) => {
      if (String(res.headers['content-type']).startsWith('text/event-stream')) {
        req.destroy();
        return resolve({ status: res.statusCode ?? 0, text: '' });
      }
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', (err) =>
      (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err),
    );
    req.end(payload);
  });
}

test('role × route: every route, every role, the exact status; no route left out', async (t) => {
  const live = await registeredRoutes();
  const covered = new Set(ROUTES.map((r) => r.route));
  assert.deepEqual(
    live.filter((r) => !covered.has(r)),
    [],
    'routes without a row in the matrix: add one to ROUTES',
  );

  const d = await startTestDaemon(t, { api: { rateLimit: 100_000 } });
  const tokens: Record<Caller, string | undefined> = {
    admin: d.adminToken,
    operator: await d.token('operator'),
    issuer: await d.token('issuer', ['cert:web', 'cert:m-*', 'ca:default']),
    reader: await d.token('reader'),
    service: await d.token('service', ['cert:web', 'vpn:office/laptop']),
    none: undefined,
  };
  await createCertificate(d, 'web');
  await createCertificate(d, 'rv');
  const office = await d.call('POST', '/v1/vpn/networks', {
    token: d.adminToken,
    body: { name: 'office', cidrs: ['10.9.0.0/24'] },
  });
  assert.equal(office.status, 201, office.text);
  const laptop = await d.call('POST', '/v1/vpn/networks/office/peers', {
    token: d.adminToken,
    body: { name: 'laptop' },
  });
  assert.equal(laptop.status, 201, laptop.text);
  const { privateKey } = await generateKeyPair('ec-p256');
  const csr = buildCsr({ privateKey, sans: [parseSanText('signed.internal')] }).toString('base64');
  const fx: Fixtures = {
    csr: `-----BEGIN CERTIFICATE REQUEST-----\n${csr.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`,
  };
  const victim = await d.call('POST', '/v1/tokens', { token: d.adminToken, body: { role: 'reader' } });
  const victimId = victim.json.id as string;

  const mismatches: string[] = [];
  for (const row of ROUTES) {
    if (!live.includes(row.route)) {
      t.diagnostic(`skipped ${row.route}: this build does not register it`);
      continue;
    }
    const method = row.route.split(' ')[0]!;
    for (const [i, who] of CALLERS.entries()) {
      const path = (typeof row.path === 'function' ? row.path(who) : row.path).replace('VICTIM', victimId);
      const r = await send(d, method, path, tokens[who], row.body?.(who, fx), row.headers);
      if (r.status !== row.expect[i]) {
        // Only the problem code: a body may hold a key, and test output must not.
        const code = /"code":"([A-Z_]+)"/.exec(r.text)?.[1] ?? '';
        mismatches.push(`${row.route} as ${who}: ${r.status} ${code}, expected ${row.expect[i]}`);
      }
    }
  }
  assert.deepEqual(mismatches, []);
});
