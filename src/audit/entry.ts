import { hash } from 'node:crypto';
import { AppError } from '../core/errors.js';

/**
 * The audit entry and its hash. One entry is one JSON line; `hash` is SHA-256 (hex) over the RFC 8785
 * (JCS) canonical JSON of the entry without `hash`. `prev` is inside the hashed content, so each entry
 * commits to the whole history before it. docs/audit.md is the reference.
 */

export type AuditOutcome = 'success' | 'failure' | 'denied';
export const AUDIT_OUTCOMES: readonly AuditOutcome[] = ['success', 'failure', 'denied'];

/** Details are flat and primitive so that nothing structured (a key, a config blob) can slip in. */
export type AuditDetailValue = string | number | boolean | null;
export type AuditDetails = Readonly<Record<string, AuditDetailValue>>;

/** What a caller records. `actor` is a token id, 'system' or 'cli:<command>'. */
export interface AuditInput {
  readonly actor: string;
  readonly action: string;
  readonly subject: string;
  readonly outcome: AuditOutcome;
  readonly requestId?: string;
  readonly details?: AuditDetails;
}

export interface AuditEntry extends AuditInput {
  readonly seq: number;
  /** ISO-8601 UTC with milliseconds. */
  readonly time: string;
  readonly prev: string;
  readonly hash: string;
}

export interface AuditHead {
  /** 0 for an empty log. */
  readonly seq: number;
  readonly hash: string;
}

/** `prev` of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

const ENTRY_KEYS = [
  'seq',
  'time',
  'actor',
  'action',
  'subject',
  'outcome',
  'requestId',
  'details',
  'prev',
  'hash',
] as const;
const ACTION_PATTERN = /^[a-z][a-z0-9-]*(?:\.[a-z][a-z0-9-]*)+$/;
const DETAIL_KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const HASH_PATTERN = /^[0-9a-f]{64}$/;
const TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
// C0, DEL and C1 controls: a subject with a newline or escape sequence would mislead a human reading the log.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
export const AUDIT_LIMITS = {
  actor: 128,
  subject: 512,
  requestId: 128,
  detailKeys: 32,
  detailString: 1024,
} as const;

/**
 * Detail keys that name secrets. A key is split into lowercase words (camelCase, snake_case) and refused
 * when a word is one of these, or when it contains `key` (privateKey, keyMaterial, signingKey), unless
 * its last word says it is only a reference (keyId, tokenId, keyType, secretName …).
 */
const SECRET_WORDS = new Set([
  'token',
  'secret',
  'secrets',
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'psk',
  'pin',
  'kek',
  'dek',
  'key',
  'credential',
  'credentials',
  'seed',
  'mnemonic',
  'plaintext',
  'bearer',
  'authorization',
  'cookie',
  'apikey',
  'privatekey',
  'pem',
  'hmac',
]);
const REFERENCE_SUFFIXES = new Set([
  'id',
  'ids',
  'type',
  'types',
  'kind',
  'ref',
  'name',
  'names',
  'fingerprint',
  'count',
  'alg',
  'algorithm',
  'spec',
  'bits',
  'size',
  'source',
  'version',
  'status',
  'state',
  'usage',
  'expires',
  'expiry',
]);
/** Values that are secrets whatever their key: our own bearer tokens and PEM blocks. */
const SECRET_VALUE = /(?:^|[^A-Za-z0-9_])kw_[A-Za-z0-9_-]{20,}|-----BEGIN /;

function words(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length > 0);
}

/** Detail keys come from code, a small fixed set: each is judged once (bounded in case one is not). */
const judgedKeys = new Map<string, boolean>();

/** Is this details key one that names a secret? Exported for tests and docs. */
export function isSecretDetailKey(key: string): boolean {
  let secret = judgedKeys.get(key);
  if (secret === undefined) {
    secret = judgeDetailKey(key);
    if (judgedKeys.size < 1024) judgedKeys.set(key, secret);
  }
  return secret;
}

function judgeDetailKey(key: string): boolean {
  const parts = words(key);
  const last = parts[parts.length - 1];
  if (parts.length > 1 && last !== undefined && REFERENCE_SUFFIXES.has(last)) return false;
  return parts.some((w) => SECRET_WORDS.has(w));
}

/** A programming error: the caller tried to record something the audit log must never hold. */
function refuse(message: string, details: Record<string, unknown>): never {
  throw new AppError('INTERNAL', `audit: ${message}`, { details });
}

function checkText(field: string, value: unknown, max: number): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || CONTROL_CHARS.test(value)) {
    refuse(`${field} must be a non-empty string of at most ${max} printable characters`, { field });
  }
}

/**
 * Validates what a caller wants to record. Throws AppError INTERNAL (a bug at the call site, never user
 * input) for malformed fields, secret-looking details keys, secret-looking values and non-primitive values.
 * Messages name the key, never the value.
 */
