/**
 * The webhook target: POSTs a JSON description of the new version (public material only, never the key)
 * and signs the exact body bytes with HMAC-SHA256 under a shared secret, GitHub-style:
 * `X-Keywright-Signature: sha256=<hex>`. A receiver recomputes the HMAC over the raw body and compares in
 * constant time; `deliveryId` and `sentAt` inside the signed body let it drop replays. 2xx is success;
 * 408, 429, 5xx, a timeout or a network error are retried; any other status is a terminal refusal.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { DeployError, isAppError } from '../core/errors.js';
import { formatDuration } from '../core/duration.js';
import type { DeployArtifact, DeployContext, DeployResult, DeployTarget } from './port.js';
import { parseSecretRef, resolveSecret, type SecretRef } from './secret-ref.js';

export const SIGNATURE_HEADER = 'x-keywright-signature';
const RESPONSE_SNIPPET = 200;

export interface WebhookTargetOptions {
  readonly url: string;
  /** `env:VARIABLE` or `file:/path`. */
  readonly secret?: string;
  readonly timeoutMs?: number;
  /** PEM file of CAs to trust for https (the internal CA, say); the system store otherwise. */
  readonly caFile?: string;
  readonly field?: string;
  /** Where `env:` secrets are looked up (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
}

/** What the receiver gets. Versioned by `type` so receivers can tell future shapes apart. */
export interface WebhookPayload {
  readonly type: 'keywright.certificate.version';
  readonly deliveryId: string;
  readonly sentAt: string;
  readonly certificate: {
    readonly name: string;
    readonly version: number;
    readonly serial: string;
    readonly fingerprint: string;
    readonly issuer?: string;
    readonly notBefore: string;
    readonly notAfter: string;
    readonly domains: readonly string[];
    readonly certificatePem: string;
    readonly chainPem: readonly string[];
  };
}

export function signBody(secret: Uint8Array, body: Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class WebhookTarget implements DeployTarget {
  readonly kind = 'webhook' as const;
  readonly id: string;
  readonly #url: URL;
  readonly #secret: SecretRef | undefined;
  readonly #o: WebhookTargetOptions;

  constructor(options: WebhookTargetOptions) {
    const field = options.field ?? 'webhook';
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      url = new URL('invalid:');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new DeployError('DEPLOY_TARGET_INVALID', `${field}.url: use an http:// or https:// URL`, {
        details: { field: `${field}.url` },
      });
    }
    if (url.username !== '' || url.password !== '') {
      throw new DeployError(
        'DEPLOY_TARGET_INVALID',
        `${field}.url: credentials do not belong in the URL; use secret`,
        {
          details: { field: `${field}.url` },
        },
      );
    }
    this.#url = url;
    this.#secret =
      options.secret === undefined ? undefined : parseSecretRef(options.secret, `${field}.secret`);
    this.#o = options;
    // the query may carry a token: ids and messages use origin and path only
    this.id = `webhook:${url.origin}${url.pathname}`;
  }

  async deploy(artifact: DeployArtifact, ctx: DeployContext): Promise<DeployResult> {
    if (!ctx.earlierChanged && ctx.lastDeliveredFingerprint === artifact.fingerprint) {
      return { outcome: 'unchanged', detail: `already notified of version ${artifact.version}` };
    }
    const payload: WebhookPayload = {
      type: 'keywright.certificate.version',
      deliveryId: randomUUID(),
      sentAt: ctx.clock.now().toISOString(),
      certificate: {
        name: artifact.certificate,
        version: artifact.version,
        serial: artifact.serialHex,
        fingerprint: artifact.fingerprint,
        ...(artifact.issuer !== undefined ? { issuer: artifact.issuer } : {}),
        notBefore: artifact.notBefore,
        notAfter: artifact.notAfter,
        domains: artifact.domains,
        certificatePem: artifact.certificatePem,
        chainPem: artifact.chainPem,
      },
    };
    const body = Buffer.from(JSON.stringify(payload));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'content-length': String(body.length),
      'user-agent': 'keywright',
      'x-keywright-delivery': payload.deliveryId,
      'x-keywright-event': payload.type,
    };
    if (this.#secret) {
      const secret = await resolveSecret(this.#secret, this.#o.env);
      headers[SIGNATURE_HEADER] = signBody(secret, body);
      secret.fill(0);
    }
    const timeoutMs = this.#o.timeoutMs ?? 10_000;
    const where = `${this.#url.origin}${this.#url.pathname}`;
    let status: number;
    let snippet: string;
    try {
      const ca = this.#o.caFile === undefined ? undefined : await readFile(this.#o.caFile, 'utf8');
      ({ status, snippet } = await post(this.#url, headers, body, timeoutMs, ca, ctx.signal));
    } catch (err) {
      if (isAppError(err)) throw err;
      const e = err as NodeJS.ErrnoException;
      const why =
        e.code === 'KW_TIMEOUT'
          ? `no answer within ${formatDuration(timeoutMs)}`
          : `${e.code ?? 'error'}: ${e.message}`;
      throw new DeployError('DEPLOY_FAILED', `webhook ${where}: ${why}`, {
        cause: err,
        retryable: true,
        details: { target: this.id, errno: e.code ?? 'error' },
      });
    }
    if (status >= 200 && status < 300) {
      return { outcome: 'deployed', detail: `${where} answered ${status}` };
    }
    const retryable = status >= 500 || status === 408 || status === 429;
    throw new DeployError(
      'DEPLOY_FAILED',
      `webhook ${where} answered ${status}${snippet ? `: ${snippet}` : ''}${retryable ? '' : ' (not retried: fix the receiver or the target, then deploy retry)'}`,
      { retryable, details: { target: this.id, status } },
    );
  }
}

function post(
  url: URL,
  headers: Record<string, string>,
  body: Buffer,
  timeoutMs: number,
  ca: string | undefined,
  signal: AbortSignal | undefined,
): Promise<{ status: number; snippet: string }> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, {
      method: 'POST',
      headers,
      ...(ca !== undefined ? { ca } : {}),
      ...(signal ? { signal } : {}),
    });
    const deadline = setTimeout(() => {
      const err: NodeJS.ErrnoException = new Error('timed out');
      err.code = 'KW_TIMEOUT';
      req.destroy(err);
    }, timeoutMs);
    req.once('error', (err) => {
      clearTimeout(deadline);
      reject(err);
    });
    req.once('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (c: Buffer) => {
        if (kept < RESPONSE_SNIPPET) {
          chunks.push(c);
          kept += c.length;
        }
      });
      res.once('end', () => {
        clearTimeout(deadline);
        resolve({ status: res.statusCode ?? 0, snippet: printable(Buffer.concat(chunks).toString('utf8')) });
      });
      res.once('error', (err) => {
        clearTimeout(deadline);
        reject(err);
      });
    });
    req.end(body);
  });
}

function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > RESPONSE_SNIPPET ? `${flat.slice(0, RESPONSE_SNIPPET)}…` : flat;
}
