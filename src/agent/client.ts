import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { AppError, ERROR_CATALOGUE, type ErrorCode } from '../core/errors.js';

/** How the agent reaches and authenticates to the daemon. */
export interface AgentConnection {
  readonly server: string;
  readonly token?: string | undefined;
  /** PEM trust for the daemon's HTTPS (its internal root); the system store when absent. */
  readonly ca?: string | undefined;
  /** mTLS instead of (or beside) a token: PEM certificate chain and key from the internal CA. */
  readonly clientCert?: string | undefined;
  readonly clientKey?: string | undefined;
}

/** What every conditional GET carries: the ETag held, the long-poll length, the stop signal. */
export interface ConditionalRequest {
  readonly ifNoneMatch?: string | undefined;
  /** Long poll: seconds the daemon may hold the request while If-None-Match is current. */
  readonly waitSeconds?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface BundleRequest extends ConditionalRequest {
  readonly certificate: string;
  readonly format: 'json' | 'sealed';
  /** base64url SPKI DER of the agent's own public key (format=sealed). */
  readonly sealKey?: string | undefined;
}

export interface VpnConfigRequest extends ConditionalRequest {
  readonly network: string;
  readonly peer: string;
}

export type BundleResponse =
  | { readonly status: 304; readonly etag: string | undefined }
  | { readonly status: 200; readonly etag: string | undefined; readonly body: Buffer };

/** Answers with no body but a status a retry can fix: the daemon closing, a proxy in front of it. */
const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/** A small client for the calls the agent makes; keeps connections alive between polls. */
export class BundleClient {
  readonly #c: AgentConnection;
  readonly #url: URL;
  #agent: HttpAgent;

  constructor(connection: AgentConnection) {
    this.#c = connection;
    let url: URL;
    try {
      url = new URL(connection.server);
    } catch {
      throw new AppError(
        'INVALID_ARGUMENT',
        `--server ${connection.server}: not a URL; use https://HOST:PORT`,
      );
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new AppError('INVALID_ARGUMENT', `--server ${connection.server}: use an https:// URL`);
    }
    this.#url = url;
    this.#agent = this.#newAgent(connection.clientCert, connection.clientKey);
  }

  #newAgent(cert: string | undefined, key: string | undefined): HttpAgent {
    return this.#url.protocol === 'https:'
      ? new HttpsAgent({
          keepAlive: true,
          maxSockets: 2,
          ...(this.#c.ca ? { ca: this.#c.ca } : {}),
          ...(cert ? { cert } : {}),
          ...(key ? { key } : {}),
        })
      : new HttpAgent({ keepAlive: true, maxSockets: 2 });
  }

  /** Uses a renewed client certificate from the next request on (kept-alive sockets carry the old one). */
  setClientCredentials(cert: string, key: string): void {
    this.#agent.destroy();
    this.#agent = this.#newAgent(cert, key);
  }

  close(): void {
    this.#agent.destroy();
  }

