import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { AppError, ERROR_CATALOGUE, type ErrorCode } from '../core/errors.js';

export interface ApiClientOptions {
  readonly url: string;
  readonly token?: string | undefined;
  /** PEM trust anchors for the daemon's HTTPS (its internal root). */
  readonly ca?: string | undefined;
  readonly timeoutMs?: number;
}

export interface ApiResponse<T> {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: T;
}

/** A small client for the daemon's API; problem+json answers become AppErrors with the daemon's code. */
export class ApiClient {
  constructor(private readonly options: ApiClientOptions) {}

  get<T>(path: string): Promise<T> {
    return this.send<T>('GET', path).then((r) => r.body);
  }
  post<T>(path: string, body: unknown): Promise<T> {
    return this.send<T>('POST', path, body).then((r) => r.body);
  }
  delete<T>(path: string): Promise<T> {
    return this.send<T>('DELETE', path).then((r) => r.body);
  }

  /** `binary`: resolve with the raw bytes (PKCS#12) instead of parsed JSON. */
  send<T>(
    method: string,
    path: string,
    body?: unknown,
    extraHeaders: Record<string, string> = {},
    binary = false,
  ): Promise<ApiResponse<T>> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: binary ? '*/*' : 'application/json', ...extraHeaders };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    return new Promise((resolve, reject) => {
      const req = this.#request(method, path, headers, reject, undefined, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          const status = res.statusCode ?? 0;
          if (binary && status < 400) return resolve({ status, headers: res.headers, body: raw as T });
          const parsed = jsonOrText(raw);
          if (status >= 400) return reject(problemToError(status, parsed));
          resolve({ status, headers: res.headers, body: parsed as T });
        });
      });
      if (payload) req.write(payload);
      req.end();
    });
  }

  /**
   * GET a body too big to hold (a backup): resolves, once the daemon answers below 400, with the body as
   * a stream the caller must read to the end or destroy. An error answer is read (bounded) and rejected
   * as the daemon's AppError. If the body breaks off, the stream fails with DAEMON_UNREACHABLE; a body
   * that ends cleanly but short is for the caller to notice. `signal` aborts the request or the body.
   */
  stream(path: string, o: { signal?: AbortSignal } = {}): Promise<ApiResponse<Readable>> {
    return new Promise((resolve, reject) => {
      const req = this.#request('GET', path, { accept: '*/*' }, reject, o.signal, (res, url) => {
        const status = res.statusCode ?? 0;
        if (status < 400) {
          resolve({
            status,
            headers: res.headers,
            body: Readable.from(relay(res, url), { objectMode: false }),
          });
          return;
        }
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (c: Buffer) => {
          if (kept >= MAX_ERROR_BODY) return;
          chunks.push(c);
          kept += c.length;
        });
        res.on('error', (err) => reject(unreachable(url, err)));
        res.on('end', () => reject(problemToError(status, jsonOrText(Buffer.concat(chunks)))));
      });
      req.end();
    });
  }

  /** A request to the daemon with the token, trust anchors and timeout every call gets. */
  #request(
    method: string,
    path: string,
    headers: Record<string, string>,
    reject: (err: AppError) => void,
    signal: AbortSignal | undefined,
    onResponse: (res: IncomingMessage, url: URL) => void,
  ): ClientRequest {
    const url = new URL(path, this.options.url);
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    const requester = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = requester(
      url,
      {
        method,
        headers,
        ...(url.protocol === 'https:' && this.options.ca ? { ca: this.options.ca } : {}),
        timeout: this.options.timeoutMs ?? 30_000,
        ...(signal === undefined ? {} : { signal }),
      },
      (res) => onResponse(res, url),
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => reject(unreachable(url, err)));
    return req;
  }
}

/** A body as JSON when it is JSON, else its text (undefined when empty). */
function jsonOrText(raw: Buffer): unknown {
  const text = raw.toString('utf8');
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text; // not JSON: keep text
  }
}

/** A problem+json answer is small; past this much an error body is not one. */
const MAX_ERROR_BODY = 64 * 1024;

/** The response body, chunk by chunk as it arrives; a connection lost mid-body is DAEMON_UNREACHABLE. */
async function* relay(res: IncomingMessage, url: URL): AsyncGenerator<Buffer> {
  let received = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      received += chunk.length;
      yield chunk;
    }
  } catch (err) {
    throw new AppError(
      'DAEMON_UNREACHABLE',
      `the answer from ${url.origin}${url.pathname} broke off after ${received} bytes: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err, details: { url: url.origin, received } },
    );
  } finally {
    res.destroy();
  }
}

function unreachable(url: URL, err: NodeJS.ErrnoException): AppError {
  return new AppError(
    'DAEMON_UNREACHABLE',
    `cannot reach the daemon at ${url.origin}: ${err.code ?? err.message}; is \`keywright serve\` running? (--url, KEYWRIGHT_URL)`,
    {
      cause: err,
      details: { url: url.origin },
    },
  );
}

function problemToError(status: number, body: unknown): AppError {
  const p = (typeof body === 'object' && body !== null ? body : {}) as {
    code?: string;
    detail?: string;
    details?: Record<string, unknown>;
  };
  const code = p.code !== undefined && p.code in ERROR_CATALOGUE ? (p.code as ErrorCode) : 'INTERNAL';
  return new AppError(code, p.detail ?? `the daemon answered HTTP ${status}`, {
    details: { status, ...(p.details ?? {}) },
  });
}
