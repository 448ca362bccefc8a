/**
 * http-01 (RFC 8555 §8.3): the CA fetches `http://<identifier>/.well-known/acme-challenge/<token>` on
 * port 80 and expects the key authorization. Two ways to answer: keywright's own small responder, or
 * webroot mode, where another web server serves files keywright writes.
 */
import { createServer, type Server } from 'node:http';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AcmeError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { ChallengeSolver, ChallengeTask } from './port.js';

const PATH_PREFIX = '/.well-known/acme-challenge/';
/** §8.1: tokens are base64url; anything else never reaches the file system or the map. */
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

function checkToken(token: string): void {
  if (!TOKEN.test(token)) {
    throw new AcmeError('ACME_ERROR', 'the CA sent a challenge token that is not base64url (RFC 8555 §8.1)', {
      retryable: false,
    });
  }
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** keywright's own http-01 responder: a plain node:http server answering from an in-memory map. */
export class Http01Responder {
  readonly #tokens = new Map<string, string>();
  readonly #logger: Logger;
  #server: Server | undefined;
  #starting: Promise<void> | undefined;
  #hits = 0;

  constructor(
    readonly listen: ListenAddress,
    logger: Logger,
  ) {
    this.#logger = logger.child({ component: 'acme-http01' });
  }

  /** Requests served (for tests and metrics). */
  get hits(): number {
    return this.#hits;
  }

  get listening(): boolean {
    return this.#server?.listening === true;
  }

  /** The bound address (the real port when `listen.port` was 0). */
  get address(): ListenAddress | undefined {
    const a = this.#server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  /**
   * Listens unless it already does. A failure (port in use, no permission for port 80) is an
   * ACME_SOLVER_FAILED naming the address, and a later call tries again: the port may have been freed.
   */
  start(): Promise<void> {
    if (this.listening) return Promise.resolve();
    this.#starting ??= this.#listen().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  #listen(): Promise<void> {
    const server = createServer((req, res) => {
      this.#hits += 1;
      const url = req.url ?? '';
      const token = url.startsWith(PATH_PREFIX) ? url.slice(PATH_PREFIX.length) : undefined;
      const body = token !== undefined && TOKEN.test(token) ? this.#tokens.get(token) : undefined;
      if ((req.method !== 'GET' && req.method !== 'HEAD') || body === undefined) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    server.keepAliveTimeout = 1000;
    return new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const where = `${this.listen.host}:${this.listen.port}`;
        const why =
          err.code === 'EADDRINUSE'
            ? 'the address is already in use; stop what listens there or change acme.http01.listen'
            : err.code === 'EACCES'
              ? 'permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)'
              : (err.code ?? err.message);
        reject(
          new AcmeError('ACME_SOLVER_FAILED', `http-01 responder cannot listen on ${where}: ${why}`, {
            cause: err,
            details: { listen: where, ...(err.code ? { errno: err.code } : {}) },
          }),
        );
      };
      server.once('error', onError);
      server.listen(this.listen.port, this.listen.host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.#logger.error({ err }, 'http-01 responder error'));
        this.#server = server;
        this.#logger.info({ address: this.address }, 'http-01 responder listening');
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  set(token: string, keyAuthorization: string): void {
    checkToken(token);
    this.#tokens.set(token, keyAuthorization);
  }

  delete(token: string): void {
    this.#tokens.delete(token);
  }

  /** Tokens currently served (tests check that cleanup removed them). */
  get size(): number {
    return this.#tokens.size;
  }
}

export class Http01ResponderSolver implements ChallengeSolver {
  readonly type = 'http-01' as const;
  readonly description: string;

  constructor(private readonly responder: Http01Responder) {
    this.description = `http-01 responder ${responder.listen.host}:${responder.listen.port}`;
  }

  async present(task: ChallengeTask): Promise<void> {
    await this.responder.start();
    this.responder.set(task.token, task.keyAuthorization);
  }

  async cleanup(task: ChallengeTask): Promise<void> {
    this.responder.delete(task.token);
  }
}

/** Webroot mode (certbot --webroot): writes `<webroot>/.well-known/acme-challenge/<token>`. */
export class WebrootSolver implements ChallengeSolver {
  readonly type = 'http-01' as const;
  readonly description: string;

  constructor(private readonly webroot: string) {
    this.description = `http-01 webroot ${webroot}`;
  }

  #path(token: string): string {
    checkToken(token);
    return join(this.webroot, '.well-known', 'acme-challenge', token);
  }

  async present(task: ChallengeTask): Promise<void> {
    const path = this.#path(task.token);
    try {
      // World-readable: another web server, usually running as another user, serves these files.
      await mkdir(join(this.webroot, '.well-known', 'acme-challenge'), { recursive: true, mode: 0o755 });
      await writeFile(path, task.keyAuthorization, { mode: 0o644 });
    } catch (err) {
      throw new AcmeError(
        'ACME_SOLVER_FAILED',
        `http-01 webroot: cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        { cause: err, details: { webroot: this.webroot } },
      );
    }
  }

  async cleanup(task: ChallengeTask): Promise<void> {
    await rm(this.#path(task.token), { force: true });
  }
}
