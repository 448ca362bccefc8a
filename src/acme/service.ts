/**
 * The ACME module as the daemon sees it: accounts, one issuer per account, the http-01 responder's
 * lifetime and the solver rules from `acme.*` configuration. Built by app/ once the daemon is unsealed.
 */
import type { AuditRecorder } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { AcmeAccountConfig, Config } from '../config/schema.js';
import type { Sealer } from '../keys/port.js';
import type { Store } from '../store/port.js';
import type { Issuer, IssuerRef } from '../issuer/port.js';
import { AcmeAccounts, type AcmeAccountRecord, type AcmeSettings } from './accounts.js';
import { resolveDirectoryUrl } from './directory.js';
import {
  auditedChange,
  notRegisteredYet,
  planDeclaredAccounts,
  registerInput,
  resolveDesired,
  type AccountDecision,
  type DesiredAccount,
} from './declared.js';
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
  /** Where declared accounts' registrations and updates are recorded, as the API's are. */
  readonly audit?: AuditRecorder;
  /** Where `env:` EAB HMAC references are looked up (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
}

/** What one reconcile of `acme.accounts` did; the daemon logs it and POST /v1/reload returns it. */
export interface AccountReconcileReport {
  readonly registered: string[];
  readonly updated: string[];
  readonly unchanged: string[];
  /** Not registered or updated now (CA unreachable, EAB refused …): retried at the next reconcile and before a certificate is issued through it. */
  readonly failed: Array<{ name: string; code: string; message: string }>;
  /** Declared in a way keywright will not act on (another directory, deactivated): fix the configuration. */
  readonly refused: Array<{ name: string; message: string }>;
  /** Registered from configuration, no longer declared: kept as it is, not deactivated. */
  readonly undeclared: string[];
}

/**
 * One declared account as GET /v1/acme/accounts shows it. `pending`: not registered, a registration is
 * under way (or not started yet); `failed`: the last attempt failed (`error`), retried at the next reload
 * and before a certificate is issued through it; `refused`: configuration must change.
 */
export interface DeclaredAccountStatus {
  readonly name: string;
  readonly state: 'registered' | 'pending' | 'failed' | 'refused';
  /** When the last attempt started (pending) or ended. */
  readonly lastAttemptAt?: string;
  readonly error?: { readonly code: string; readonly message: string };
}

/** stop() waits this long for work it aborted to settle, so a part deaf to the abort cannot hold it. */
const SETTLE_AT_STOP_MS = 2_000;

export class AcmeService {
  readonly accounts: AcmeAccounts;
  /** keywright's own http-01 responder, when `acme.http01.listen` is set. */
  readonly responder: Http01Responder | undefined;
  readonly #rules: readonly SolverRule[];
  readonly #issuers = new Map<string, AcmeIssuer>();
  readonly #options: AcmeServiceOptions;
  /** The last reconciled `acme.accounts`, by name, with each entry's index (for field names). */
  #declared = new Map<string, { readonly config: AcmeAccountConfig; readonly index: number }>();
  readonly #status = new Map<string, DeclaredAccountStatus>();
  /** One registration per declared account at a time, whether a reconcile or an issue asked. */
  readonly #registering = new Map<string, { promise: Promise<AcmeAccountRecord>; startedAt: string }>();
  /** Aborts declared-account work in flight when the daemon stops: a silent CA must not hold the stop. */
  readonly #stopping = new AbortController();
  /** Reconciles started by reconcileDeclaredInBackground and not finished yet. */
  readonly #background = new Set<Promise<unknown>>();

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

  /**
   * Aborts the declared accounts' registrations and updates in flight, and refuses new ones. The daemon
   * calls it first when stopping, before it waits for sweeps and requests that may be waiting on them.
   */
  cancelPending(): void {
    this.#stopping.abort();
  }

