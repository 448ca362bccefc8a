import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
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
    const url = new URL(path, this.options.url);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: binary ? '*/*' : 'application/json', ...extraHeaders };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const requester = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = requester(
        url,
        {
          method,
          headers,
          ...(url.protocol === 'https:' && this.options.ca ? { ca: this.options.ca } : {}),
          timeout: this.options.timeoutMs ?? 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const raw = Buffer.concat(chunks);
            const status = res.statusCode ?? 0;
            if (binary && status < 400) return resolve({ status, headers: res.headers, body: raw as T });
            const text = raw.toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              /* not JSON: keep text */
            }
            if (status >= 400) return reject(problemToError(status, parsed));
            resolve({ status, headers: res.headers, body: parsed as T });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(
          new AppError(
            'DAEMON_UNREACHABLE',
            `cannot reach the daemon at ${url.origin}: ${err.code ?? err.message}; is \`keywright serve\` running? (--url, KEYWRIGHT_URL)`,
            {
              cause: err,
              details: { url: url.origin },
            },
          ),
        ),
      );
      if (payload) req.write(payload);
      req.end();
    });
  }
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
