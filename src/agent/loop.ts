import { AppError, toAppError } from '../core/errors.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { BundleClient } from './client.js';
import { maybeRenewClientCert, type ClientCertRenewal, type ClientCredentials } from './client-cert.js';
import { DEFAULT_BACKOFF, backoffDelay, sleep, type BackoffPolicy } from './backoff.js';
import {
  ensureWritableDir,
  readState,
  writeOutputFiles,
  writeState,
  type AgentState,
  type OutputFile,
} from './files.js';
import { runReload } from './reload.js';

/** A new version as a source hands it to the loop: checked, decoded, ready to write. */
export interface Pulled {
  readonly etag: string;
  readonly version?: number | undefined;
  /** Compared with `fingerprintOnDisk()`: equal means the files are already these. */
  readonly fingerprint: string;
  /** Written in this order, each atomically; a source puts secrets first. */
  readonly files: readonly OutputFile[];
}

/**
 * What the loop pulls: a certificate's bundle or a VPN peer's config. Everything that differs between
 * them (the request, decoding and checks, file names, the reload environment) is here; the loop owns
 * ETags, long polls, back-off, state and the reload command.
 */
export interface PullSource {
  /** `cert:<name>` or `vpn:<network>/<peer>`: kept in the state file, named in logs. */
  readonly subject: string;
  /** Fields naming the subject in a PullOutcome (`certificate`, or `network` and `peer`). */
  readonly names: Readonly<Record<string, string>>;
  /** The directory written to: created (with `dirMode`) and probed before the first pull. */
  readonly dir: string;
  readonly dirMode: number;
  readonly stateFile: string;
  /** The connection the source pulls over; a renewed client certificate is installed in it. */
  readonly client: BundleClient;
  fetch(
    etag: string | undefined,
    waitSeconds: number,
    signal?: AbortSignal,
  ): Promise<Pulled | 'not-modified'>;
  fingerprintOnDisk(): Promise<string | undefined>;
  /** The reload command's whole environment besides PATH. */
  reloadEnv(state: AgentState): Record<string, string>;
  close(): void;
}

export interface LoopOptions {
  /** Reload command (argv); run only when the files changed. */
  readonly exec?: readonly string[] | undefined;
  readonly execTimeoutMs?: number;
  /** Pull once and return (cron, init containers) instead of watching. */
  readonly once?: boolean;
  /** Long-poll length (seconds, ≤ 300). */
  readonly waitSeconds?: number;
  readonly backoff?: BackoffPolicy;
  /** The client certificate in use, and how to renew it before each request once it is due. */
  readonly clientCert?: string | undefined;
  readonly clientKey?: string | undefined;
  readonly renewClientCert?: ClientCertRenewal | undefined;
}

export interface AgentDeps {
  readonly logger: Logger;
  /** Stops the watch loop (SIGTERM); the current request is abandoned, files stay as they are. */
  readonly signal?: AbortSignal;
  readonly random?: () => number;
  /** When the client certificate is due for renewal. */
  readonly clock?: Clock;
  /** Called after every pull that reached the daemon (tests and --json output). */
  readonly onPull?: (outcome: PullOutcome) => void;
}

export interface PullOutcome {
  /** `cert:<name>` or `vpn:<network>/<peer>`; `certificate` or `network`/`peer` name it too. */
  readonly subject: string;
  readonly certificate?: string;
  readonly network?: string;
  readonly peer?: string;
  /** New files were written. */
  readonly changed: boolean;
  /** The reload command ran and succeeded in this pull. */
  readonly reloaded: boolean;
  /** The certificate version (VPN configs have none). */
  readonly version?: number;
  readonly fingerprint: string;
}

const DEFAULT_WAIT_SECONDS = 240;

/** Errors a later attempt can fix: the daemon down, restarting, sealed, rate-limiting or overloaded. */
function retryable(err: AppError): boolean {
  return err.retryable || err.code === 'DAEMON_UNREACHABLE' || err.code === 'DAEMON_SEALED';
}

/**
 * The pull loop. Each round asks for the source with the ETag it holds; a 304 changes nothing, a new
 * version is written atomically and followed by the reload command. Watching, it long-polls for the
 * next version and reconnects with capped, jittered back-off when the daemon is unreachable; the files
 * from the last good pull stay in place meanwhile. Returns the last outcome (with `once`, the only
 * one); throws on errors no retry can fix (bad token, unknown subject, unwritable directory).
 */
