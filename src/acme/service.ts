/**
 * The ACME module as the daemon sees it: accounts, one issuer per account, the http-01 responder's
 * lifetime and the solver rules from `acme.*` configuration. Built by app/ once the daemon is unsealed.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Config } from '../config/schema.js';
import type { Sealer } from '../keys/port.js';
import type { Store } from '../store/port.js';
import type { Issuer, IssuerRef } from '../issuer/port.js';
import { AcmeAccounts, type AcmeSettings } from './accounts.js';
import { DEFAULT_CLIENT_SETTINGS, type ClientSettings } from './client.js';
import { AcmeIssuer } from './issuer.js';
import { Http01Responder } from './solvers/http01.js';
import { buildSolverRules, type SolverRule } from './solvers/select.js';

export interface AcmeServiceOptions {
  readonly store: Store;
  readonly sealer: Sealer;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly config: Config['acme'];
  /** Poll and badNonce settings (tests shorten the polls). */
  readonly client?: ClientSettings;
  /** For the ARI renewal moment; Math.random by default. */
  readonly random?: () => number;
  /** Replaces the rules built from `config.solvers` (tests). */
  readonly rules?: readonly SolverRule[];
  /** Where `acme:<account>` issuers are registered for lifecycle/ (the daemon's IssuerRegistry). */
  readonly registry?: { register(issuer: Issuer): void; unregister(ref: IssuerRef): void };
}

export class AcmeService {
  readonly accounts: AcmeAccounts;
  /** keywright's own http-01 responder, when `acme.http01.listen` is set. */
  readonly responder: Http01Responder | undefined;
  readonly #rules: readonly SolverRule[];
  readonly #issuers = new Map<string, AcmeIssuer>();
  readonly #options: AcmeServiceOptions;

  constructor(options: AcmeServiceOptions) {
    this.#options = options;
    const logger = options.logger.child({ module: 'acme' });
    const settings: AcmeSettings = {
      requestTimeoutMs: options.config.requestTimeout,
      client: options.client ?? DEFAULT_CLIENT_SETTINGS,
    };
    this.accounts = new AcmeAccounts({
      store: options.store,
      sealer: options.sealer,
      clock: options.clock,
      logger,
      settings,
      onChange: (account) => {
        if (account.status === 'valid') options.registry?.register(this.issuer(account.id));
        else options.registry?.unregister(`acme:${account.id}`);
      },
    });
    for (const issuer of this.issuers()) options.registry?.register(issuer);
    const listen = options.config.http01.listen;
    this.responder = listen ? new Http01Responder(listen, logger) : undefined;
    this.#rules =
      options.rules ?? buildSolverRules(options.config.solvers, { responder: this.responder, logger });
  }

  /**
   * Starts the http-01 responder. A port that cannot be bound does not stop the daemon: the error is
   * logged here and every http-01 order reports it (and retries the bind) until the port is free.
   */
  async start(): Promise<void> {
    await this.responder?.start().catch((err: unknown) => {
      this.#options.logger.error({ err }, 'ACME http-01 responder not started');
    });
  }

  async stop(): Promise<void> {
    await this.responder?.stop();
  }

  /** The issuer `acme:<account>`; the account is looked up at each use, so it may be registered later. */
  issuer(account: string): AcmeIssuer {
    let issuer = this.#issuers.get(account);
    if (issuer === undefined) {
      issuer = new AcmeIssuer(
        {
          accounts: this.accounts,
          rules: () => this.#rules,
          store: this.#options.store,
          clock: this.#options.clock,
          logger: this.#options.logger.child({ module: 'acme' }),
          random: this.#options.random ?? Math.random,
        },
        account,
      );
      this.#issuers.set(account, issuer);
    }
    return issuer;
  }

  /** Issuers of the accounts that can issue now. */
  issuers(): AcmeIssuer[] {
    return this.accounts
      .list()
      .filter((a) => a.status === 'valid')
      .map((a) => this.issuer(a.id));
  }
}
