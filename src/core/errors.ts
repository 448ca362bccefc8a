/**
 * The error model: one base class with a stable `code`, a `cause`, a `retryable` flag and safe `details`.
 * Every code is declared once in ERROR_CATALOGUE with its category; the API maps categories to HTTP
 * status and the CLI maps them to exit codes, each in one place. docs/errors.md lists every code and a
 * unit test keeps the two in step. Messages and details never carry secrets.
 */

/** What kind of failure a code is. Edges map these, never individual codes. */
export type ErrorCategory =
  | 'invalid' // the caller sent something wrong: fix the input
  | 'unauthenticated' // no or bad credentials
  | 'forbidden' // credentials fine, not allowed
  | 'not_found'
  | 'conflict' // state prevents it (exists already, in use, locked)
  | 'too_large'
  | 'rate_limited'
  | 'unavailable' // try again later (sealed, not ready, peer down)
  | 'integrity' // data failed an integrity check (tampered, corrupt, wrong key)
  | 'upstream' // a remote peer (ACME CA, webhook) failed
  | 'internal';

interface CatalogueEntry {
  readonly category: ErrorCategory;
  readonly retryable: boolean;
  readonly summary: string;
}

function entry(category: ErrorCategory, summary: string, retryable = false): CatalogueEntry {
  return { category, retryable, summary };
}

