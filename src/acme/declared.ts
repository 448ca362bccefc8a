/**
 * ACME accounts declared in `acme.accounts`: what the daemon does about each at start, SIGHUP and
 * POST /v1/reload. The decision is pure (planDeclaredAccounts, table-tested); carrying it out is
 * AcmeService's. A missing account is registered, an existing one at the same directory is left alone
 * but for its contact (RFC 8555 §7.3.2) and local trust; an existing one at another directory is
 * refused, never re-registered; one no longer declared is kept (versions may still reference it).
 */
import { readFile } from 'node:fs/promises';
import type { AuditRecorder } from '../audit/audit-log.js';
import { audited, type AuditedOperation } from '../audit/audited.js';
import type { AcmeAccountConfig } from '../config/schema.js';
import { AcmeError, ConfigError } from '../core/errors.js';
import { contactOf, type AcmeAccountRecord, type RegisterAccountInput } from './accounts.js';
import { resolveDirectoryUrl } from './directory.js';
import { parseSecretRef, resolveSecret } from '../deploy/secret-ref.js';

/** A declared account with its references resolved, as the plan compares it with the store. */
export interface DesiredAccount {
  readonly name: string;
  readonly directoryUrl: string;
  readonly contact: readonly string[];
  /** The caFile's PEM; undefined: the system's roots. */
  readonly caPem: string | undefined;
}

export type AccountDecision =
  | { readonly kind: 'register'; readonly name: string }
  | { readonly kind: 'unchanged'; readonly name: string }
  | {
      readonly kind: 'update';
      readonly name: string;
      /** Tell the CA the new contact list (§7.3.2). */
      readonly contact?: readonly string[];
      /** New trust for the directory's HTTPS; null: back to the system's roots. */
      readonly caPem?: string | null;
      /** An account made over the API that configuration now declares. */
      readonly adopt?: true;
    }
  | { readonly kind: 'refused'; readonly name: string; readonly message: string };

export interface AccountPlan {
  readonly decisions: AccountDecision[];
  /** Accounts registered from configuration that it no longer declares: kept, not deactivated. */
  readonly undeclared: string[];
}

const sameList = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Pure: which declared accounts to register, update, leave or refuse, given the stored ones. `declared`
 * names every configured account, including those whose desired state could not be resolved this time
 * (a caFile unreadable for a moment): those are neither planned nor taken for undeclared.
 */
export function planDeclaredAccounts(
  desired: readonly DesiredAccount[],
  existing: readonly AcmeAccountRecord[],
  declared: readonly string[] = desired.map((d) => d.name),
): AccountPlan {
  const stored = new Map(existing.map((r) => [r.id, r]));
  const decisions = desired.map((d): AccountDecision => {
    const current = stored.get(d.name);
    if (current === undefined) return { kind: 'register', name: d.name };
    if (current.status !== 'valid') {
      return {
        kind: 'refused',
        name: d.name,
        message: `ACME account "${d.name}" is deactivated and cannot be used again: declare the account under a new name`,
      };
    }
    if (current.directoryUrl !== d.directoryUrl) {
      return {
        kind: 'refused',
        name: d.name,
        message:
          `ACME account "${d.name}" is registered at ${current.directoryUrl}, but configuration declares it at ` +
          `${d.directoryUrl}; an existing account is never re-registered: declare the new directory under a new name`,
      };
    }
    const contact = sameList(current.contact, d.contact) ? undefined : d.contact;
    const caPem = current.caPem === d.caPem ? undefined : (d.caPem ?? null);
    const adopt = current.declared !== true;
    if (contact === undefined && caPem === undefined && !adopt) return { kind: 'unchanged', name: d.name };
    return {
      kind: 'update',
      name: d.name,
      ...(contact !== undefined ? { contact } : {}),
      ...(caPem !== undefined ? { caPem } : {}),
      ...(adopt ? { adopt: true as const } : {}),
    };
  });
  const names = new Set(declared);
  const undeclared = existing.filter((r) => r.declared === true && !names.has(r.id)).map((r) => r.id);
  return { decisions, undeclared };
}