export function validateAuditInput(input: AuditInput): void {
  checkText('actor', input.actor, AUDIT_LIMITS.actor);
  if (typeof input.action !== 'string' || !ACTION_PATTERN.test(input.action)) {
    refuse('action must be dotted lowercase words like "cert.issue"', { field: 'action' });
  }
  checkText('subject', input.subject, AUDIT_LIMITS.subject);
  if (!AUDIT_OUTCOMES.includes(input.outcome))
    refuse('outcome must be success, failure or denied', { field: 'outcome' });
  if (input.requestId !== undefined) checkText('requestId', input.requestId, AUDIT_LIMITS.requestId);
  if (input.details === undefined) return;
  const details: unknown = input.details;
  if (typeof details !== 'object' || details === null || Array.isArray(details)) {
    refuse('details must be a flat object', { field: 'details' });
  }
  const keys = Object.keys(details);
  if (keys.length > AUDIT_LIMITS.detailKeys)
    refuse(`details has more than ${AUDIT_LIMITS.detailKeys} keys`, { field: 'details' });
  for (const key of keys) {
    if (!DETAIL_KEY_PATTERN.test(key))
      refuse(`details key "${key}" is not an identifier`, { field: `details.${key}` });
    if (isSecretDetailKey(key)) {
      refuse(
        `details key "${key}" looks like a secret; audit entries never hold secrets (record an id or fingerprint)`,
        {
          field: `details.${key}`,
        },
      );
    }
    const value = (details as Record<string, unknown>)[key];
    if (!isDetailValue(value)) {
      refuse(`details.${key} must be a string, finite number, boolean or null`, { field: `details.${key}` });
    }
    if (typeof value === 'string') {
      if (value.length > AUDIT_LIMITS.detailString) {
        refuse(`details.${key} is longer than ${AUDIT_LIMITS.detailString} characters`, {
          field: `details.${key}`,
        });
      }
      if (SECRET_VALUE.test(value))
        refuse(`details.${key} holds what looks like a token or PEM block`, { field: `details.${key}` });
    }
  }
}

function isDetailValue(v: unknown): v is AuditDetailValue {
  return (
    v === null ||
    typeof v === 'string' ||
    typeof v === 'boolean' ||
    (typeof v === 'number' && Number.isFinite(v))
  );
}

/**
 * RFC 8785 (JCS) canonical JSON: object members sorted by UTF-16 code units, no whitespace, strings
 * and numbers as ECMAScript JSON.stringify writes them (which is what JCS specifies, §3.2.2). Works on
 * any parsed JSON so the verifier can hash lines it did not write.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value))
        throw new AppError('INTERNAL', 'audit: a number in an entry is not finite');
      return JSON.stringify(value);
    case 'object':
      break;
    case 'bigint':
    case 'function':
    case 'symbol':
    case 'undefined':
      throw new AppError('INTERNAL', `audit: a ${typeof value} is not JSON`);
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  let out = '{';
  for (const key of Object.keys(obj).sort()) {
    const member = obj[key];
    if (member === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(key)}:${canonicalJson(member)}`;
  }
  return `${out}}`;
}

/** SHA-256 hex over the canonical JSON of `entry` without its `hash` member. */
export function entryHash(entry: Readonly<Record<string, unknown>>): string {
  const { hash: _ignored, ...content } = entry;
  return hash('sha256', canonicalJson(content), 'hex');
}

/** Builds the next entry of the chain: fills seq, prev and hash. */
export function sealEntry(input: AuditInput, seq: number, time: string, prev: string): AuditEntry {
  const details = input.details === undefined ? undefined : { ...input.details };
  // The members in JCS order, written directly: the same bytes canonicalJson gives for the entry
  // without its hash (unit test), without sorting keys and walking an object on every append.
  const s = JSON.stringify;
  const canonical =
    `{"action":${s(input.action)},"actor":${s(input.actor)}` +
    (details === undefined ? '' : `,"details":${canonicalJson(details)}`) +
    `,"outcome":${s(input.outcome)},"prev":${s(prev)}` +
    (input.requestId === undefined ? '' : `,"requestId":${s(input.requestId)}`) +
    `,"seq":${s(seq)},"subject":${s(input.subject)},"time":${s(time)}}`;
  return {
    seq,
    time,
    actor: input.actor,
    action: input.action,
    subject: input.subject,
    outcome: input.outcome,
    ...(input.requestId === undefined ? {} : { requestId: input.requestId }),
    ...(details === undefined ? {} : { details }),
    prev,
    hash: hash('sha256', canonical, 'hex'),
  };
}

/** The one line written for an entry: fixed, readable member order, newline-terminated. */
export function serializeEntry(entry: AuditEntry): string {
  const ordered: Record<string, unknown> = {};
  for (const k of ENTRY_KEYS) if (entry[k] !== undefined) ordered[k] = entry[k];
  return `${JSON.stringify(ordered)}\n`;
}

/** Why a parsed object is not a well-formed entry, or undefined when it is one. */
export function entryShapeProblem(obj: Record<string, unknown>): string | undefined {
  for (const k of Object.keys(obj)) {
    if (!(ENTRY_KEYS as readonly string[]).includes(k)) return `unknown field "${k}"`;
  }
  if (!Number.isSafeInteger(obj.seq) || (obj.seq as number) < 1) return 'seq is not a positive integer';
  if (typeof obj.time !== 'string' || !TIME_PATTERN.test(obj.time))
    return 'time is not an ISO-8601 UTC timestamp';
  for (const k of ['actor', 'subject'] as const) {
    if (typeof obj[k] !== 'string' || obj[k] === '') return `${k} is not a non-empty string`;
  }
  if (typeof obj.action !== 'string' || !ACTION_PATTERN.test(obj.action))
    return 'action is not a dotted name';
  if (!AUDIT_OUTCOMES.includes(obj.outcome as AuditOutcome))
    return 'outcome is not success, failure or denied';
  if (obj.requestId !== undefined && typeof obj.requestId !== 'string') return 'requestId is not a string';
  if (obj.details !== undefined) {
    const d = obj.details;
    if (typeof d !== 'object' || d === null || Array.isArray(d)) return 'details is not a flat object';
    if (!Object.values(d).every(isDetailValue)) return 'details holds a non-primitive value';
  }
  if (typeof obj.prev !== 'string' || !HASH_PATTERN.test(obj.prev)) return 'prev is not a SHA-256 hex digest';
  if (typeof obj.hash !== 'string' || !HASH_PATTERN.test(obj.hash)) return 'hash is not a SHA-256 hex digest';
  return undefined;
}
