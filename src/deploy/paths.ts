/**
 * Where file targets may write. The daemon often runs as root, so a deploy directory is an allow-list
 * decision, checked twice: lexically when the target is built (a config error names the field), and
 * again through realpath before every write (a symlink planted inside an allowed directory cannot lead
 * the write elsewhere).
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { DeployError } from '../core/errors.js';

export function isWithin(path: string, base: string): boolean {
  const rel = relative(base, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** The resolved directory, or DEPLOY_TARGET_INVALID naming `field` when it lies outside every allowed one. */
export function checkAllowedDir(dir: string, allowedDirs: readonly string[], field: string): string {
  if (!isAbsolute(dir)) {
    throw new DeployError('DEPLOY_TARGET_INVALID', `${field}: "${dir}" must be an absolute path`, {
      details: { field, value: dir },
    });
  }
  const resolved = resolve(dir);
  if (!allowedDirs.some((base) => isWithin(resolved, resolve(base)))) {
    throw outside(field, resolved, allowedDirs);
  }
  return resolved;
}

/** Re-checks with symlinks resolved: the nearest existing ancestor's real path must stay inside. */
export async function checkAllowedDirReal(
  dir: string,
  allowedDirs: readonly string[],
  field: string,
): Promise<void> {
  const real = await realpathOfNearest(dir);
  const bases = await Promise.all(allowedDirs.map((b) => realpathOfNearest(resolve(b))));
  if (!bases.some((base) => isWithin(real, base))) throw outside(field, real, allowedDirs);
}

function outside(field: string, path: string, allowedDirs: readonly string[]): DeployError {
  const allowed = allowedDirs.length > 0 ? allowedDirs.join(', ') : 'none configured';
  return new DeployError(
    'DEPLOY_TARGET_INVALID',
    `${field}: "${path}" is outside the allowed deploy directories (${allowed}); add a parent to deploy.allowedDirs`,
    { details: { field, value: path, allowedDirs: [...allowedDirs] } },
  );
}

/** realpath of `path`, or of its nearest existing ancestor joined with the missing rest. */
async function realpathOfNearest(path: string): Promise<string> {
  const missing: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    try {
      return resolve(await realpath(p), ...missing);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(p) === p) throw err;
      missing.unshift(basename(p));
    }
  }
}
