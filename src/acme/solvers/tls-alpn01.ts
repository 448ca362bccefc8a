/**
 * tls-alpn-01 (RFC 8737): the CA opens TLS to port 443 with ALPN `acme-tls/1` and SNI set to the
 * identifier, and expects a self-signed certificate for that name carrying the critical acmeIdentifier
 * extension with SHA-256 of the key authorization (§3). acme-client builds that certificate. The listener
 * runs only while challenges are outstanding, since port 443 usually belongs to the real web server.
 */
import { createSecureContext, createServer, type SecureContext, type Server } from 'node:tls';
import type { crypto as AcmeCrypto } from 'acme-client';
import { AcmeError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { generateKeyPair } from '../../keys/generate.js';
import { parseIp } from '../../pki/ip.js';
import { loadAcmeClient } from '../acme-client.js';
import type { ListenAddress } from './http01.js';
import type { ChallengeSolver, ChallengeTask } from './port.js';

export const ACME_TLS_ALPN = 'acme-tls/1';

/** RFC 8738 §6: an IP identifier is validated with SNI set to its reverse-mapping name. */
export function alpnServerName(task: Pick<ChallengeTask, 'identifier'>): string {
  const { type, value } = task.identifier;
  if (type === 'dns') return value.toLowerCase();
  const bytes = parseIp(value);
  if (bytes === undefined) return value;
  if (bytes.length === 4) return `${[...bytes].reverse().join('.')}.in-addr.arpa`;
  return `${[...bytes.toString('hex')].reverse().join('.')}.ip6.arpa`;
}

export class TlsAlpnSolver implements ChallengeSolver {
  readonly type = 'tls-alpn-01' as const;
  readonly description: string;
  readonly #contexts = new Map<string, SecureContext>();
  readonly #logger: Logger;
  #server: Server | undefined;
  #starting: Promise<void> | undefined;

  constructor(
    readonly listen: ListenAddress,
    logger: Logger,
  ) {
    this.description = `tls-alpn-01 listener ${listen.host}:${listen.port}`;
    this.#logger = logger.child({ component: 'acme-tls-alpn01' });
  }

  async present(task: ChallengeTask): Promise<void> {
    const { privateKey } = await generateKeyPair('ec-p256');
    const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' });
    const { crypto: acmeCrypto } = await loadAcmeClient();
    const [, certPem] = await acmeCrypto.createAlpnCertificate(
      { identifier: task.identifier } as Parameters<typeof AcmeCrypto.createAlpnCertificate>[0],
      task.keyAuthorization,
      keyPem,
    );
    this.#contexts.set(alpnServerName(task), createSecureContext({ key: keyPem, cert: certPem }));
    await this.#start();
  }

  async cleanup(task: ChallengeTask): Promise<void> {
    this.#contexts.delete(alpnServerName(task));
    if (this.#contexts.size === 0) await this.#stop();
  }

  #start(): Promise<void> {
    if (this.#server?.listening) return Promise.resolve();
    this.#starting ??= new Promise<void>((resolve, reject) => {
      const server = createServer({
        ALPNProtocols: [ACME_TLS_ALPN],
        SNICallback: (name, cb) => {
          const ctx = this.#contexts.get(name.toLowerCase());
          if (ctx) cb(null, ctx);
          else cb(new Error(`no tls-alpn-01 challenge for ${name}`));
        },
      });
      // The CA only needs the handshake; close anything that lingers.
      server.on('secureConnection', (socket) => socket.end());
      server.on('tlsClientError', () => undefined);
      server.once('error', (err: NodeJS.ErrnoException) => {
        const where = `${this.listen.host}:${this.listen.port}`;
        reject(
          new AcmeError(
            'ACME_SOLVER_FAILED',
            `tls-alpn-01 listener cannot listen on ${where}: ${err.code === 'EADDRINUSE' ? 'the address is already in use' : (err.code ?? err.message)}`,
            { cause: err, details: { listen: where } },
          ),
        );
      });
      server.listen(this.listen.port, this.listen.host, () => {
        this.#server = server;
        this.#logger.debug({ listen: this.listen }, 'tls-alpn-01 listener up');
        resolve();
      });
    }).finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
