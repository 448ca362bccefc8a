import { StoreError } from '../core/errors.js';

/**
 * A short, safe description of a failure for a StoreError message: an OS error's code and syscall
 * (ENOSPC on write), not its text. The original stays attached as `cause` for the log.
 */
export function describe(err: unknown): string {
  if (err instanceof StoreError) return err.message;
  if (!(err instanceof Error)) return 'unknown error';
  const { code, syscall } = err as NodeJS.ErrnoException;
  if (code === undefined) return err.name;
  return syscall === undefined ? code : `${code} on ${syscall}`;
}