/** Where `acme.accounts[i]` is, for messages. */
export const fieldOf = (index: number, key?: string) => `acme.accounts[${index}]${key ? `.${key}` : ''}`;

/**
 * Configuration problems the schema cannot see (an alias unknown to acme/): named by field, so the
 * daemon refuses to start (or to reload) with CONFIG_INVALID as for any other bad field.
 */
export function checkDeclaredAccounts(
  accounts: readonly AcmeAccountConfig[],
): Array<{ path: string; message: string }> {
  return accounts.flatMap((a, i) => {
    try {
      resolveDirectoryUrl(a.directory);
      return [];
    } catch (err) {
      return [{ path: fieldOf(i, 'directory'), message: (err as Error).message }];
    }
  });
}

/** The desired state of `acme.accounts[index]`: directory resolved, caFile read. */
export async function resolveDesired(account: AcmeAccountConfig, index: number): Promise<DesiredAccount> {
  return {
    name: account.name,
    directoryUrl: resolveDirectoryUrl(account.directory).url,
    contact: contactOf(account.email),
    caPem:
      account.caFile === undefined
        ? undefined
        : await readConfigFile(account.caFile, fieldOf(index, 'caFile')),
  };
}

/**
 * What AcmeAccounts.register gets for a declared account; the EAB HMAC key is read only now. `desired`:
 * the account's resolved state when the caller has it (a reconcile), so its caFile is not read twice.
 */
export async function registerInput(
  account: AcmeAccountConfig,
  index: number,
  env: NodeJS.ProcessEnv,
  desired?: DesiredAccount,
): Promise<RegisterAccountInput> {
  const { caPem } = desired ?? (await resolveDesired(account, index));
  const hmacKey =
    account.eab === undefined
      ? undefined
      : await resolveHmac(account.eab.hmac, fieldOf(index, 'eab.hmac'), env);
  return {
    name: account.name,
    directory: account.directory,
    email: account.email,
    agreeTos: account.termsOfServiceAgreed,
    declared: true,
    ...(caPem !== undefined ? { caPem } : {}),
    ...(account.eab && hmacKey !== undefined ? { eab: { kid: account.eab.kid, hmacKey } } : {}),
  };
}

async function readConfigFile(path: string, field: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      'CONFIG_UNREADABLE',
      `${field}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      { cause: err, details: { field, file: path } },
    );
  }
}

/** `env:VARIABLE` or `file:/path` (the schema admits nothing else); the key itself is never echoed. */
async function resolveHmac(ref: string, field: string, env: NodeJS.ProcessEnv): Promise<string> {
  const missing = (described: string) =>
    new ConfigError('CONFIG_INVALID', `${field}: ${described} is not set, unreadable or empty`, {
      details: { field, ref: described },
    });
  const key = (await resolveSecret(parseSecretRef(ref, field), env, missing)).toString('utf8').trim();
  if (key === '') throw missing(ref);
  return key;
}

/** audit/audited.ts, or just the change without a recorder (unit tests of the service). */
export function auditedChange<T>(
  audit: AuditRecorder | undefined,
  what: AuditedOperation,
  change: () => Promise<T>,
): Promise<T> {
  return audit === undefined ? change() : audited(audit, what, change);
}

/** Why an issue for a declared account cannot go ahead yet; retryable, so the lifecycle backs off. */
export function notRegisteredYet(name: string, cause: unknown): AcmeError {
  const inner = cause as { code?: string; message?: string };
  return new AcmeError(
    'ACME_ACCOUNT_NOT_FOUND',
    `ACME account "${name}" is declared in acme.accounts but not registered yet: ${inner.message ?? String(cause)}`,
    { cause, retryable: true, details: { account: name, cause: inner.code ?? 'INTERNAL' } },
  );
}
