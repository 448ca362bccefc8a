import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AppError } from '../core/errors.js';
import { mkdirDurable, writeFileDurable } from '../core/fs-durable.js';

/** certbot's file names, so servers configured for certbot need no change (DESIGN §4). */
export const BUNDLE_FILES = {
  cert: 'cert.pem',
  chain: 'chain.pem',
  fullchain: 'fullchain.pem',
  privkey: 'privkey.pem',
} as const;

/** Non-secret bookkeeping beside the files: what was last written, so a restart sends If-None-Match. */
export const STATE_FILE = '.keywright-agent.json';

export interface PulledBundle {
  readonly name: string;
  readonly version: number;
  readonly fingerprint: string;
  readonly certificate: string;
  readonly chain: string;
  readonly fullchain: string;
  readonly privateKey: string;
}

export interface AgentState {
  /** What the files hold: `cert:<name>` or `vpn:<network>/<peer>`. */
  readonly subject: string;
  readonly etag: string;
  readonly fingerprint: string;
  readonly version?: number | undefined;
  /** The reload command has not yet succeeded for these files: run it again on the next pull. */
  readonly reloadPending: boolean;
}

/** One file the agent writes: atomically, with this mode. */
export interface OutputFile {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
}

function unwritable(dir: string, err: unknown): AppError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  return new AppError(
    'AGENT_OUTPUT_UNWRITABLE',
    `--out ${dir}: cannot write there (${code}); give a directory the agent's user may write, nothing was written`,
    { cause: err, details: { dir, cause: code } },
  );
}

/**
 * Makes sure `dir` exists and a file can be created and removed in it, before anything is pulled or
 * written: a bad --out fails at once, whole, rather than after a key has been exported.
 */
export async function ensureWritableDir(dir: string, mode = 0o755): Promise<void> {
  try {
    await mkdirDurable(dir, mode);
    const probe = join(dir, `.keywright-agent-probe-${randomBytes(6).toString('hex')}`);
    await writeFileDurable(probe, '', 0o600);
    await rm(probe, { force: true });
  } catch (err) {
    throw unwritable(dir, err);
  }
}

/** The four certbot files of a bundle, key first (see writeOutputFiles). */
export function bundleFiles(dir: string, b: PulledBundle): OutputFile[] {
  return [
    { path: join(dir, BUNDLE_FILES.privkey), content: b.privateKey, mode: 0o600 },
    { path: join(dir, BUNDLE_FILES.cert), content: b.certificate, mode: 0o644 },
    { path: join(dir, BUNDLE_FILES.chain), content: b.chain, mode: 0o644 },
    { path: join(dir, BUNDLE_FILES.fullchain), content: b.fullchain, mode: 0o644 },
  ];
}

/**
 * Writes the files in order, each atomically (temp, fsync, rename, directory fsync). Sources put the key
 * first, so a server never sees a new certificate beside an old key for longer than the renames after
 * it; a failure leaves every file whole (old or new), and the caller keeps the previous state.
 */
export async function writeOutputFiles(dir: string, files: readonly OutputFile[]): Promise<void> {
  try {
    for (const f of files) await writeFileDurable(f.path, f.content, f.mode);
  } catch (err) {
    throw unwritable(dir, err);
  }
}

/** SHA-256 (hex) of the DER of the certificate now in `dir`, or undefined when there is none or no key. */
export async function fingerprintOnDisk(dir: string): Promise<string | undefined> {
  try {
    await stat(join(dir, BUNDLE_FILES.privkey));
    const pem = await readFile(join(dir, BUNDLE_FILES.cert), 'utf8');
    return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
  } catch {
    return undefined;
  }
}

export async function readState(file: string): Promise<AgentState | undefined> {
  try {
    const s = JSON.parse(await readFile(file, 'utf8')) as Partial<AgentState> & { certificate?: unknown };
    // State files from before the VPN mode named the certificate alone.
    const subject =
      typeof s.subject === 'string'
        ? s.subject
        : typeof s.certificate === 'string'
          ? `cert:${s.certificate}`
          : undefined;
    if (
      subject !== undefined &&
      typeof s.etag === 'string' &&
      typeof s.fingerprint === 'string' &&
      (s.version === undefined || typeof s.version === 'number')
    ) {
      return {
        subject,
        etag: s.etag,
        fingerprint: s.fingerprint,
        ...(s.version === undefined ? {} : { version: s.version }),
        reloadPending: s.reloadPending === true,
      };
    }
  } catch {
    /* no state or a damaged one: pull afresh */
  }
  return undefined;
}

export async function writeState(file: string, state: AgentState): Promise<void> {
  try {
    await writeFileDurable(file, `${JSON.stringify(state)}\n`, 0o644);
  } catch (err) {
    throw unwritable(dirname(file), err);
  }
}
