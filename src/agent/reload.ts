import { spawn } from 'node:child_process';
import { AppError } from '../core/errors.js';

export interface ReloadCommand {
  /** argv: run without a shell, so nothing in a name or path is ever interpreted. */
  readonly argv: readonly string[];
  readonly timeoutMs: number;
  /** Extra variables; the agent's own environment is not passed on (it may hold the token). */
  readonly env: Readonly<Record<string, string>>;
}

/**
 * Runs the reload command and resolves when it exits 0. A non-zero exit, a signal, a spawn failure or
 * the timeout (the process group is killed) is DEPLOY_FAILED with the exit code, never the output.
 */
export function runReload(command: ReloadCommand): Promise<void> {
  const [file, ...args] = command.argv;
  if (file === undefined) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      shell: false,
      detached: true, // its own process group, so a timeout kills what it started too
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...command.env },
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, command.timeoutMs);
    const fail = (what: string, details: Record<string, unknown>, cause?: unknown) =>
      reject(
        new AppError('DEPLOY_FAILED', `the reload command ${file} ${what}`, {
          ...(cause === undefined ? {} : { cause }),
          details: { command: file, ...details },
        }),
      );
    child.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(`could not be started (${err.code ?? 'error'})`, { cause: err.code ?? 'error' }, err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (timedOut)
        return fail(`timed out after ${command.timeoutMs} ms and was killed`, {
          timeoutMs: command.timeoutMs,
        });
      if (code === 0) return resolve();
      fail(code === null ? `was killed by ${signal}` : `exited with ${code}`, { exitCode: code, signal });
    });
  });
}
