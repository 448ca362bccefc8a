import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { createApiServer } from '../../src/api/server.js';
import { openLowdbStore } from '../../src/store/lowdb/index.js';
import { AuditLog } from '../../src/audit/index.js';
import { TokenService } from '../../src/access/token-service.js';
import { createLogger } from '../../src/app/logger.js';
import { systemClock } from '../../src/core/clock.js';
import { tempDir } from './tmp.js';
import type { Store } from '../../src/store/port.js';
import type { VpnService } from '../../src/vpn/service.js';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SoftwareSealer } from '../../src/keys/software/sealer.js';
import { createKeyRing } from '../../src/keys/software/key-ring.js';
import { parseConfig } from '../../src/config/load.js';
import { ensureCaHierarchy } from '../../src/ca/authority.js';
import { buildUnsealedServices, type UnsealedServices } from '../../src/app/unsealed.js';
import { silentLogger } from '../../src/core/logger.js';
import { createMetrics, type Metrics } from '../../src/api/metrics.js';

export interface Harness {
  dataDir: string;
  url: string;
  adminToken: string;
  tokens: TokenService;
  audit: AuditLog;
  store: Store;
  sealed: { value: boolean };
  /** Requests fastify saw (the bundle hot path answers some before it does). */
  fastifyRequests: { value: number };
  /** With `unsealed: true`. */
  unsealed?: UnsealedServices;
  call(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string> },
  ): Promise<HttpResult>;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** The real API on 127.0.0.1 (a port the OS picks free), over a real lowdb store and audit log in a tmpdir. */
export async function startApi(
  t: TestContext,
  options: {
    bodyLimit?: number;
    /** Builds the VPN service over the harness's store and audit log (ApiDeps.vpn). */
    vpn?: (base: { store: Store; audit: AuditLog }) => VpnService;
    /** Unsealed: a fresh KEK, the default CA hierarchy and every unsealed service (certificates, CAs, …). */
    unsealed?: boolean;
    /** Configuration keys for the unsealed services (top-level keys replace the harness's). */
    config?: Record<string, unknown>;
    /** api.rateLimit: requests a minute per caller. */
    rateLimit?: number;
  } = {},
): Promise<Harness> {
  const dataDir = await tempDir(t, 'kw-api-');
  const store = await openLowdbStore({ dataDir });
  const audit = await AuditLog.open({ path: join(dataDir, 'audit.log') });
  const tokens = new TokenService({ store, clock: systemClock });
  const sealed = { value: false };
  let unsealed: UnsealedServices | undefined;
  let metrics: Metrics | undefined;
  let sealer: SoftwareSealer | undefined;
  if (options.unsealed) {
    sealer = new SoftwareSealer(createKeyRing(randomBytes(32)));
    const config = parseConfig({ dataDir, ca: { root: { key: 'ec-p256' } }, ...options.config }, 'test');
    await ensureCaHierarchy({ store, sealer, audit, clock: systemClock, config: config.ca, actor: 'test' });
    metrics = createMetrics({ store, audit, nowMs: () => systemClock.nowMs() });
    unsealed = buildUnsealedServices({
      metrics,
      config,
      store,
      sealer,
      audit,
      clock: systemClock,
      logger: silentLogger,
    });
  }
  const app = createApiServer(
    {
      clock: systemClock,
      store,
      audit,
      tokens,
      version: 'test',
      ...(unsealed ? { certificates: unsealed.certificates, vpn: unsealed.vpn, cas: unsealed.cas } : {}),
      ...(metrics ? { metrics } : {}),
      ...(options.vpn ? { vpn: options.vpn({ store, audit }) } : {}),
      isSealed: () => sealed.value,
      notReadyReason: () => undefined,
    },
    {
      logger: createLogger('silent'),
      bodyLimit: options.bodyLimit ?? 64 * 1024,
      ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit }),
    },
  );
  const fastifyRequests = { value: 0 };
  // onResponse: it runs for refused requests too, which end the onRequest chain early.
  app.addHook('onResponse', async () => {
    fastifyRequests.value += 1;
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(async () => {
    await app.close();
    await audit.close();
    await store.close();
  });
  const { token: adminToken } = await tokens.create({ role: 'admin', createdBy: 'test' });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  return {
    dataDir,
    url,
    adminToken,
    tokens,
    audit,
    store,
    sealed,
    fastifyRequests,
    ...(unsealed ? { unsealed } : {}),
    call: (method, path, o = {}) => call(url, method, path, o),
  };
}

function call(
  base: string,
  method: string,
  path: string,
  o: { token?: string; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string> },
): Promise<HttpResult> {
  const payload = o.rawBody ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (payload !== undefined) {
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = String(Buffer.byteLength(payload));
  }
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, base), { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}
