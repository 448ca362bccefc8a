/**
 * Runs a hook process: argv without a shell, in its own process group (so a timeout kills the whole
 * tree, not just the first process), stdin closed, and only the tail of its output kept, so a command
 * printing megabytes costs a bounded amount of memory.
 */
import { spawn } from 'node:child_process';

export interface ProcessOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Bytes of each stream kept (the last ones). */
  readonly maxOutputBytes?: number;
  /** Between SIGTERM and SIGKILL of the process group. */
  readonly killGraceMs?: number;
}

export interface ProcessResult {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly aborted: boolean;
  readonly stdout: string;
  readonly stderr: string;
  /** Total bytes each stream produced (kept or not). */
  readonly stdoutBytes: number;
  readonly stderrBytes: number;
  readonly durationMs: number;
}

export class SpawnError extends Error {
  constructor(
    readonly errno: string,
    message: string,
  ) {
    super(message);
  }
}

/** Keeps the last `max` bytes written to it. */
class Tail {
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  total = 0;
  constructor(readonly max: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    this.#chunks.push(chunk);
    this.#kept += chunk.length;
    while (this.#chunks.length > 1 && this.#kept - this.#chunks[0]!.length >= this.max) {
      this.#kept -= this.#chunks.shift()!.length;
    }
  }

  text(): string {
    const all = Buffer.concat(this.#chunks);
    return all.subarray(Math.max(0, all.length - this.max)).toString('utf8');
  }
}

const DEFAULT_MAX_OUTPUT = 64 * 1024;

export function runProcess(argv: readonly string[], options: ProcessOptions): Promise<ProcessResult> {
  const [command, ...args] = argv;
  if (command === undefined) return Promise.reject(new SpawnError('EINVAL', 'empty command'));
  const started = performance.now();
  const out = new Tail(options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT);
  const err = new Tail(options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT);

  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env,
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: kill(-pid) reaches every descendant
      shell: false,
    });
    let timedOut = false;
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (): void => {
      signalGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), options.killGraceMs ?? 2_000);
      killTimer.unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    const onAbort = (): void => {
      aborted = true;
      killGroup();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));

    const cleanup = (): void => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
    };

    child.once('error', (e: NodeJS.ErrnoException) => {
      cleanup();
      reject(new SpawnError(e.code ?? 'error', e.message));
    });

    child.once('exit', (exitCode, signal) => {
      // A descendant may keep the pipes open (a daemon it started): wait briefly for them, then let go.
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        cleanup();
        child.stdout.destroy();
        child.stderr.destroy();
        resolve({
          exitCode,
          signal,
          timedOut,
          aborted,
          stdout: out.text(),
          stderr: err.text(),
          stdoutBytes: out.total,
          stderrBytes: err.total,
          durationMs: Math.round(performance.now() - started),
        });
      };
      const grace = setTimeout(finish, 200);
      child.once('close', () => {
        clearTimeout(grace);
        finish();
      });
    });
  });
}

function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
