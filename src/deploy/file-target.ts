/**
 * The file target: writes certbot's layout (cert.pem, chain.pem, fullchain.pem, privkey.pem, or custom
 * names) into one directory, each file replaced atomically by writeFileDurable (the set is not: the reload
 * belongs to an exec target, which runs after all of them). The key goes first, so on a first deploy no
 * certificate ever sits there without its key. Files already holding exactly the wanted
 * bytes, mode and owner answer `unchanged`, so a retry or restart does not rewrite (and reload) anything.
 */
import { chown, lstat, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DeployError, isAppError } from '../core/errors.js';
import { fsyncDir, mkdirDurable, writeFileDurable } from '../core/fs-durable.js';
import { checkAllowedDir, checkAllowedDirReal } from './paths.js';
import { resolveOwnership, runningAsRoot, type IdFiles, type Ownership } from './owner.js';
import type {
  DeployArtifact,
  DeployContext,
  DeployResult,
  DeployTarget,
  DeployedFiles,
  VerifyResult,
} from './port.js';
import { pemFingerprint } from './port.js';

export interface FileNames {
  readonly cert: string;
  readonly chain: string;
  readonly fullchain: string;
  readonly privkey: string;
}

export const CERTBOT_NAMES: FileNames = {
  cert: 'cert.pem',
  chain: 'chain.pem',
  fullchain: 'fullchain.pem',
  privkey: 'privkey.pem',
};

export interface FileTargetOptions {
  readonly dir: string;
  readonly allowedDirs: readonly string[];
  readonly names?: Partial<FileNames>;
  /** Write the key file when the artifact has a key (default true). */
  readonly includeKey?: boolean;
  readonly mode?: number;
  readonly keyMode?: number;
  readonly owner?: string;
  readonly group?: string;
  readonly rollback?: boolean;
  /** Config path for messages, e.g. `certificates[0].deploy[0].file`. */
  readonly field?: string;
  /** Tests: pretend (not) to be root, read other id files. */
  readonly asRoot?: boolean;
  readonly idFiles?: IdFiles;
}

interface PlannedFile {
  readonly role: keyof FileNames;
  readonly path: string;
  readonly data: Buffer;
  readonly mode: number;
}

interface Snapshot {
  readonly path: string;
  readonly previous?: {
    readonly data: Buffer;
    readonly mode: number;
    readonly uid: number;
    readonly gid: number;
  };
}

const DIR_MODE = 0o750;
const ROLES = ['cert', 'chain', 'fullchain', 'privkey'] as const;

function wipe(snapshot: readonly Snapshot[]): void {
  for (const s of snapshot) s.previous?.data.fill(0);
}

export class FileTarget implements DeployTarget {
  readonly kind = 'file' as const;
  readonly id: string;
  readonly dir: string;
  readonly #o: FileTargetOptions;
  readonly #names: FileNames;
  readonly #field: string;

  constructor(options: FileTargetOptions) {
    this.#field = options.field ?? 'file';
    this.dir = checkAllowedDir(options.dir, options.allowedDirs, `${this.#field}.dir`);
    this.#names = { ...CERTBOT_NAMES, ...options.names };
    const seen = new Set<string>();
    for (const role of ROLES) {
      const name = this.#names[role];
      if (!/^[^/\\\0]{1,255}$/.test(name) || name === '.' || name === '..') {
        throw new DeployError(
          'DEPLOY_TARGET_INVALID',
          `${this.#field}.names.${role}: "${name}" is not a plain file name`,
          {
            details: { field: `${this.#field}.names.${role}`, value: name },
          },
        );
      }
      if (seen.has(name)) {
        throw new DeployError(
          'DEPLOY_TARGET_INVALID',
          `${this.#field}.names.${role}: "${name}" is used twice`,
          {
            details: { field: `${this.#field}.names.${role}`, value: name },
          },
        );
      }
      seen.add(name);
    }
    this.#o = options;
    this.id = `file:${this.dir}`;
  }

