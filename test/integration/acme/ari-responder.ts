/**
 * A small RFC 9773 (ARI) and ACME-profiles responder for the tests, in front of pebble 2.4, which has
 * neither. It proxies every request to pebble unchanged (the Host header too, so pebble's URLs and JWS
 * `url` checks name the proxy), and adds what pebble lacks, on the real wire format:
 *  - the directory gains `renewalInfo` (RFC 9773 §6.1) and `meta.profiles` (draft-ietf-acme-profiles §3);
 *  - `GET <renewalInfo>/<certID>` answers `{"suggestedWindow": {"start", "end"}, "explanationURL"}` with
 *    a Retry-After header, as in RFC 9773 §4.2's example;
 *  - newOrder payloads are recorded; an unknown `profile` gets an `invalidProfile` problem, and a
 *    `replaces` naming a certificate already replaced gets `alreadyReplaced` (409), as RFC 9773 §5 lets
 *    a server answer.
 */
import { createServer, request as httpsRequest, type Server } from 'node:https';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import type { Pebble } from '../../helpers/pebble.js';

export interface Window {
  start: Date;
  end: Date;
  retryAfterSeconds?: number;
}

export interface AriResponder {
  readonly directoryUrl: string;
  /** newOrder payloads in arrival order. */
  readonly orders: Array<{ identifiers: unknown; profile?: string; replaces?: string }>;
  /** certID → number of renewalInfo GETs. */
  readonly ariHits: Map<string, number>;
  setWindow(certId: string, window: Window): void;
  /** Certificates (by certID) the responder treats as already replaced. */
  readonly replaced: Set<string>;
  /** Problems the next newOrders get instead of pebble's answer (rate limits, outages). */
  readonly failNextOrders: Array<{ status: number; type: string; detail: string; retryAfter?: string }>;
}

const PROBLEM = 'application/problem+json';

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function problem(res: ServerResponse, status: number, type: string, detail: string): void {
  res.writeHead(status, { 'content-type': PROBLEM });
  res.end(JSON.stringify({ type: `urn:ietf:params:acme:error:${type}`, detail, status }));
}

export async function startAriResponder(
  t: TestContext,
  pebble: Pebble,
  options: { profiles: Record<string, string>; defaultWindow: () => Window },
): Promise<AriResponder> {
  const upstream = new URL(pebble.directoryUrl);
  const windows = new Map<string, Window>();
  const orders: AriResponder['orders'] = [];
  const ariHits = new Map<string, number>();
  const replaced = new Set<string>();
  const failNextOrders: AriResponder['failNextOrders'] = [];
  let base = '';

  const forward = (
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const headers = { ...req.headers } as Record<string, string | string[]>;
      delete headers['content-length'];
      if (body.length > 0) headers['content-length'] = String(body.length);
      const out = httpsRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers,
          ca: pebble.tlsCaPem,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const h: Record<string, string | string[]> = {};
            for (const [k, v] of Object.entries(res.headers))
              if (v !== undefined && k !== 'content-length' && k !== 'transfer-encoding') h[k] = v;
            resolve({ status: res.statusCode ?? 502, headers: h, body: Buffer.concat(chunks) });
          });
        },
      );
      out.on('error', reject);
      out.end(body);
    });

  const send = (
    res: ServerResponse,
    r: { status: number; headers: Record<string, string | string[]>; body: Buffer },
  ) => {
    res.writeHead(r.status, { ...r.headers, 'content-length': String(r.body.length) });
    res.end(r.body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    const body = await readBody(req);
    if (req.method === 'GET' && path === '/dir') {
      const r = await forward(req, body);
      const dir = JSON.parse(r.body.toString('utf8')) as Record<string, unknown> & {
        meta?: Record<string, unknown>;
      };
      dir.renewalInfo = `${base}/renewal-info`;
      dir.meta = { ...(dir.meta ?? {}), profiles: options.profiles };
      return send(res, { ...r, body: Buffer.from(JSON.stringify(dir)) });
    }
    if (req.method === 'GET' && path.startsWith('/renewal-info/')) {
      const certId = path.slice('/renewal-info/'.length);
      // RFC 9773 §4.1: two base64url parts joined by a period, no padding.
      if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(certId))
        return problem(res, 400, 'malformed', 'not an ARI certificate identifier');
      ariHits.set(certId, (ariHits.get(certId) ?? 0) + 1);
      const w = windows.get(certId) ?? options.defaultWindow();
      res.writeHead(200, {
        'content-type': 'application/json',
        'retry-after': String(w.retryAfterSeconds ?? 21600),
      });
      res.end(
        JSON.stringify({
          suggestedWindow: { start: w.start.toISOString(), end: w.end.toISOString() },
          explanationURL: 'https://acme.example.com/docs/ari',
        }),
      );
      return;
    }
    if (req.method === 'POST' && path === '/order-plz') {
      const jws = JSON.parse(body.toString('utf8')) as { payload: string };
      const payload = JSON.parse(
        Buffer.from(jws.payload, 'base64url').toString('utf8'),
      ) as AriResponder['orders'][number];
      orders.push(payload);
      const fail = failNextOrders.shift();
      if (fail) {
        res.writeHead(fail.status, {
          'content-type': PROBLEM,
          ...(fail.retryAfter ? { 'retry-after': fail.retryAfter } : {}),
        });
        res.end(
          JSON.stringify({
            type: `urn:ietf:params:acme:error:${fail.type}`,
            detail: fail.detail,
            status: fail.status,
          }),
        );
        return;
      }
      if (payload.profile !== undefined && !(payload.profile in options.profiles)) {
        return problem(res, 400, 'invalidProfile', `profile "${payload.profile}" is not offered`);
      }
      if (payload.replaces !== undefined && replaced.has(payload.replaces)) {
        return problem(
          res,
          409,
          'alreadyReplaced',
          `certificate ${payload.replaces} has already been replaced`,
        );
      }
      const r = await forward(req, body);
      if (r.status === 201) {
        if (payload.replaces !== undefined) replaced.add(payload.replaces);
        if (payload.profile !== undefined) {
          const order = JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
          order.profile = payload.profile;
          return send(res, { ...r, body: Buffer.from(JSON.stringify(order)) });
        }
      }
      return send(res, r);
    }
    send(res, await forward(req, body));
  };

  const server: Server = createServer(
    { cert: readFileSync(pebble.tlsCertFile), key: readFileSync(pebble.tlsKeyFile) },
    (req, res) => {
      handle(req, res).catch((err: unknown) => problem(res, 500, 'serverInternal', String(err)));
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.close();
    server.closeAllConnections();
  });
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    directoryUrl: `${base}/dir`,
    orders,
    ariHits,
    replaced,
    failNextOrders,
    setWindow: (certId, window) => windows.set(certId, window),
  };
}
