/**
 * The verify target: after the files and the reload, connect to the service with SNI and compare the
 * leaf it serves with the new version (SHA-256 of the DER). What certbot, lego and cert-manager leave to
 * hope: a reload that silently kept the old configuration shows up here as a failed deploy. Servers pick
 * up a reload with a delay (nginx: a few hundred ms while new workers start), so a mismatch is retried
 * until the timeout. The chain is not validated: the fingerprint comparison is stronger than trust.
 */
import { connect, type PeerCertificate } from 'node:tls';
import { isIP } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeployError } from '../core/errors.js';
import { formatDuration } from '../core/duration.js';
import type { DeployArtifact, DeployContext, DeployResult, DeployTarget, VerifyResult } from './port.js';
import { sha256Hex } from './port.js';
import { parseCertificate } from '../pki/certificate.js';

export interface VerifyTargetOptions {
  readonly host: string;
  readonly port: number;
  /** SNI name; the artifact's first DNS name when absent. */
  readonly servername?: string;
  /** How long to keep trying for the new certificate. */
  readonly timeoutMs?: number;
  /** Pause between attempts. */
  readonly intervalMs?: number;
}

type Probe = { readonly fingerprint: string; readonly serialHex: string } | { readonly error: string };

export class VerifyTarget implements DeployTarget {
  readonly kind = 'verify' as const;
  readonly id: string;
  readonly #o: VerifyTargetOptions;

  constructor(options: VerifyTargetOptions) {
    this.#o = options;
    this.id = `verify:${isIP(options.host) === 6 ? `[${options.host}]` : options.host}:${options.port}`;
  }

  async deploy(artifact: DeployArtifact, ctx: DeployContext): Promise<DeployResult> {
    const timeoutMs = this.#o.timeoutMs ?? 30_000;
    const interval = this.#o.intervalMs ?? 250;
    const deadline = performance.now() + timeoutMs; // elapsed time, not wall-clock time
    const servername = this.#servername(artifact);
    let last: Probe;
    let attempts = 0;
    for (;;) {
      attempts++;
      last = await probe(
        this.#o.host,
        this.#o.port,
        servername,
        Math.max(1000, Math.min(10_000, deadline - performance.now())),
      );
      if ('fingerprint' in last && last.fingerprint === artifact.fingerprint) {
        return {
          outcome: 'deployed',
          detail: `${this.#where()} serves version ${artifact.version} (serial ${last.serialHex}) after ${attempts} handshake${attempts === 1 ? '' : 's'}`,
        };
      }
      if (performance.now() + interval >= deadline || ctx.signal?.aborted) break;
      await sleep(interval, undefined, ctx.signal ? { signal: ctx.signal } : {}).catch(() => undefined);
    }
    const waited = `within ${formatDuration(timeoutMs)}`;
    if ('error' in last) {
      throw new DeployError(
        'DEPLOY_FAILED',
        `verify ${this.#where()}: no TLS handshake ${waited} (${last.error})`,
        {
          retryable: true,
          details: { target: this.id, expected: artifact.fingerprint },
        },
      );
    }
    throw new DeployError(
      'DEPLOY_FAILED',
      `verify ${this.#where()}: the server still serves ${last.fingerprint} (serial ${last.serialHex}), not version ${artifact.version} ${artifact.fingerprint}, ${waited}; did the reload run and succeed?`,
      {
        retryable: true,
        details: {
          target: this.id,
          expected: artifact.fingerprint,
          served: last.fingerprint,
          servedSerial: last.serialHex,
        },
      },
    );
  }

  /** One handshake, no waiting. */
  async verify(artifact: DeployArtifact): Promise<VerifyResult> {
    const p = await probe(
      this.#o.host,
      this.#o.port,
      this.#servername(artifact),
      this.#o.timeoutMs ?? 10_000,
    );
    if ('error' in p) return { ok: false, detail: `${this.#where()}: ${p.error}` };
    return p.fingerprint === artifact.fingerprint
      ? { ok: true, detail: `${this.#where()} serves version ${artifact.version}` }
      : { ok: false, detail: `${this.#where()} serves ${p.fingerprint}, not ${artifact.fingerprint}` };
  }

  #servername(artifact: DeployArtifact): string | undefined {
    // RFC 6066 §3: SNI carries host names only, never IP literals
    return (
      this.#o.servername ??
      artifact.domains.find((d) => isIP(d) === 0 && !d.includes('@') && !d.includes(':'))
    );
  }

  #where(): string {
    return this.id.slice('verify:'.length);
  }
}

/** The served leaf's fingerprint, or why there is none. */
export function probe(
  host: string,
  port: number,
  servername: string | undefined,
  timeoutMs: number,
): Promise<Probe> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (p: Probe): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(p);
    };
    const socket = connect({
      host,
      port,
      ...(servername !== undefined ? { servername: servername.replace(/^\*\./, 'wildcard.') } : {}),
      rejectUnauthorized: false, // identity is checked by fingerprint below
    });
    socket.setTimeout(timeoutMs, () => done({ error: `no handshake within ${formatDuration(timeoutMs)}` }));
    socket.once('secureConnect', () => {
      const peer: PeerCertificate = socket.getPeerCertificate();
      if (!peer.raw) {
        done({ error: 'the server sent no certificate' });
        return;
      }
      done({ fingerprint: sha256Hex(peer.raw), serialHex: serialOf(peer.raw) });
    });
    socket.once('error', (err: NodeJS.ErrnoException) => done({ error: err.code ?? err.message }));
  });
}

/** The serial as the store writes it (lowercase hex of the magnitude's bytes), not node's trimmed form. */
function serialOf(der: Buffer): string {
  try {
    return parseCertificate(der, 'served certificate').serialHex;
  } catch {
    return 'unparseable';
  }
}
