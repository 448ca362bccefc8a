/**
 * Helpers for the CA API tests: openssl run asynchronously (the daemon under test answers in this same
 * process, so a blocking spawnSync would stall the very server openssl talks to), raw HTTP for binary
 * answers, and the CA certificates from the store.
 */
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import type { TestContext } from 'node:test';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRevocationServer } from '../../../src/api/routes/revocation.js';
import { CAS_COLLECTION, type CaRecord } from '../../../src/ca/authority.js';
import { systemClock } from '../../../src/core/clock.js';
import { createLogger } from '../../../src/app/logger.js';
import type { Harness } from '../../helpers/api-harness.js';

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function openssl(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile('openssl', args, { timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code ?? 1) : 0;
      resolve({ status: typeof code === 'number' ? code : 1, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export function raw(
  base: string,
  method: string,
  path: string,
  options: { body?: Buffer; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers = { ...(options.headers ?? {}) };
    if (options.body) headers['content-length'] = String(options.body.length);
    const req = request(new URL(path, base), { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    if (options.body) req.write(options.body);
    req.end();
  });
}

/** The plain-HTTP revocation listener (serve --http-listen) over the harness's services. */
export async function startRevocationListener(t: TestContext, api: Harness): Promise<string> {
  const app = createRevocationServer(
    {
      clock: systemClock,
      store: api.store,
      audit: api.audit,
      tokens: api.tokens,
      version: 'test',
      ...(api.unsealed ? { cas: api.unsealed.cas } : {}),
      isSealed: () => api.sealed.value,
      notReadyReason: () => undefined,
    },
    { logger: createLogger('silent') },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

export function caPem(api: Harness, name: string): string {
  return api.store.collection<CaRecord>(CAS_COLLECTION).get(name).certificatePem;
}

/** Writes root.pem and inter.pem (the default intermediate) into dir. */
export async function writeCaFiles(api: Harness, dir: string): Promise<void> {
  await writeFile(join(dir, 'root.pem'), caPem(api, 'root'));
  await writeFile(join(dir, 'inter.pem'), caPem(api, 'default'));
}

/** An EC P-256 key and CSR made by openssl. */
export async function opensslCsr(dir: string, name: string, sans: string[]): Promise<string> {
  const res = await openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(dir, `${name}.key`),
    '-out',
    join(dir, `${name}.csr`),
    '-subj',
    `/CN=${sans[0]}`,
    '-addext',
    `subjectAltName=${sans.map((s) => (/^\d/.test(s) ? `IP:${s}` : `DNS:${s}`)).join(',')}`,
  ]);
  if (res.status !== 0) throw new Error(res.stderr);
  return join(dir, `${name}.csr`);
}
