import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * One JSON request on a fresh connection (set-up calls of the benches); HTTPS trusts `ca` when given.
 * Gives up after 10 s without progress, so a peer that accepts and never answers fails the bench
 * instead of holding it forever (seen once with cfssl at start).
 */
export function requestJson(
  base: string,
  method: string,
  path: string,
  options: { token?: string | undefined; body?: unknown; ca?: string } = {},
): Promise<{ status: number; text: string }> {
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const url = new URL(path, base);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent: false,
        ...(options.ca ? { ca: options.ca } : {}),
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${url.href}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}
