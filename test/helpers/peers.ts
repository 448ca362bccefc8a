import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/**
 * Real test peers (openssl, nginx, pebble, wg …) come from Debian packages installed by scripts/test.sh.
 * Locally a missing peer skips the test with the reason; under CI=true it fails the run.
 */
export function which(binary: string): string | undefined {
  const res = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' });
  const path = res.stdout.trim();
  return res.status === 0 && path ? path : undefined;
}

/** Returns the peer's path, or skips (locally) / throws (CI) when it is missing. */
export function requirePeer(t: TestContext, binary: string, pkg = binary): string | undefined {
  const path = which(binary);
  if (path) return path;
  const reason = `${binary} not installed (Debian package ${pkg}; scripts/test.sh installs it)`;
  if (process.env.CI === 'true') throw new Error(`required test peer missing under CI: ${reason}`);
  t.skip(reason);
  return undefined;
}

/** Run a peer command synchronously and return its result; never throws on a non-zero exit. */
export function runPeer(cmd: string, args: string[], input?: string | Buffer) {
  const res = spawnSync(cmd, args, { input, encoding: 'utf8', timeout: 30_000 });
  return { status: res.status, stdout: res.stdout ?? '', stderr: res.stderr ?? '' };
}