  async deploy(artifact: DeployArtifact, ctx: DeployContext): Promise<DeployResult> {
    await checkAllowedDirReal(this.dir, this.#o.allowedDirs, `${this.#field}.dir`);
    const planned = this.#plan(artifact);
    const files = this.#deployedFiles(planned);
    const owner = await this.#ownership(ctx);
    let snapshot: Snapshot[] | undefined;
    try {
      if (await this.#inPlace(planned, owner)) {
        return {
          outcome: 'unchanged',
          detail: `${this.dir} already holds version ${artifact.version}`,
          files,
        };
      }
      snapshot = this.#o.rollback === true ? await this.#snapshot(planned) : undefined;
      await mkdirDurable(this.dir, DIR_MODE);
      if (owner) await chown(this.dir, owner.uid, owner.gid);
      for (const file of planned) {
        await writeFileDurable(file.path, file.data, file.mode);
        if (owner) await chown(file.path, owner.uid, owner.gid);
      }
      const written = planned.map((f) => f.path.slice(this.dir.length + 1)).join(', ');
      const kept = snapshot;
      return {
        outcome: 'deployed',
        detail: `wrote ${written} in ${this.dir}`,
        files,
        ...(kept ? { undo: { restore: () => this.#restore(kept), discard: () => wipe(kept) } } : {}),
      };
    } catch (err) {
      // a half-written set (new key, old certificate) is worse than the old set: put it back when we can
      if (snapshot) {
        await this.#restore(snapshot).catch((restoreErr: unknown) =>
          ctx.logger.error({ err: restoreErr, target: this.id }, 'restoring the previous files failed'),
        );
      }
      throw this.#wrap(err, 'writing');
    }
  }

  async verify(artifact: DeployArtifact): Promise<VerifyResult> {
    const path = join(this.dir, this.#names.cert);
    const found = pemFingerprint(await readFile(path, 'utf8').catch(() => ''));
    return found === artifact.fingerprint
      ? { ok: true, detail: `${path} holds version ${artifact.version}` }
      : { ok: false, detail: `${path} holds ${found ?? 'no certificate'}, not ${artifact.fingerprint}` };
  }

  #plan(artifact: DeployArtifact): PlannedFile[] {
    const mode = this.#o.mode ?? 0o644;
    const planned: PlannedFile[] = [];
    const key = this.#o.includeKey === false ? undefined : artifact.privateKey;
    if (key) {
      planned.push({
        role: 'privkey',
        path: join(this.dir, this.#names.privkey),
        data: key.reveal(),
        mode: this.#o.keyMode ?? 0o600,
      });
    }
    planned.push(
      {
        role: 'cert',
        path: join(this.dir, this.#names.cert),
        data: Buffer.from(artifact.certificatePem),
        mode,
      },
      {
        role: 'chain',
        path: join(this.dir, this.#names.chain),
        data: Buffer.from(artifact.chainPem.join('')),
        mode,
      },
      {
        role: 'fullchain',
        path: join(this.dir, this.#names.fullchain),
        data: Buffer.from(artifact.fullchainPem),
        mode,
      },
    );
    return planned;
  }

  #deployedFiles(planned: readonly PlannedFile[]): DeployedFiles {
    const path = (role: keyof FileNames): string => join(this.dir, this.#names[role]);
    return {
      dir: this.dir,
      cert: path('cert'),
      chain: path('chain'),
      fullchain: path('fullchain'),
      ...(planned.some((f) => f.role === 'privkey') ? { privkey: path('privkey') } : {}),
    };
  }

  async #ownership(ctx: DeployContext): Promise<Ownership | undefined> {
    if (this.#o.owner === undefined && this.#o.group === undefined) return undefined;
    if (!(this.#o.asRoot ?? runningAsRoot())) {
      ctx.logger.debug({ target: this.id }, 'owner/group not applied: the daemon does not run as root');
      return undefined;
    }
    return resolveOwnership(this.#o.owner, this.#o.group, this.#field, this.#o.idFiles);
  }

  /** Every planned file exists with the same bytes, mode and (when managed) owner. */
  async #inPlace(planned: readonly PlannedFile[], owner: Ownership | undefined): Promise<boolean> {
    for (const file of planned) {
      const st = await lstat(file.path).catch(() => undefined);
      if (!st?.isFile() || (st.mode & 0o777) !== file.mode) return false;
      if (owner && ((owner.uid !== -1 && st.uid !== owner.uid) || (owner.gid !== -1 && st.gid !== owner.gid)))
        return false;
      if (st.size !== file.data.length) return false;
      const current = await readFile(file.path);
      const same = current.equals(file.data);
      current.fill(0); // may be a key
      if (!same) return false;
    }
    return true;
  }

  async #snapshot(planned: readonly PlannedFile[]): Promise<Snapshot[]> {
    const snapshot: Snapshot[] = [];
    for (const file of planned) {
      const st = await lstat(file.path).catch(() => undefined);
      if (st?.isFile()) {
        snapshot.push({
          path: file.path,
          previous: { data: await readFile(file.path), mode: st.mode & 0o777, uid: st.uid, gid: st.gid },
        });
      } else {
        snapshot.push({ path: file.path });
      }
    }
    return snapshot;
  }

  async #restore(snapshot: readonly Snapshot[]): Promise<void> {
    try {
      for (const { path, previous } of [...snapshot].reverse()) {
        if (previous) {
          await writeFileDurable(path, previous.data, previous.mode);
          if (this.#o.asRoot ?? runningAsRoot()) await chown(path, previous.uid, previous.gid);
        } else {
          await rm(path, { force: true });
        }
      }
      await fsyncDir(this.dir);
    } catch (err) {
      throw this.#wrap(err, 'restoring the previous files in');
    } finally {
      wipe(snapshot);
    }
  }

  #wrap(err: unknown, doing: string): DeployError {
    if (isAppError(err, 'DEPLOY_FAILED', 'DEPLOY_TARGET_INVALID')) return err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return new DeployError(
      'DEPLOY_FAILED',
      `file target: ${doing} ${this.dir} failed (${code}); check the directory and free space`,
      {
        cause: err,
        details: { target: this.id, errno: code },
      },
    );
  }
}