  fetchBundle(r: BundleRequest): Promise<BundleResponse> {
    const url = new URL(`v1/certificates/${encodeURIComponent(r.certificate)}/bundle`, withSlash(this.#url));
    url.searchParams.set('format', r.format);
    const headers: Record<string, string> = {
      accept: r.format === 'sealed' ? 'application/jose' : 'application/json',
    };
    if (r.sealKey) headers['x-keywright-seal-key'] = r.sealKey;
    return this.#get(url, headers, r);
  }

  /**
   * POST /v1/mtls/renew, authenticated by the client certificate alone: the bearer token is left out on
   * purpose, since the daemon prefers a token and the renewal is the certificate's own act.
   */
  renewClientCert(body: { csr: string }): Promise<Record<string, unknown>> {
    const url = new URL('v1/mtls/renew', withSlash(this.#url));
    const payload = JSON.stringify(body);
    const requester = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = requester(
        url,
        {
          method: 'POST',
          agent: this.#agent,
          timeout: 30_000,
          headers: {
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(payload)),
            accept: 'application/json',
            'user-agent': 'keywright-agent',
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(unreachable(url, err)));
          res.on('end', () => {
            const body = Buffer.concat(chunks);
            if (res.statusCode !== 201) {
              return reject(problemError(res.statusCode ?? 0, body, res.headers['retry-after']));
            }
            try {
              resolve(JSON.parse(body.toString('utf8')) as Record<string, unknown>);
            } catch (err) {
              reject(
                new AppError('INTERNAL', 'the daemon answered a CSR with something not JSON', { cause: err }),
              );
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => reject(unreachable(url, err)));
      req.end(payload);
    });
  }

  /** A VPN peer's wg-quick config (docs/vpn.md); same ETag and long-poll rules as the bundle. */
  fetchVpnConfig(r: VpnConfigRequest): Promise<BundleResponse> {
    const path = `v1/vpn/networks/${encodeURIComponent(r.network)}/peers/${encodeURIComponent(r.peer)}/config`;
    return this.#get(new URL(path, withSlash(this.#url)), { accept: 'text/plain' }, r);
  }

  #get(url: URL, extra: Record<string, string>, r: ConditionalRequest): Promise<BundleResponse> {
    if (r.waitSeconds !== undefined && r.waitSeconds > 0) url.searchParams.set('wait', String(r.waitSeconds));
    const headers: Record<string, string> = { ...extra, 'user-agent': 'keywright-agent' };
    if (this.#c.token) headers.authorization = `Bearer ${this.#c.token}`;
    if (r.ifNoneMatch) headers['if-none-match'] = r.ifNoneMatch;
    const requester = url.protocol === 'https:' ? httpsRequest : httpRequest;
    // The daemon answers a long poll by the end of the wait; anything much later is a dead connection.
    const timeoutMs = ((r.waitSeconds ?? 0) + 30) * 1000;
    return new Promise((resolve, reject) => {
      const req = requester(
        url,
        {
          method: 'GET',
          headers,
          agent: this.#agent,
          timeout: timeoutMs,
          ...(r.signal ? { signal: r.signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(unreachable(url, err)));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const etag = typeof res.headers.etag === 'string' ? res.headers.etag : undefined;
            if (status === 304) return resolve({ status: 304, etag });
            const body = Buffer.concat(chunks);
            if (status === 200) return resolve({ status: 200, etag, body });
            reject(problemError(status, body, res.headers['retry-after']));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => reject(unreachable(url, err)));
      req.end();
    });
  }
}

function withSlash(url: URL): URL {
  return url.pathname.endsWith('/') ? url : new URL(`${url.href}/`);
}

function unreachable(url: URL, err: NodeJS.ErrnoException): AppError {
  return new AppError(
    'DAEMON_UNREACHABLE',
    `cannot reach the daemon at ${url.origin}: ${err.code ?? err.message}`,
    { cause: err, retryable: true, details: { url: url.origin, ...(err.code ? { cause: err.code } : {}) } },
  );
}

/** The daemon's problem+json as an AppError with its code; retryable as the catalogue or status says. */
function problemError(status: number, body: Buffer, retryAfter: string | string[] | undefined): AppError {
  let p: { code?: string; detail?: string; details?: Record<string, unknown> } = {};
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null) p = parsed;
  } catch {
    /* not problem+json (a proxy, a closing server): the status says enough */
  }
  const known = p.code !== undefined && p.code in ERROR_CATALOGUE;
  const code: ErrorCode = known ? (p.code as ErrorCode) : status === 503 ? 'DAEMON_UNREACHABLE' : 'INTERNAL';
  const retryAfterSeconds =
    typeof retryAfter === 'string' && /^\d+$/.test(retryAfter) ? Number(retryAfter) : undefined;
  return new AppError(code, p.detail ?? `the daemon answered HTTP ${status}`, {
    retryable: RETRYABLE_STATUS.has(status) || (known && ERROR_CATALOGUE[code].retryable),
    details: {
      status,
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
      ...(p.details ?? {}),
    },
  });
}