export async function runPullLoop(
  source: PullSource,
  options: LoopOptions,
  deps: AgentDeps,
): Promise<PullOutcome | undefined> {
  const { logger } = deps;
  const random = deps.random ?? Math.random;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const log = { subject: source.subject };
  try {
    await ensureWritableDir(source.dir, source.dirMode);
    let state = await trustedState(source);
    let last: PullOutcome | undefined;
    let failures = 0;
    let first = true;
    const held: ClientCredentials | undefined =
      options.renewClientCert && options.clientCert && options.clientKey
        ? { cert: options.clientCert, key: options.clientKey }
        : undefined;
    while (!deps.signal?.aborted) {
      try {
        if (held && options.renewClientCert) {
          await maybeRenewClientCert(
            source.client,
            held,
            options.renewClientCert,
            deps.clock ?? systemClock,
            logger,
          );
        }
        // The first request answers at once, so a start (or --once) never waits on an unchanged version.
        const wait = first || options.once ? 0 : (options.waitSeconds ?? DEFAULT_WAIT_SECONDS);
        const pulled = await source.fetch(state?.etag, wait, deps.signal);
        if (failures > 0) logger.info(log, 'reconnected to the daemon');
        failures = 0;
        const wasFirst = first;
        first = false;
        ({ state, outcome: last } = await apply(source, options, state, pulled, logger));
        deps.onPull?.(last);
        if (options.once) return last;
        // A full answer that changed nothing after a long poll means the ETag did not match for some
        // other reason (a proxy rewriting it): pause rather than spin.
        if (pulled !== 'not-modified' && !last.changed && !wasFirst) {
          await sleep(backoffDelay(0, backoff, random), deps.signal);
        }
      } catch (err) {
        const e = toAppError(err);
        if (deps.signal?.aborted) break;
        if (options.once || !retryable(e)) throw e;
        const hinted = Number(e.details.retryAfterSeconds);
        const delay = Math.max(
          backoffDelay(failures++, backoff, random),
          Number.isFinite(hinted) ? hinted * 1000 : 0,
        );
        logger.warn(
          { ...log, code: e.code, retryInMs: delay, attempt: failures },
          `pull failed (${e.message}); keeping the last good files and retrying`,
        );
        await sleep(delay, deps.signal);
      }
    }
    return last;
  } finally {
    source.close();
  }
}

/** The saved state, if the files it describes are the ones on disk (else pull afresh, without ETag). */
async function trustedState(source: PullSource): Promise<AgentState | undefined> {
  const state = await readState(source.stateFile);
  if (state === undefined || state.subject !== source.subject) return undefined;
  return (await source.fingerprintOnDisk()) === state.fingerprint ? state : undefined;
}

async function apply(
  source: PullSource,
  options: LoopOptions,
  state: AgentState | undefined,
  pulled: Pulled | 'not-modified',
  logger: Logger,
): Promise<{ state: AgentState | undefined; outcome: PullOutcome }> {
  if (pulled === 'not-modified') {
    if (state === undefined) {
      throw new AppError('INTERNAL', 'the daemon answered 304 to a request without If-None-Match');
    }
    const reloaded = state.reloadPending ? await reload(source, options, state, logger) : false;
    const next = reloaded ? { ...state, reloadPending: false } : state;
    if (reloaded) await writeState(source.stateFile, next);
    return { state: next, outcome: outcome(source, next, false, reloaded) };
  }
  const onDisk = await source.fingerprintOnDisk();
  const changed = onDisk !== pulled.fingerprint;
  if (changed) {
    await writeOutputFiles(source.dir, pulled.files);
    logger.info(
      { subject: source.subject, version: pulled.version, files: pulled.files.map((f) => f.path) },
      'wrote a new version',
    );
  }
  const pending = changed || (state?.fingerprint === pulled.fingerprint && state.reloadPending);
  let next: AgentState = {
    subject: source.subject,
    etag: pulled.etag,
    fingerprint: pulled.fingerprint,
    ...(pulled.version === undefined ? {} : { version: pulled.version }),
    reloadPending: pending && (options.exec?.length ?? 0) > 0,
  };
  await writeState(source.stateFile, next);
  const reloaded = next.reloadPending ? await reload(source, options, next, logger) : false;
  if (reloaded) {
    next = { ...next, reloadPending: false };
    await writeState(source.stateFile, next);
  }
  return { state: next, outcome: outcome(source, next, changed, reloaded) };
}

/** Runs the reload command; a failure is logged and retried on the next pull (--once: reported). */
async function reload(
  source: PullSource,
  options: LoopOptions,
  state: AgentState,
  logger: Logger,
): Promise<boolean> {
  try {
    await runReload({
      argv: options.exec ?? [],
      timeoutMs: options.execTimeoutMs ?? 60_000,
      env: source.reloadEnv(state),
    });
    logger.info({ subject: source.subject, version: state.version }, 'reload command succeeded');
    return true;
  } catch (err) {
    if (options.once) throw err;
    const e = toAppError(err);
    logger.error({ subject: source.subject, code: e.code, details: e.details }, e.message);
    return false;
  }
}

function outcome(source: PullSource, state: AgentState, changed: boolean, reloaded: boolean): PullOutcome {
  return {
    subject: source.subject,
    ...source.names,
    changed,
    reloaded,
    ...(state.version === undefined ? {} : { version: state.version }),
    fingerprint: state.fingerprint,
  };
}
