import { rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { writeFileDurable } from '../core/fs-durable.js';
import { systemClock, type Clock } from '../core/clock.js';
import { ApiError, ConfigError, isAppError } from '../core/errors.js';
import type { Config } from '../config/schema.js';
import { configIssuesError } from '../config/load.js';
import type { KekSecrets } from '../keys/software/kek.js';
import type { SoftwareSealer } from '../keys/software/sealer.js';
import { createApiServer } from '../api/server.js';
import { createRevocationServer } from '../api/routes/revocation.js';
import { clientCaCertificates } from '../api/auth/mtls.js';
import { createMetrics } from '../api/metrics.js';
import { ensureDaemonCertificate } from '../ca/authority.js';
import { AcmeService, checkDeclaredAccounts, type AccountReconcileReport } from '../acme/index.js';
import { createLogger } from './logger.js';
import type { IssuerRegistry } from '../issuer/registry.js';
import { createTargets } from '../deploy/index.js';
import { buildScheduler } from './sweeps.js';
import { afterFirstAnswer } from './first-answer.js';
import { reconcileDeclared, type ReconcileReport } from '../lifecycle/reconcile.js';
import { buildUnsealedServices } from './unsealed.js';
import { openServices, openSealer, isInitializedStore, notInitialized } from './services.js';
import { appPaths } from './paths.js';
import { VERSION } from './version.js';
import { openBackup } from './backup/create.js';

export interface RunningDaemon {
  readonly url: string;
  /** Runs a scheduled sweep now (renewal, daemon-tls, …) and waits for it. */
  runSweep(name: string): Promise<void>;
  /** Re-read the configuration and reconcile its ACME accounts and certificates (SIGHUP). */
  reload(actor: string): Promise<DaemonReconcileReport>;
  readonly sealed: boolean;
  /** Graceful: stop accepting, finish in-flight requests and writes, close the audit log and store. */
  stop(): Promise<void>;
}

export interface StartDaemonOptions {
  /** Re-reads the configuration (file, env, flags) for SIGHUP and POST /v1/reload. */
  readonly reloadConfig?: () => Promise<Config>;
  readonly config: Config;
  readonly secrets: KekSecrets;
  readonly clock?: Clock;
  readonly logDestination?: NodeJS.WritableStream;
}

/** The certificates' report, and the declared ACME accounts' when the daemon is unsealed. */
export type DaemonReconcileReport = ReconcileReport & { readonly acmeAccounts?: AccountReconcileReport };

/** Starts the daemon in this process and resolves once it listens. */
export async function startDaemon(options: StartDaemonOptions): Promise<RunningDaemon> {
  const { config } = options;
  const clock = options.clock ?? systemClock;
  const logger = createLogger(config.log.level, options.logDestination);
  checkListenPolicy(config, logger);
  // Deploy targets are checked when declared (paths outside deploy.allowedDirs, bad secrets …), not at the first renewal.
  config.certificates.forEach((c, i) =>
    createTargets(c.deploy, { allowedDirs: config.deploy.allowedDirs, field: `certificates[${i}].deploy` }),
  );
  throwConfigIssues(checkDeclaredAccounts(config.acme.accounts));
  // The audit chain is verified once the daemon listens (verifyChain below): on a long log it was most
  // of the start-up. Until then appends chain onto the last entry, which open did check.
  const services = await openServices(config, clock, logger, { deferAuditVerification: true });
  /** Not ready while the audit log refuses appends: every audited operation would be refused. */
  const notReadyReason = () => {
    const refusal = services.audit.refusal;
    return refusal === undefined
      ? undefined
      : `the audit log refuses appends (${refusal.code}): ${refusal.message}`;
  };
  let acme: AcmeService | undefined;
  let cancelSweepStart: (() => void) | undefined;
  try {
    if (!isInitializedStore(services.store)) throw notInitialized(config.dataDir);
    let sealer: SoftwareSealer | undefined;
    try {
      sealer = await openSealer(config, options.secrets);
    } catch (err) {
      // Without its KEK the daemon runs sealed (health only); a KEK that is wrong is an operator error.
      if (!isAppError(err, 'KEK_MISSING')) throw err;
      logger.error({ code: err.code }, `${err.message}: starting sealed, only /healthz answers`);
    }
    const tls = config.tls.enabled
      ? await ensureDaemonCertificate({
          store: services.store,
          sealer,
          audit: services.audit,
          clock,
          listen: config.listen,
          logger,
        })
      : undefined;
    const metrics = createMetrics({
      store: services.store,
      audit: services.audit,
      nowMs: () => clock.nowMs(),
    });
    const unsealed =
      sealer === undefined
        ? undefined
        : buildUnsealedServices({
            metrics,
            config,
            store: services.store,
            sealer,
            audit: services.audit,
            clock,
            logger,
          });
    // The ACME client needs the sealer (account keys); its http-01 responder listens only when configured.
    acme =
      unsealed === undefined || sealer === undefined
        ? undefined
        : new AcmeService({
            store: services.store,
            sealer,
            clock,
            logger,
            config: config.acme,
            registry: unsealed.issuers,
            audit: services.audit,
          });
    await acme?.start();
    const logAccounts = (next: Config, acmeAccounts: AccountReconcileReport | undefined) => {
      if (acmeAccounts !== undefined && next.acme.accounts.length + acmeAccounts.undeclared.length > 0)
        logger.info({ ...acmeAccounts }, 'reconciled the configured ACME accounts');
    };
    const reconcileCertificates = (next: Config, actor: string) =>
      reconcileDeclared({
        store: services.store,
        audit: services.audit,
        clock,
        logger,
        declared: next.certificates,
        actor,
      });
    // SIGHUP and POST /v1/reload: declared ACME accounts first (waited for, and reported), so the
    // certificates' reconcile and the renewal sweep after it find them registered.
    const reconcile = async (next: Config, actor: string): Promise<DaemonReconcileReport> => {
      throwConfigIssues(checkDeclaredAccounts(next.acme.accounts));
      if (unsealed !== undefined) checkIssuers(next.certificates, unsealed.issuers, next.acme.accounts);
      const acmeAccounts = await acme?.reconcileDeclared(next.acme.accounts, actor);
      logAccounts(next, acmeAccounts);
      const report = await reconcileCertificates(next, actor);
      return acmeAccounts === undefined ? report : { ...report, acmeAccounts };
    };
    // At start only the certificates are waited for: the declared ACME accounts are reconciled once the
    // API listens (below), as a CA that accepts connections and never answers would hold the start for
    // up to acme.requestTimeout. A certificate's issue through a declared account registers it first.
    if (unsealed !== undefined) {
      checkIssuers(config.certificates, unsealed.issuers, config.acme.accounts);
      const report = await reconcileCertificates(config, 'system');
      logger.info({ ...report }, 'reconciled the configured certificates');
    }
    const scheduler =
      unsealed === undefined
        ? undefined
        : buildScheduler({
            config,
            store: services.store,
            audit: services.audit,
            clock,
            logger,
            metrics,
            unsealed,
          });
    /** SIGHUP and POST /v1/reload: re-read the configuration file and reconcile its certificates. */
    const reload = async (actor: string) => {
      if (unsealed === undefined) throw new ApiError('DAEMON_SEALED', 'the daemon is sealed');
      const next = options.reloadConfig ? await options.reloadConfig() : config;
      const report = await reconcile(next, actor);
      await scheduler?.runNow('renewal');
      return report;
    };
    const app = createApiServer(
      {
        reload,
        metrics,
        acme,
        clock,
        store: services.store,
        audit: services.audit,
        tokens: services.tokens,
        version: VERSION,
        ...(unsealed === undefined
          ? {}
          : {
              vpn: unsealed.vpn,
              certificates: unsealed.certificates,
              deployer: unsealed.deployer,
              events: unsealed.events,
              cas: unsealed.cas,
            }),
        isSealed: () => sealer === undefined,
        notReadyReason,
        backup: (by) =>
          openBackup(
            { dataDir: config.dataDir, store: services.store, audit: services.audit, clock, logger },
            by,
          ),
      },
      {
        logger,
        bodyLimit: config.api.bodyLimit,
        rateLimit: config.api.rateLimit,
        // Client certificates are checked against the internal CAs only once they can be trusted (unsealed).
        https:
          tls === undefined || sealer === undefined
            ? tls
            : { ...tls, clientCa: clientCaCertificates(services.store) },
        mtlsIdentities: config.api.mtls.identities,
      },
    );
    await app.listen({ host: config.listen.host, port: config.listen.port });
    // Not awaited: the ACME service's stop() aborts it and waits for it to settle.
    void acme
      ?.reconcileDeclaredInBackground(config.acme.accounts, 'system')
      .then((report) => logAccounts(config, report));
    // The catch-up runs of the sweeps (renewal, CRL refresh, …) cost 0.1–0.2 s of CPU at 10k certificates:
    // they start once the first request (the readiness probe, as a rule) has been answered, or a second
    // after listening, so they do not hold up that answer. Nothing of readiness depends on them.
    if (scheduler !== undefined)
      cancelSweepStart = afterFirstAnswer(app.server, SWEEPS_AT_LATEST_MS, () => scheduler.start());
    const address = app.server.address() as AddressInfo;
    const url = `${tls ? 'https' : 'http'}://${urlHost(config.listen.host)}:${address.port}`;
    // Relying parties fetch CRLs and OCSP over plain HTTP (RFC 5280 §4.2.1.13): a listener for just those.
    const httpApp =
      config.httpListen === undefined
        ? undefined
        : createRevocationServer(
            {
              clock,
              store: services.store,
              audit: services.audit,
              tokens: services.tokens,
              version: VERSION,
              ...(unsealed === undefined ? {} : { cas: unsealed.cas }),
              isSealed: () => sealer === undefined,
              notReadyReason,
            },
            { logger },
          );
    let httpUrl: string | undefined;
    if (httpApp !== undefined && config.httpListen !== undefined) {
      try {
        await httpApp.listen({ host: config.httpListen.host, port: config.httpListen.port });
      } catch (err) {
        await app.close();
        throw err;
      }
      const port = (httpApp.server.address() as AddressInfo).port;
      httpUrl = `http://${urlHost(config.httpListen.host)}:${port}`;
      logger.info({ url: httpUrl }, 'serving CRLs and OCSP over plain HTTP');
    }
    if (scheduler !== undefined && tls !== undefined && sealer !== undefined) {
      // The daemon's own certificate is renewed like any other: past 2/3 of its life, a new one is issued
      // and swapped into the listening server without a restart.
      let served = tls.cert;
      const unsealedSealer = sealer;
      scheduler.add({
        name: 'daemon-tls',
        everyMs: config.scheduler.renewalInterval * 120,
        runAtStart: false,
        run: async () => {
          const next = await ensureDaemonCertificate({
            store: services.store,
            sealer: unsealedSealer,
            audit: services.audit,
            clock,
            listen: config.listen,
            logger,
          });
          if (next.cert === served) return { processed: 0 };
          (app.server as unknown as TlsServer).setSecureContext({
            key: next.key,
            cert: next.cert,
            ca: clientCaCertificates(services.store),
          });
          served = next.cert;
          logger.info({}, 'renewed the daemon TLS certificate; new connections get it');
          return { processed: 1 };
        },
      });
    }
    const info = appPaths(config.dataDir).daemonInfo;
    await writeFileDurable(
      info,
      `${JSON.stringify({ url, ...(httpUrl ? { httpUrl } : {}), pid: process.pid, startedAt: clock.now().toISOString(), version: VERSION })}\n`,
      0o644,
    );
    logger.info({ url, sealed: sealer === undefined, dataDir: config.dataDir }, 'keywright listening');
    void services.audit.verifyChain(); // logs and refuses appends (and /readyz) itself on a break
    let stopping: Promise<void> | undefined;
    return {
      url,
      reload,
      async runSweep(name: string) {
        await scheduler?.runNow(name);
      },
      sealed: sealer === undefined,
      stop() {
        stopping ??= (async () => {
          logger.info({}, 'stopping');
          // First: a sweep or a reload may be waiting on a declared account's registration at a silent CA.
          acme?.cancelPending();
          await rm(info, { force: true });
          cancelSweepStart?.();
          await scheduler?.stop();
          await httpApp?.close();
          await app.close();
          await acme?.stop();
          await services.close();
          logger.info({}, 'stopped');
          logger.flush?.();
        })();
        return stopping;
      },
    };
  } catch (err) {
    cancelSweepStart?.();
    await acme?.stop();
    await services.close();
    throw err;
  }
}

/** The scheduler's catch-up sweeps start at the latest this long after the daemon listens. */
const SWEEPS_AT_LATEST_MS = 1_000;

/** Runs until SIGTERM or SIGINT, then stops gracefully. */
export async function runDaemon(options: StartDaemonOptions & { io?: unknown }): Promise<void> {
  const daemon = await startDaemon(options);
  await new Promise<void>((resolve) => {
    const onHangup = () => {
      daemon
        .reload('signal:SIGHUP')
        .catch((err: unknown) => process.emitWarning(`reload failed: ${(err as Error).message}`));
    };
    const onSignal = () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('SIGHUP', onHangup);
      resolve();
    };
    process.on('SIGHUP', onHangup);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await daemon.stop();
}

/**
 * A declared certificate naming an issuer that does not exist is a configuration error, named by field.
 * A declared ACME account counts as existing: it is registered before its first certificate is issued.
 */
function checkIssuers(
  declared: Config['certificates'],
  issuers: IssuerRegistry,
  accounts: Config['acme']['accounts'],
): void {
  const known = new Set<string>([...issuers.refs(), ...accounts.map((a) => `acme:${a.name}`)]);
  const issues = declared.flatMap((c, i) =>
    known.has(c.issuer)
      ? []
      : [
          {
            path: `certificates[${i}].issuer`,
            message: `unknown issuer "${c.issuer}"; known: ${[...known].join(', ') || 'none'}`,
          },
        ],
  );
  throwConfigIssues(issues);
}

function throwConfigIssues(issues: ReadonlyArray<{ path: string; message: string }>): void {
  if (issues.length > 0) throw configIssuesError(issues);
}

function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Plain HTTP only on loopback: a token sent in clear over a network is a leaked token. */
function checkListenPolicy(config: Config, logger: { warn(o: object, m: string): void }): void {
  if (config.tls.enabled) return;
  if (!LOOPBACK.test(config.listen.host)) {
    throw new ConfigError(
      'CONFIG_INVALID',
      `tls.enabled: false is allowed only on a loopback listener, not ${config.listen.host}`,
      {
        details: { issues: [{ path: 'tls.enabled', message: 'plain HTTP only on loopback' }] },
      },
    );
  }
  logger.warn({ listen: config.listen.host }, 'serving plain HTTP on loopback (tls.enabled: false)');
}
