import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { NAME_PATTERN } from '../core/ids.js';
import { isAllowed } from '../access/policy.js';
import { principalActor, type Principal } from '../access/principal.js';
import type { ApiDeps } from './deps.js';
import type { VersionRecord } from '../lifecycle/records.js';
import { auditedAs } from './audited.js';
import { etagMatches } from '../vpn/index.js';
import { rateHeaders, type RateLimiter } from './rate-limit.js';
import { requestIdOf, problemAnswer, bearerToken } from './answers.js';
import {
  PEM_CHAIN_MEDIA_TYPE,
  bundleEtag,
  bundleJson,
  bundlePem,
  keyExportAudit,
} from './routes/certificates.js';

export interface HotPathOptions {
  readonly deps: ApiDeps;
  readonly logger: FastifyBaseLogger;
  readonly limiter: RateLimiter | undefined;
  /** True once the server started closing: fastify then answers 503 itself. */
  readonly closing: () => boolean;
}

/** Answers the request and returns true, or returns false having written nothing (fastify answers it). */
export type HotPath = (req: IncomingMessage, res: ServerResponse) => boolean;

const BUNDLE_URL = /^\/v1\/certificates\/([^/?#]{1,64})\/bundle(?:\?format=(pem|json))?$/;

/**
 * Bundle pulls with the key (GET /v1/certificates/{name}/bundle, format pem or json), the request
 * services repeat most, answered on node:http ahead of fastify: its routing, hooks, reply and per-request
 * logger cost about a fifth of a pull (docs/distribution.md). Only the plain successful shape is handled
 * here, with the same authentication, rate limit budget, audit entry, ETag and bodies as the route in
 * routes/certificates.ts (shared functions, not copies). Anything else (no bearer token, a caller without
 * key.export, a token refused, a wait, another format, sealed or closing, an over-budget caller) returns
 * false before anything is written or counted twice, and fastify answers it exactly as it always has.
 */
export function bundleHotPath(options: HotPathOptions): HotPath {
  const { deps, logger, limiter } = options;
  // fastify logs each request at info; so does this path, at the same levels.
  const logsRequests = ['info', 'debug', 'trace'].includes(logger.level);
  return (req, res) => {
    if (req.method !== 'GET') return false;
    const url = req.url ?? '';
    const m = BUNDLE_URL.exec(url);
    if (m === null) return false;
    const name = m[1]!;
    const format = (m[2] ?? 'json') as 'pem' | 'json';
    const certs = deps.certificates;
    const token = bearerToken(req.headers.authorization);
    if (
      !NAME_PATTERN.test(name) ||
      token === undefined ||
      certs === undefined ||
      deps.isSealed() ||
      options.closing()
    )
      return false;
    let principal: Principal;
    let etag: string;
    let current: VersionRecord;
    try {
      principal = deps.tokens.authenticate(token);
      if (!isAllowed(principal, 'key.export', { kind: 'cert', name })) return false;
      current = certs.current(name);
      etag = bundleEtag(current, true, format);
    } catch {
      return false; // refused or unknown: fastify says why, in problem+json
    }
    const actor = principalActor(principal);
    let rate: Record<string, string> = {};
    if (limiter !== undefined) {
      const decision = limiter.take(actor);
      if (!decision.allowed) return false; // fastify counts it again (still over) and answers 429
      rate = rateHeaders(decision);
    }
    const requestId = requestIdOf(req);
    const started = performance.now();
    const common = { 'x-request-id': requestId, ...rate, 'cache-control': 'no-store' };
    const answer = (status: number, headers: Record<string, string>, body?: string) => {
      res.writeHead(
        status,
        body === undefined
          ? { ...common, ...headers }
          : {
              ...common,
              ...headers,
              'content-length': String(Buffer.byteLength(body)),
            },
      );
      res.end(body);
      if (logsRequests) {
        logger.info(
          {
            reqId: requestId,
            req: { method: 'GET', url },
            res: { statusCode: status },
            responseTime: performance.now() - started,
          },
          'request completed',
        );
      }
    };
    if (etagMatches(req.headers['if-none-match'], etag)) {
      answer(304, { etag });
      return true;
    }
    const caller = { actor, requestId, log: logger };
    auditedAs(deps, caller, keyExportAudit(name, current.version, format, undefined), () =>
      certs.bundle(name, true),
    )
      .then((material) => {
        // A renewal committed in between: label what is sent.
        const sent = material.version.id === current.id ? etag : bundleEtag(material.version, true, format);
        if (format === 'pem') {
          answer(200, { etag: sent, 'content-type': PEM_CHAIN_MEDIA_TYPE }, bundlePem(material));
        } else {
          const body = JSON.stringify(bundleJson(name, material));
          answer(200, { etag: sent, 'content-type': 'application/json; charset=utf-8' }, body);
        }
      })
      // Also what the answer itself throws: nothing here may become an unhandled rejection.
      .catch((err: unknown) => {
        if (res.headersSent) {
          logger.error({ err, reqId: requestId }, 'bundle pull failed after its answer began');
          res.destroy();
          return;
        }
        const { problem, headers } = problemAnswer(err, requestId, logger);
        answer(problem.status, headers, JSON.stringify(problem));
      })
      .catch(() => res.destroy());
    return true;
  };
}