export const ERROR_CATALOGUE = {
  // core
  INTERNAL: entry('internal', 'An unexpected internal failure; the cause is logged.'),
  INVALID_ARGUMENT: entry('invalid', 'An argument or field is malformed.'),
  DURATION_INVALID: entry('invalid', 'A duration is not of the form 90d, 12h, 30m, 45s or ISO-8601.'),
  // config
  CONFIG_INVALID: entry('invalid', 'The configuration failed validation; every bad field is listed.'),
  CONFIG_UNREADABLE: entry('invalid', 'The configuration file could not be read or parsed.'),
  // keys
  KEY_TYPE_UNSUPPORTED: entry('invalid', 'The key type is not one keywright supports.'),
  KEY_GENERATION_FAILED: entry('internal', 'Generating a key pair failed.'),
  KEY_INVALID: entry('invalid', 'A key could not be parsed or does not match what it should.'),
  KEK_MISSING: entry('unavailable', 'No key-encryption key is available: the daemon is sealed.'),
  KEK_INVALID: entry(
    'invalid',
    'The key-encryption key source is malformed (length, encoding, permissions).',
  ),
  KEK_WRONG: entry('integrity', 'The key-encryption key does not open this data directory.'),
  KEK_ROTATION_FAILED: entry('internal', 'Rotating the key-encryption key failed; nothing was lost.'),
  KEK_EXISTS: entry(
    'conflict',
    'A key-encryption key is already set up for this data directory (kek.json exists).',
  ),
  SEAL_INTEGRITY: entry('integrity', 'A sealed blob failed authentication: wrong key, altered, or moved.'),
  SEAL_FORMAT: entry('integrity', 'A sealed blob has an unknown version or malformed fields.'),
  // store
  STORE_NOT_FOUND: entry('not_found', 'The record does not exist.'),
  STORE_CONFLICT: entry('conflict', 'The record exists already or was changed concurrently.'),
  STORE_LOCKED: entry('conflict', 'The data directory is in use by another process.'),
  STORE_CORRUPT: entry('integrity', 'A store file cannot be parsed; it was left untouched.'),
  STORE_IO: entry('unavailable', 'Reading or writing the store failed.', true),
  STORE_MIGRATION: entry('internal', 'A schema migration failed or the store is newer than this keywright.'),
  STORE_CLOSED: entry('unavailable', 'The store is closed.'),
  // audit
  AUDIT_WRITE_FAILED: entry(
    'unavailable',
    'The audit log could not be written; the operation was refused.',
    true,
  ),
  AUDIT_INTEGRITY: entry(
    'integrity',
    'The audit log chain is broken: an entry was edited, removed or reordered.',
  ),
  // access
  AUTH_REQUIRED: entry('unauthenticated', 'The request needs a bearer token or client certificate.'),
  AUTH_INVALID: entry('unauthenticated', 'The token is unknown, malformed, expired or revoked.'),
  AUTH_CERT_INVALID: entry(
    'unauthenticated',
    'The client certificate is expired, revoked, not from the internal CA, or not for client authentication.',
  ),
  ACCESS_DENIED: entry('forbidden', "The caller's role or scope does not allow this."),
  TOKEN_NOT_FOUND: entry('not_found', 'No token has this id.'),
  // api
  API_NOT_FOUND: entry('not_found', 'No such route.'),
  API_BAD_REQUEST: entry('invalid', 'The request body, query or parameters are invalid.'),
  API_BODY_TOO_LARGE: entry('too_large', 'The request body exceeds the size limit.'),
  API_RATE_LIMITED: entry('rate_limited', 'Too many requests; retry after the given time.', true),
  API_UNSUPPORTED_MEDIA: entry('invalid', 'The request content type is not supported.'),
  DAEMON_SEALED: entry('unavailable', 'The daemon is sealed: its key-encryption key is not loaded.', true),
  DAEMON_UNREACHABLE: entry('unavailable', 'The daemon could not be reached.', true),
  DAEMON_NOT_READY: entry('unavailable', 'The daemon runs but cannot serve yet; the detail says why.', true),
  DAEMON_NOT_INITIALIZED: entry(
    'invalid',
    'The data directory has not been initialized: run keywright init.',
  ),
  DAEMON_ALREADY_INITIALIZED: entry('conflict', 'The data directory is already initialized.'),
  BACKUP_INVALID: entry(
    'integrity',
    'A backup file is damaged, truncated, edited or not a keywright backup; nothing was written.',
  ),
  BACKUP_TARGET_EXISTS: entry(
    'conflict',
    'The backup file or the restore data directory exists; --force replaces it (a data directory is kept aside).',
  ),
  // pki / ca
  PKI_PARSE: entry('invalid', 'A PEM or DER object could not be parsed.'),
  CSR_INVALID: entry('invalid', 'The CSR is malformed or its signature does not verify.'),
  CA_NOT_FOUND: entry('not_found', 'No CA has this name.'),
  CA_EXISTS: entry('conflict', 'A CA with this name exists already.'),
  CA_KEY_UNAVAILABLE: entry('conflict', 'The CA signing key is not in the store (offline root).'),
  PROFILE_NOT_FOUND: entry('not_found', 'The CA has no profile of this name.'),
  POLICY_VIOLATION: entry('forbidden', 'The request asks for something the profile does not allow.'),
  LINT_FAILED: entry('invalid', 'The to-be-signed certificate failed a lint rule; nothing was signed.'),
  CERT_NOT_FOUND: entry('not_found', 'No certificate or version matches.'),
  CERT_EXISTS: entry('conflict', 'A certificate of this name exists already.'),
  CERT_KEY_STATE: entry(
    'conflict',
    'The key is not in a state that allows this (e.g. restore after its destruction).',
  ),
  REVOCATION_INVALID: entry('invalid', 'The revocation request is invalid (reason, serial, state).'),
  // issuers, acme
  ISSUER_NOT_FOUND: entry('not_found', 'The issuer reference names no CA or ACME account.'),
  ISSUER_FAILED: entry('upstream', 'The issuer failed to issue.', true),
  ACME_ERROR: entry('upstream', 'The ACME server returned a problem.', true),
  ACME_ACCOUNT_NOT_FOUND: entry('not_found', 'No ACME account has this name.'),
  ACME_ACCOUNT_EXISTS: entry('conflict', 'An ACME account with this name exists already.'),
  ACME_ACCOUNT_DEACTIVATED: entry('conflict', 'The ACME account is deactivated; register a new one.'),
  ACME_DIRECTORY_UNREACHABLE: entry(
    'upstream',
    'The ACME directory could not be fetched: unreachable, TLS not trusted, or not an ACME directory.',
    true,
  ),
  ACME_CHALLENGE_FAILED: entry('upstream', 'The ACME server could not validate a challenge.', true),
  ACME_SOLVER_FAILED: entry(
    'unavailable',
    'A challenge solver failed: hook exit or timeout, port in use, or no solver for an identifier.',
    true,
  ),
  ACME_PROFILE_UNKNOWN: entry('invalid', 'The ACME directory does not offer the requested profile.'),
  // lifecycle, deploy, vpn
  DEPLOY_FAILED: entry('upstream', 'A deploy target failed.', true),
  DEPLOY_TARGET_INVALID: entry(
    'invalid',
    'A deploy target is misconfigured: a path outside the allowed directories, a bad name or secret reference.',
  ),
  VPN_NOT_FOUND: entry('not_found', 'No such VPN network or peer.'),
  VPN_CONFLICT: entry('conflict', 'The VPN network, peer or address exists already or overlaps.'),
  VPN_POOL_EXHAUSTED: entry('conflict', 'The network has no free address left.'),
  // agent
  AGENT_OUTPUT_UNWRITABLE: entry(
    'invalid',
    "The agent's output directory is missing or not writable; nothing was written.",
  ),
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface AppErrorOptions {
  readonly cause?: unknown;
  /** Overrides the catalogue default (e.g. a rate limit with a known Retry-After). */
  readonly retryable?: boolean;
  /** Safe, structured context: field paths, names, ids. Never secrets. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export class AppError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: C, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? ERROR_CATALOGUE[code].retryable;
    this.details = options.details ?? {};
  }

  get category(): ErrorCategory {
    return ERROR_CATALOGUE[this.code].category;
  }
}

/** Is `err` an AppError, optionally with one of the given codes? */
export function isAppError<C extends ErrorCode>(err: unknown, ...codes: C[]): err is AppError<C> {
  if (!(err instanceof AppError)) return false;
  const code: string = (err as AppError).code;
  return codes.length === 0 || (codes as string[]).includes(code);
}

/** Wraps anything thrown into an AppError once; AppErrors pass through unchanged. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err as AppError;
  return new AppError('INTERNAL', 'internal error', { cause: err });
}

// One subclass per module, each limited to its own codes, so a throw site reads as what it is.
type CodesOf<P extends string> = Extract<ErrorCode, `${P}${string}`>;
export class ConfigError extends AppError<CodesOf<'CONFIG_'>> {}
export class KeyError extends AppError<CodesOf<'KEY_'> | CodesOf<'KEK_'>> {}
export class SealError extends AppError<CodesOf<'SEAL_'> | CodesOf<'KEK_'>> {}
export class StoreError extends AppError<CodesOf<'STORE_'>> {}
export class AuditError extends AppError<CodesOf<'AUDIT_'>> {}
export class AccessError extends AppError<CodesOf<'AUTH_'> | CodesOf<'ACCESS_'> | CodesOf<'TOKEN_'>> {}
export class ApiError extends AppError<CodesOf<'API_'> | CodesOf<'DAEMON_'>> {}
export class PkiError extends AppError<CodesOf<'PKI_'> | CodesOf<'CSR_'>> {}
export class CaError extends AppError<
  | CodesOf<'CA_'>
  | CodesOf<'PROFILE_'>
  | CodesOf<'POLICY_'>
  | CodesOf<'LINT_'>
  | CodesOf<'CERT_'>
  | CodesOf<'REVOCATION_'>
  | CodesOf<'CSR_'>
> {}
export class IssuerError extends AppError<CodesOf<'ISSUER_'>> {}
export class AcmeError extends AppError<CodesOf<'ACME_'>> {}
export class DeployError extends AppError<CodesOf<'DEPLOY_'>> {}
export class VpnError extends AppError<CodesOf<'VPN_'>> {}
export class ValidationError extends AppError<'INVALID_ARGUMENT' | 'DURATION_INVALID'> {}
