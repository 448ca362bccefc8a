import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { AppError, isAppError, toAppError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { BundleClient, type AgentConnection, type BundleResponse } from './client.js';
import { DEFAULT_BACKOFF, backoffDelay, sleep, type BackoffPolicy } from './backoff.js';
import {
  ensureWritableDir,
  fingerprintOnDisk,
  readState,
  writeBundleFiles,
  writeState,
  type AgentState,
  type PulledBundle,
} from './files.js';
import { runReload } from './reload.js';
import { unsealBundle, type SealKey } from './unseal.js';

export interface AgentOptions extends AgentConnection {
  /** The managed certificate to pull. */
  readonly certificate: string;
  readonly outDir: string;
  /** Reload command (argv); run only when the files changed. */
  readonly exec?: readonly string[] | undefined;
  readonly execTimeoutMs?: number;
  /** Pull once and return (cron, init containers) instead of watching. */
  readonly once?: boolean;
  /** Ask for format=sealed and open it with this key. */
  readonly sealKey?: SealKey | undefined;
  /** Long-poll length (seconds, ≤ 300). */
  readonly waitSeconds?: number;
  readonly backoff?: BackoffPolicy;
}

export interface AgentDeps {
  readonly logger: Logger;
  /** Stops the watch loop (SIGTERM); the current request is abandoned, files stay as they are. */
  readonly signal?: AbortSignal;
  readonly random?: () => number;
  /** Called after every pull that reached the daemon (tests and --json output). */
  readonly onPull?: (outcome: PullOutcome) => void;
}

export interface PullOutcome {
  readonly certificate: string;
  /** New files were written. */
  readonly changed: boolean;
  /** The reload command ran and succeeded in this pull. */
  readonly reloaded: boolean;
  readonly version: number;
  readonly fingerprint: string;
}

const DEFAULT_WAIT_SECONDS = 240;

/** Errors a later attempt can fix: the daemon down, restarting, sealed, rate-limiting or overloaded. */
function retryable(err: AppError): boolean {
  return err.retryable || err.code === 'DAEMON_UNREACHABLE' || err.code === 'DAEMON_SEALED';
}

/**
 * The pull agent. Each round asks for the bundle with the ETag it holds; a 304 changes nothing, a new
 * version is checked (key matches certificate), written atomically and followed by the reload command.
 * Watching, it long-polls for the next version and reconnects with capped, jittered back-off when the
 * daemon is unreachable; the files from the last good pull stay in place meanwhile. Returns the last
 * outcome (with `once`, the only one); throws on errors no retry can fix (bad token, unknown
 * certificate, unwritable directory).
 */
export async function runAgent(options: AgentOptions, deps: AgentDeps): Promise<PullOutcome | undefined> {
  const { logger } = deps;
  const random = deps.random ?? Math.random;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  await ensureWritableDir(options.outDir);
  const client = new BundleClient(options);
  let state = await trustedState(options);
  let last: PullOutcome | undefined;
  let failures = 0;
  let first = true;
  try {
    while (!deps.signal?.aborted) {
      try {
        const response = await client.fetchBundle({
          certificate: options.certificate,
          format: options.sealKey ? 'sealed' : 'json',
          ifNoneMatch: state?.etag,
          // The first request answers at once, so a start (or --once) never waits on an unchanged bundle.
          waitSeconds: first || options.once ? 0 : (options.waitSeconds ?? DEFAULT_WAIT_SECONDS),
          sealKey: options.sealKey?.publicKeyHeader,
          signal: deps.signal,
        });
        if (failures > 0) logger.info({ certificate: options.certificate }, 'reconnected to the daemon');
        failures = 0;
        const wasFirst = first;
        first = false;
        ({ state, outcome: last } = await apply(options, state, response, logger));
        deps.onPull?.(last);
        if (options.once) return last;
        // A full answer that changed nothing after a long poll means the ETag did not match for some
        // other reason (a proxy rewriting it): pause rather than spin.
        if (response.status === 200 && !last.changed && !wasFirst) {
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
          { certificate: options.certificate, code: e.code, retryInMs: delay, attempt: failures },
          `pull failed (${e.message}); keeping the last good files and retrying`,
        );
        await sleep(delay, deps.signal);
      }
    }
    return last;
  } finally {
    client.close();
  }
}

/** The saved state, if the files it describes are the ones on disk (else pull afresh, without ETag). */
async function trustedState(options: AgentOptions): Promise<AgentState | undefined> {
  const state = await readState(options.outDir);
  if (state === undefined || state.certificate !== options.certificate) return undefined;
  return (await fingerprintOnDisk(options.outDir)) === state.fingerprint ? state : undefined;
}

async function apply(
  options: AgentOptions,
  state: AgentState | undefined,
  response: BundleResponse,
  logger: Logger,
): Promise<{ state: AgentState | undefined; outcome: PullOutcome }> {
  if (response.status === 304) {
    if (state === undefined) {
      throw new AppError('INTERNAL', 'the daemon answered 304 to a request without If-None-Match');
    }
    const reloaded = state.reloadPending ? await reload(options, state, logger) : false;
    const next = reloaded ? { ...state, reloadPending: false } : state;
    if (reloaded) await writeState(options.outDir, next);
    return { state: next, outcome: outcome(options, next, false, reloaded) };
  }
  const bundle = await parseBundle(options, response.body);
  if (response.etag === undefined) throw new AppError('INTERNAL', 'the daemon sent a bundle without an ETag');
  const onDisk = await fingerprintOnDisk(options.outDir);
  const changed = onDisk !== bundle.fingerprint;
  if (changed) {
    await writeBundleFiles(options.outDir, bundle);
    logger.info(
      { certificate: bundle.name, version: bundle.version, dir: options.outDir },
      'wrote a new certificate version',
    );
  }
  const pending = changed || (state?.fingerprint === bundle.fingerprint && state.reloadPending);
  let next: AgentState = {
    certificate: options.certificate,
    etag: response.etag,
    fingerprint: bundle.fingerprint,
    version: bundle.version,
    reloadPending: pending && (options.exec?.length ?? 0) > 0,
  };
  await writeState(options.outDir, next);
  const reloaded = next.reloadPending ? await reload(options, next, logger) : false;
  if (reloaded) {
    next = { ...next, reloadPending: false };
    await writeState(options.outDir, next);
  }
  return { state: next, outcome: outcome(options, next, changed, reloaded) };
}

/** Runs the reload command; a failure is logged and retried on the next pull (--once: reported). */
async function reload(options: AgentOptions, state: AgentState, logger: Logger): Promise<boolean> {
  try {
    await runReload({
      argv: options.exec ?? [],
      timeoutMs: options.execTimeoutMs ?? 60_000,
      env: {
        KEYWRIGHT_CERT_NAME: options.certificate,
        KEYWRIGHT_CERT_DIR: options.outDir,
        KEYWRIGHT_CERT_VERSION: String(state.version),
        RENEWED_LINEAGE: options.outDir, // certbot's deploy-hook variable
      },
    });
    logger.info({ certificate: options.certificate, version: state.version }, 'reload command succeeded');
    return true;
  } catch (err) {
    if (options.once) throw err;
    const e = toAppError(err);
    logger.error({ certificate: options.certificate, code: e.code, details: e.details }, e.message);
    return false;
  }
}

function outcome(options: AgentOptions, state: AgentState, changed: boolean, reloaded: boolean): PullOutcome {
  return {
    certificate: options.certificate,
    changed,
    reloaded,
    version: state.version,
    fingerprint: state.fingerprint,
  };
}

interface JsonBundle {
  name?: unknown;
  version?: unknown;
  fingerprint?: unknown;
  certificate?: unknown;
  chain?: unknown;
  fullchain?: unknown;
  privateKey?: unknown;
}

/** Decodes (and unseals) the bundle and refuses anything that would leave a server unable to start. */
async function parseBundle(options: AgentOptions, body: Buffer): Promise<PulledBundle> {
  const plaintext = options.sealKey
    ? await unsealBundle(body.toString('utf8'), options.sealKey, options.certificate)
    : body;
  let b: JsonBundle;
  try {
    b = JSON.parse(plaintext.toString('utf8')) as JsonBundle;
  } catch (err) {
    throw new AppError('INTERNAL', 'the daemon sent a bundle that is not JSON', { cause: err });
  }
  if (typeof b.privateKey !== 'string') {
    throw new AppError(
      'ACCESS_DENIED',
      `the daemon sent ${options.certificate} without its key: this token or certificate may read it but not export the key (role service, scope cert:${options.certificate})`,
      { details: { certificate: options.certificate } },
    );
  }
  if (
    b.name !== options.certificate ||
    typeof b.version !== 'number' ||
    typeof b.fingerprint !== 'string' ||
    typeof b.certificate !== 'string' ||
    typeof b.chain !== 'string' ||
    typeof b.fullchain !== 'string'
  ) {
    throw new AppError('INTERNAL', `the daemon sent a malformed bundle for ${options.certificate}`);
  }
  const bundle: PulledBundle = {
    name: b.name,
    version: b.version,
    fingerprint: b.fingerprint,
    certificate: b.certificate,
    chain: b.chain,
    fullchain: b.fullchain,
    privateKey: b.privateKey,
  };
  checkKeyMatches(bundle);
  return bundle;
}

/** Never write a key that does not belong to the certificate beside it. */
function checkKeyMatches(b: PulledBundle): void {
  let matches = false;
  try {
    const cert = new X509Certificate(b.certificate);
    const fromKey = createPublicKey(createPrivateKey(b.privateKey)).export({ type: 'spki', format: 'der' });
    const fromCert = cert.publicKey.export({ type: 'spki', format: 'der' });
    matches = fromKey.equals(fromCert);
  } catch (err) {
    if (isAppError(err)) throw err;
  }
  if (!matches) {
    throw new AppError(
      'KEY_INVALID',
      `the bundle for ${b.name} holds a key that does not match its certificate`,
      {
        details: { certificate: b.name, version: b.version },
      },
    );
  }
}
