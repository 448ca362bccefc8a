import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
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
  readonly certificate: string;
  readonly etag: string;
  readonly fingerprint: string;
  readonly version: number;
  /** The reload command has not yet succeeded for these files: run it again on the next pull. */
  readonly reloadPending: boolean;
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
export async function ensureWritableDir(dir: string): Promise<void> {
  try {
    await mkdirDurable(dir, 0o755);
    const probe = join(dir, `.keywright-agent-probe-${randomBytes(6).toString('hex')}`);
    await writeFileDurable(probe, '', 0o600);
    await rm(probe, { force: true });
  } catch (err) {
    throw unwritable(dir, err);
  }
}

/**
 * Writes the four files, each atomically (temp, fsync, rename, directory fsync). The key goes first, so
 * a server never sees a new certificate beside an old key for longer than the three renames after it;
 * a failure leaves every file whole (old or new), and the caller keeps the previous state.
 */
export async function writeBundleFiles(dir: string, b: PulledBundle): Promise<void> {
  try {
    await writeFileDurable(join(dir, BUNDLE_FILES.privkey), b.privateKey, 0o600);
    await writeFileDurable(join(dir, BUNDLE_FILES.cert), b.certificate, 0o644);
    await writeFileDurable(join(dir, BUNDLE_FILES.chain), b.chain, 0o644);
    await writeFileDurable(join(dir, BUNDLE_FILES.fullchain), b.fullchain, 0o644);
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

export async function readState(dir: string): Promise<AgentState | undefined> {
  try {
    const s = JSON.parse(await readFile(join(dir, STATE_FILE), 'utf8')) as Partial<AgentState>;
    if (
      typeof s.certificate === 'string' &&
      typeof s.etag === 'string' &&
      typeof s.fingerprint === 'string' &&
      typeof s.version === 'number'
    ) {
      return { ...(s as AgentState), reloadPending: s.reloadPending === true };
    }
  } catch {
    /* no state or a damaged one: pull afresh */
  }
  return undefined;
}

export async function writeState(dir: string, state: AgentState): Promise<void> {
  try {
    await writeFileDurable(join(dir, STATE_FILE), `${JSON.stringify(state)}\n`, 0o644);
  } catch (err) {
    throw unwritable(dir, err);
  }
}
