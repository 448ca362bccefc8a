/**
 * Runs a solver hook: argv, never a shell (no quoting surprises, no injection through a domain name),
 * a timeout that kills the hook's whole process group, and an environment without keywright's own
 * secrets (KEYWRIGHT_* may hold the master key or a token).
 */
import { spawn } from 'node:child_process';
import { AcmeError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';

export interface HookRun {
  readonly label: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly logger: Logger;
  readonly signal?: AbortSignal | undefined;
}

const KILL_GRACE_MS = 2000;
const OUTPUT_TAIL = 2048;

/** The daemon's environment minus KEYWRIGHT_*, plus `extra`. */
export function hookEnvironment(extra: Readonly<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('KEYWRIGHT_')) env[k] = v;
  }
  return { ...env, ...extra };
}

function tail(chunks: Buffer[]): string {
  const text = Buffer.concat(chunks).toString('utf8');
  return text.length > OUTPUT_TAIL ? text.slice(-OUTPUT_TAIL) : text;
}

/** Resolves when the hook exits 0; ACME_SOLVER_FAILED on a non-zero exit, a signal, a timeout or ENOENT. */
export function runHook(run: HookRun): Promise<void> {
  const [command, ...args] = run.argv;
  if (command === undefined) {
    return Promise.reject(new AcmeError('ACME_SOLVER_FAILED', `${run.label}: the hook command is empty`));
  }
  return new Promise<void>((resolve, reject) => {
    // A process group of its own, so a timeout also ends what the hook started (sleep, curl …).
    const child = spawn(command, args, { env: run.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    let settled = false;
    let timedOut = false;
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    const finish = (error?: AcmeError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      const stderr = tail(err).trim();
      // Hook output goes to the log, not into the error: a hook may print what it should not.
      if (stderr !== '' || error) {
        run.logger[error ? 'warn' : 'debug'](
          { hook: run.label, stdout: tail(out).trim(), stderr },
          error ? 'hook failed' : 'hook output',
        );
      }
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS).unref();
      finish(
        new AcmeError(
          'ACME_SOLVER_FAILED',
          `${run.label}: the hook ${command} did not finish within ${run.timeoutMs} ms and was killed`,
          {
            details: { hook: command, timeoutMs: run.timeoutMs },
          },
        ),
      );
    }, run.timeoutMs);
    const onAbort = () => {
      killGroup('SIGTERM');
      finish(new AcmeError('ACME_SOLVER_FAILED', `${run.label}: cancelled`, { retryable: true }));
    };
    run.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e: NodeJS.ErrnoException) =>
      finish(
        new AcmeError(
          'ACME_SOLVER_FAILED',
          `${run.label}: cannot run the hook ${command}: ${e.code ?? e.message}`,
          {
            cause: e,
            retryable: false,
            details: { hook: command },
          },
        ),
      ),
    );
    child.on('exit', (code, signal) => {
      if (timedOut) return;
      if (code === 0) return finish();
      finish(
        new AcmeError(
          'ACME_SOLVER_FAILED',
          `${run.label}: the hook ${command} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; its output is in the daemon log`,
          {
            details: {
              hook: command,
              ...(code !== null ? { exitCode: code } : {}),
              ...(signal ? { signal } : {}),
            },
          },
        ),
      );
    });
  });
}
