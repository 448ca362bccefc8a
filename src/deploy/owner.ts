/**
 * User and group names to ids, from /etc/passwd and /etc/group (no native module, no `id` subprocess).
 * Only consulted when the daemon runs as root, the one case where chown can succeed.
 */
import { readFile } from 'node:fs/promises';
import { DeployError } from '../core/errors.js';

export interface Ownership {
  readonly uid: number;
  readonly gid: number;
}

export interface IdFiles {
  readonly passwd?: string;
  readonly group?: string;
}

/** uid/gid for chown; -1 leaves that id unchanged (as chown(2) does). */
export async function resolveOwnership(
  owner: string | undefined,
  group: string | undefined,
  field: string,
  files: IdFiles = {},
): Promise<Ownership> {
  const uid =
    owner === undefined ? -1 : await lookup(owner, files.passwd ?? '/etc/passwd', `${field}.owner`, 'user');
  const gid =
    group === undefined ? -1 : await lookup(group, files.group ?? '/etc/group', `${field}.group`, 'group');
  return { uid, gid };
}

async function lookup(nameOrId: string, file: string, field: string, what: string): Promise<number> {
  if (/^\d+$/.test(nameOrId)) return Number(nameOrId);
  const text = await readFile(file, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name === nameOrId && id !== undefined && /^\d+$/.test(id)) return Number(id);
  }
  throw new DeployError('DEPLOY_TARGET_INVALID', `${field}: no ${what} named "${nameOrId}" on this system`, {
    details: { field, value: nameOrId },
  });
}

export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