  async stop(): Promise<void> {
    this.cancelPending();
    const inFlight = [...this.#background, ...[...this.#registering.values()].map((r) => r.promise)];
    if (inFlight.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled(inFlight),
        new Promise((resolve) => (timer = setTimeout(resolve, SETTLE_AT_STOP_MS).unref())),
      ]);
      clearTimeout(timer);
    }
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
          ensureAccount: (name, actor) => this.#ensureDeclared(name, actor),
        },
        account,
      );
      this.#issuers.set(account, issuer);
    }
    return issuer;
  }

  /**
   * reconcileDeclared without waiting for it: the daemon's start, so a CA that accepts connections and
   * never answers cannot hold the listening API back. Issuers of the declared accounts are in place when
   * this returns (an issue through one registers the account first, sharing this registration). The
   * promise never rejects (undefined: the reconcile itself failed, logged here); stop() aborts it.
   */
  reconcileDeclaredInBackground(
    declared: readonly AcmeAccountConfig[],
    actor: string,
  ): Promise<AccountReconcileReport | undefined> {
    const running = this.reconcileDeclared(declared, actor).catch((err: unknown) => {
      this.#options.logger.error(
        { module: 'acme', code: (err as { code?: string }).code ?? 'INTERNAL' },
        `reconciling the declared ACME accounts failed: ${(err as Error).message}; retried at the next reload`,
      );
      return undefined;
    });
    this.#background.add(running);
    void running.finally(() => this.#background.delete(running));
    return running;
  }

  /**
   * Makes the stored accounts match `acme.accounts` (see declared.ts for the rules). Never throws for one
   * account's failure: it is reported, and retried at the next reconcile or when a certificate needs it.
   * A registration already under way for an account (a background reconcile, an issue) is joined.
   */
  async reconcileDeclared(
    declared: readonly AcmeAccountConfig[],
    actor: string,
  ): Promise<AccountReconcileReport> {
    const logger = this.#options.logger.child({ module: 'acme' });
    const report: AccountReconcileReport = {
      registered: [],
      updated: [],
      unchanged: [],
      failed: [],
      refused: [],
      undeclared: [],
    };
    const previous = this.#declared;
    this.#declared = new Map(declared.map((config, index) => [config.name, { config, index }]));
    // Issuers first, before any await: certificates naming acme:<name> resolve to this issuer while the
    // account is still being registered; issuing registers it first (#ensureDeclared).
    for (const name of previous.keys()) {
      if (this.#declared.has(name)) continue;
      this.#status.delete(name);
      // An issuer put in place for a declaration that never got registered goes with the declaration.
      if (this.accounts.find(name) === undefined) this.#options.registry?.unregister(`acme:${name}`);
    }
    for (const name of this.#declared.keys()) {
      if (this.accounts.find(name)?.status === 'deactivated') continue;
      this.#options.registry?.register(this.issuer(name));
    }
    const failed = (name: string, err: unknown) => {
      const e = err as { code?: string; message?: string };
      const entry = { name, code: e.code ?? 'INTERNAL', message: e.message ?? String(err) };
      report.failed.push(entry);
      this.#setStatus(name, 'failed', entry);
      if (this.#stopping.signal.aborted) {
        logger.warn(
          { account: name, code: entry.code },
          `declared ACME account "${name}": left for the next start (stopping)`,
        );
        return;
      }
      logger.error(
        { account: name, code: entry.code },
        `declared ACME account "${name}": ${entry.message}; retried at the next reload and before a certificate is issued through it`,
      );
    };
    const desired: DesiredAccount[] = [];
    await Promise.all(
      declared.map(async (config, index) => {
        try {
          desired.push(await resolveDesired(config, index));
        } catch (err) {
          failed(config.name, err);
        }
      }),
    );
    const desiredByName = new Map(desired.map((d) => [d.name, d]));
    const plan = planDeclaredAccounts(
      desired,
      this.accounts.list(),
      declared.map((c) => c.name),
    );
    await Promise.all(
      plan.decisions.map(async (decision) => {
        try {
          await this.#apply(decision, actor, report, desiredByName.get(decision.name));
        } catch (err) {
          failed(decision.name, err);
        }
      }),
    );
    for (const name of plan.undeclared) {
      await this.accounts.updateLocal(name, { declared: false }).catch((err: unknown) => {
        logger.warn({ account: name, err }, 'could not mark the ACME account as no longer declared');
      });
      report.undeclared.push(name);
      logger.warn(
        { account: name },
        `ACME account "${name}" is no longer declared in acme.accounts; it is kept (not deactivated) and can still be used`,
      );
    }
    for (const list of [report.registered, report.updated, report.unchanged, report.undeclared]) list.sort();
    return report;
  }

  /** Declared accounts and whether they are registered: pending while a registration runs. */
  declaredStatus(): DeclaredAccountStatus[] {
    return [...this.#declared.keys()].sort().map((name): DeclaredAccountStatus => {
      const running = this.#registering.get(name);
      if (running !== undefined) return { name, state: 'pending', lastAttemptAt: running.startedAt };
      return this.#status.get(name) ?? this.#beforeReconcile(name);
    });
  }

  /** Not reconciled yet (the background reconcile has not reached it): what the store already says. */
  #beforeReconcile(name: string): DeclaredAccountStatus {
    const stored = this.accounts.find(name);
    const config = this.#declared.get(name)?.config;
    const same =
      stored?.status === 'valid' &&
      config !== undefined &&
      stored.directoryUrl === resolveDirectoryUrl(config.directory).url;
    return { name, state: same ? 'registered' : 'pending' };
  }

  async #apply(
    decision: AccountDecision,
    actor: string,
    report: AccountReconcileReport,
    desired: DesiredAccount | undefined,
  ): Promise<void> {
    const { name } = decision;
    switch (decision.kind) {
      case 'register':
        await this.#registerDeclared(name, actor, desired);
        report.registered.push(name);
        return;
      case 'unchanged':
        this.#setStatus(name, 'registered');
        report.unchanged.push(name);
        return;
      case 'refused':
        report.refused.push({ name, message: decision.message });
        this.#setStatus(name, 'refused', { code: 'CONFIG_INVALID', message: decision.message });
        this.#options.logger.error({ account: name }, decision.message);
        return;
      case 'update':
        if (decision.adopt || decision.caPem !== undefined) {
          const caPem = decision.caPem;
          // Adopting an account, or changing the trust for its directory's HTTPS, is audited like a
          // contact change: the trust decides which server the account's key talks to.
          await auditedChange(
            this.#options.audit,
            {
              actor,
              action: 'acme.account.update',
              subject: `acme:${name}`,
              details: {
                declared: true,
                ...(caPem !== undefined ? { customTrust: caPem !== null } : {}),
              },
            },
            () =>
              this.accounts.updateLocal(name, { declared: true, ...(caPem !== undefined ? { caPem } : {}) }),
          );
        }
        if (decision.contact !== undefined) {
          const contact = decision.contact;
          await auditedChange(
            this.#options.audit,
            {
              actor,
              action: 'acme.account.update',
              subject: `acme:${name}`,
              details: { contact: contact.join(','), declared: true },
            },
            () => this.accounts.updateContact(name, contact, this.#stopping.signal),
          );
        }
        this.#setStatus(name, 'registered');
        report.updated.push(name);
        return;
    }
  }

  /**
   * Registers a declared account, audited as the API's register is. Concurrent callers (the start's
   * background reconcile, a reload, an issue) share one attempt, so the CA sees one newAccount.
   */
  #registerDeclared(name: string, actor: string, desired?: DesiredAccount): Promise<AcmeAccountRecord> {
    let pending = this.#registering.get(name)?.promise;
    if (pending === undefined) {
      const entry = this.#declared.get(name);
      if (entry === undefined) return Promise.resolve(this.accounts.get(name));
      const signal = this.#stopping.signal;
      pending = (async () => {
        const env = this.#options.env ?? process.env;
        const input = await registerInput(entry.config, entry.index, env, desired);
        return auditedChange(
          this.#options.audit,
          {
            actor,
            action: 'acme.account.register',
            subject: `acme:${name}`,
            details: {
              directory: input.directory,
              eab: input.eab !== undefined,
              customTrust: input.caPem !== undefined,
              declared: true,
            },
          },
          () => this.accounts.register(input, signal),
        );
      })().finally(() => this.#registering.delete(name));
      this.#registering.set(name, { promise: pending, startedAt: this.#options.clock.now().toISOString() });
    }
    return pending.then((record) => {
      this.#setStatus(name, 'registered');
      return record;
    });
  }

  /** Before an issue: a declared account that is not registered yet (the CA was down) is registered now. */
  async #ensureDeclared(name: string, actor: string): Promise<void> {
    if (this.accounts.find(name) !== undefined || !this.#declared.has(name)) return;
    try {
      await this.#registerDeclared(name, actor);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      this.#setStatus(name, 'failed', { code: e.code ?? 'INTERNAL', message: e.message ?? String(err) });
      throw notRegisteredYet(name, err);
    }
  }

  #setStatus(
    name: string,
    state: DeclaredAccountStatus['state'],
    error?: { readonly code: string; readonly message: string },
  ): void {
    this.#status.set(name, {
      name,
      state,
      lastAttemptAt: this.#options.clock.now().toISOString(),
      ...(error ? { error } : {}),
    });
  }

  /** Issuers of the accounts that can issue now. */
  issuers(): AcmeIssuer[] {
    return this.accounts
      .list()
      .filter((a) => a.status === 'valid')
      .map((a) => this.issuer(a.id));
  }
}
