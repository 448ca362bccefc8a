/**
 * The exec target: runs a command (argv, never a shell) after the files are in place, typically a
 * reload. Its environment is built from scratch: a few neutral variables of the daemon's own (PATH,
 * HOME, locale), the configured extras, and the certificate's name, paths and domains, including
 * certbot's RENEWED_LINEAGE / RENEWED_DOMAINS so existing certbot deploy hooks work unchanged. The
 * daemon's environment is not passed on (it may hold the KEK or a passphrase), and the key never is:
 * a hook that needs it reads privkey.pem, whose path it gets.
 */
import { DeployError } from '../core/errors.js';
import { formatDuration } from '../core/duration.js';
import type { DeployArtifact, DeployContext, DeployResult, DeployTarget, DeployedFiles } from './port.js';
import { runProcess, SpawnError } from './process.js';

export interface ExecTargetOptions {
  readonly command: readonly string[];
  readonly timeoutMs?: number;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Bytes of stdout/stderr kept (the last ones); the rest is counted and dropped. */
  readonly maxOutputBytes?: number;
  readonly field?: string;
  /** Where PATH, HOME and the locale come from (default: process.env). */
  readonly baseEnv?: NodeJS.ProcessEnv;
}

/** The daemon's variables a hook may see; anything else (KEYWRIGHT_MASTER_KEY …) stays behind. */
const INHERITED = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'USER', 'LOGNAME'] as const;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const STDERR_LINES = 5;
const LINE_MAX = 300;

export class ExecTarget implements DeployTarget {
  readonly kind = 'exec' as const;
  readonly id: string;
  readonly #o: ExecTargetOptions;
  readonly #label: string;

  constructor(options: ExecTargetOptions) {
    const field = options.field ?? 'exec';
    if (options.command.length === 0 || options.command.some((a) => a.length === 0 || a.includes('\0'))) {
      throw new DeployError(
        'DEPLOY_TARGET_INVALID',
        `${field}.command: give the program and its arguments as a list`,
        {
          details: { field: `${field}.command` },
        },
      );
    }
    this.#o = options;
    this.#label = options.command.join(' ');
    this.id = `exec:${options.command[0]!}`;
  }

  async deploy(artifact: DeployArtifact, ctx: DeployContext): Promise<DeployResult> {
    if (!ctx.earlierChanged && ctx.lastDeliveredFingerprint === artifact.fingerprint) {
      return { outcome: 'unchanged', detail: `already ran for version ${artifact.version}` };
    }
    const timeoutMs = this.#o.timeoutMs ?? 60_000;
    let result;
    try {
      result = await runProcess(this.#o.command, {
        env: hookEnvironment(artifact, ctx.files.at(-1), this.#o.env ?? {}, this.#o.baseEnv ?? process.env),
        ...(this.#o.cwd !== undefined ? { cwd: this.#o.cwd } : {}),
        timeoutMs,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        ...(this.#o.maxOutputBytes !== undefined ? { maxOutputBytes: this.#o.maxOutputBytes } : {}),
      });
    } catch (err) {
      const errno = err instanceof SpawnError ? err.errno : 'error';
      const why =
        errno === 'ENOENT'
          ? `command "${this.#o.command[0]!}" not found (or cwd missing); check the path and PATH`
          : errno === 'EACCES'
            ? `command "${this.#o.command[0]!}" is not executable`
            : `could not start "${this.#o.command[0]!}" (${errno})`;
      throw new DeployError('DEPLOY_FAILED', `exec target: ${why}`, {
        cause: err,
        retryable: false, // a configuration problem: a person has to fix it
        details: { target: this.id, errno },
      });
    }
    const took = `after ${result.durationMs} ms`;
    const details = {
      target: this.id,
      exitCode: result.exitCode,
      signal: result.signal,
      stdoutBytes: result.stdoutBytes,
      stderrBytes: result.stderrBytes,
    };
    if (result.timedOut || result.aborted) {
      const why = result.timedOut ? `timed out after ${formatDuration(timeoutMs)}` : 'was cancelled';
      throw new DeployError(
        'DEPLOY_FAILED',
        `exec target "${this.#label}" ${why}; its process group was killed${tailOf(result.stderr)}`,
        {
          details: { ...details, timedOut: result.timedOut },
        },
      );
    }
    if (result.exitCode !== 0) {
      const how =
        result.exitCode === null
          ? `was killed by ${result.signal ?? 'a signal'}`
          : `exited with code ${result.exitCode}`;
      throw new DeployError(
        'DEPLOY_FAILED',
        `exec target "${this.#label}" ${how} ${took}${tailOf(result.stderr || result.stdout)}`,
        {
          details,
        },
      );
    }
    return { outcome: 'deployed', detail: `"${this.#label}" exited 0 ${took}` };
  }
}

/** The hook's whole environment. Exported for tests and docs/deploy.md. */
export function hookEnvironment(
  artifact: DeployArtifact,
  files: DeployedFiles | undefined,
  extra: Readonly<Record<string, string>>,
  base: NodeJS.ProcessEnv,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of INHERITED) if (base[name] !== undefined) env[name] = base[name];
  env.PATH ??= DEFAULT_PATH;
  Object.assign(env, extra);
  const domains = artifact.domains.join(' ');
  Object.assign(env, {
    KEYWRIGHT_CERT_NAME: artifact.certificate,
    KEYWRIGHT_CERT_VERSION: String(artifact.version),
    KEYWRIGHT_CERT_SERIAL: artifact.serialHex,
    KEYWRIGHT_CERT_FINGERPRINT: artifact.fingerprint,
    KEYWRIGHT_CERT_NOT_AFTER: artifact.notAfter,
    KEYWRIGHT_DOMAINS: domains,
    RENEWED_DOMAINS: domains, // certbot: space-separated
  });
  if (files) {
    Object.assign(env, {
      KEYWRIGHT_CERT_DIR: files.dir,
      KEYWRIGHT_CERT_PATH: files.cert,
      KEYWRIGHT_CHAIN_PATH: files.chain,
      KEYWRIGHT_FULLCHAIN_PATH: files.fullchain,
      ...(files.privkey !== undefined ? { KEYWRIGHT_KEY_PATH: files.privkey } : {}),
      RENEWED_LINEAGE: files.dir, // certbot: the live directory holding cert.pem, privkey.pem …
    });
  }
  return env;
}

/** The last lines of a stream, trimmed, for an error message. */
function tailOf(text: string): string {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-STDERR_LINES)
    .map((l) => (l.length > LINE_MAX ? `${l.slice(0, LINE_MAX)}…` : l));
  return lines.length > 0 ? `; last output: ${lines.join(' | ')}` : '';
}
