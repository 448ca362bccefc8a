import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { AccessError, ValidationError } from '../core/errors.js';
import type { TokenId } from '../core/ids.js';
import { newId } from '../core/ids.js';
import type { Store, StoredRecord } from '../store/port.js';
import { authorize } from './policy.js';
import type { Principal, TokenPrincipal } from './principal.js';
import type { Action, Role } from './roles.js';
import { ROLES, isRole } from './roles.js';
import type { Resource } from './scopes.js';
import { validateScopes } from './scopes.js';
import { generateToken, hashToken, isWellFormedToken, sameDigest } from './token-format.js';

/** The stored form of a token: never the token itself, only its SHA-256. */
export interface TokenRecord extends StoredRecord {
  readonly id: TokenId;
  readonly hash: string;
  readonly role: Role;
  readonly scopes: readonly string[];
  readonly description?: string;
  readonly createdAt: string;
  readonly expiresAt?: string;
  readonly revokedAt?: string;
  readonly revokedBy?: string;
  /** The actor that created it: a token id or 'cli:init'. */
  readonly createdBy: string;
  /**
   * Registered recipient for sealed bundles: base64url SPKI DER of an X25519 or RSA public key (public,
   * validated by the API). When set, format=sealed bundles for this token go to this key only.
   */
  readonly sealKey?: string;
}

export interface CreateTokenInput {
  readonly role: Role;
  readonly scopes?: readonly string[];
  readonly ttlMs?: number;
  readonly description?: string;
  readonly createdBy: string;
  readonly sealKey?: string;
}

/** A token generated but not yet stored, so its id can be audited before it exists (fail closed). */
export interface PreparedToken {
  /** The plaintext, to be shown once and never stored or logged. */
  readonly token: string;
  readonly record: TokenRecord;
}

export type TokenStatus = 'active' | 'expired' | 'revoked';

export const TOKENS_COLLECTION = 'tokens';
const MAX_TTL_MS = 100 * 365 * 86_400_000;
const MAX_DESCRIPTION = 200;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** One message for every way a token can be bad, so a caller learns nothing about which it was. */
function invalidToken(): AccessError {
  return new AccessError(
    'AUTH_INVALID',
    'the token is not valid: it is unknown, malformed, expired or revoked',
  );
}

export function tokenStatus(record: TokenRecord, nowMs: number): TokenStatus {
  if (record.revokedAt !== undefined) return 'revoked';
  if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= nowMs) return 'expired';
  return 'active';
}

/**
 * Creates, lists, revokes and authenticates API tokens over the store's `tokens` collection. Tokens are
 * found by the hash of what the caller presents, through an in-memory index rebuilt from the collection,
 * so lookup is one Map access and never compares the secret itself byte by byte.
 */
export class TokenService {
  readonly #store: Store;
  readonly #clock: Clock;
  #byHash: Map<string, TokenId> | undefined;

  constructor(options: { readonly store: Store; readonly clock?: Clock }) {
    this.#store = options.store;
    this.#clock = options.clock ?? systemClock;
  }

  /** Validates the request and generates the token and its record; stores nothing. */
  prepare(input: CreateTokenInput): PreparedToken {
    if (!isRole(input.role)) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `role ${JSON.stringify(input.role)} is not one of ${ROLES.join(', ')}`,
        {
          details: { field: 'role' },
        },
      );
    }
    const scopes = validateScopes(input.scopes ?? []);
    if (input.role === 'admin' && scopes.length > 0) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        'admin tokens cannot be scoped: an admin can mint tokens, so a scope would not bind it; use the operator role with scopes',
        { details: { field: 'scopes' } },
      );
    }
    const nowMs = this.#clock.nowMs();
    if (
      input.ttlMs !== undefined &&
      (!Number.isSafeInteger(input.ttlMs) || input.ttlMs <= 0 || input.ttlMs > MAX_TTL_MS)
    ) {
      throw new ValidationError('INVALID_ARGUMENT', 'ttl must be a positive duration of at most 100 years', {
        details: { field: 'ttl' },
      });
    }
    if (input.description !== undefined) checkText('description', input.description, MAX_DESCRIPTION);
    checkText('createdBy', input.createdBy, 128);
    const token = generateToken();
    const record: TokenRecord = {
      id: newId<TokenId>('tok'),
      hash: hashToken(token),
      role: input.role,
      scopes,
      ...(input.description === undefined ? {} : { description: input.description }),
      createdAt: new Date(nowMs).toISOString(),
      ...(input.ttlMs === undefined ? {} : { expiresAt: new Date(nowMs + input.ttlMs).toISOString() }),
      createdBy: input.createdBy,
      ...(input.sealKey === undefined ? {} : { sealKey: input.sealKey }),
    };
    return { token, record };
  }

  /** Stores a prepared token durably; from then on it authenticates. */
  async commit(prepared: PreparedToken): Promise<TokenRecord> {
    await this.#store.tx((tx) => tx.collection<TokenRecord>(TOKENS_COLLECTION).insert(prepared.record));
    if (this.#byHash === undefined) this.reload();
    else this.#byHash.set(prepared.record.hash, prepared.record.id);
    return this.get(prepared.record.id);
  }

  /** prepare + commit. The returned token is the only copy: show it once. */
  async create(input: CreateTokenInput): Promise<{ token: string; record: TokenRecord }> {
    const prepared = this.prepare(input);
    return { token: prepared.token, record: await this.commit(prepared) };
  }

  /** All tokens, oldest first. Records carry the hash, never the token; strip the hash before showing. */
  list(): TokenRecord[] {
    return this.#tokens()
      .list()
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** Throws AccessError TOKEN_NOT_FOUND. */
  get(id: string): TokenRecord {
    const record = this.#tokens().find(id);
    if (record === undefined) throw notFound(id);
    return record;
  }

  status(record: TokenRecord): TokenStatus {
    return tokenStatus(record, this.#clock.nowMs());
  }

  /** Marks the token revoked; revoking a revoked token changes nothing. Throws TOKEN_NOT_FOUND. */
  async revoke(id: string, by: string): Promise<TokenRecord> {
    checkText('by', by, 128);
    const revokedAt = this.#clock.now().toISOString();
    return this.#store.tx((tx) => {
      const tokens = tx.collection<TokenRecord>(TOKENS_COLLECTION);
      const current = tokens.find(id);
      if (current === undefined) throw notFound(id);
      if (current.revokedAt !== undefined) return current;
      return tokens.update(id, (r) => ({ ...r, revokedAt, revokedBy: by }));
    });
  }

  /**
   * The principal for a presented bearer token. Malformed, unknown, expired and revoked tokens all throw
   * the same AccessError AUTH_INVALID.
   */
  authenticate(bearer: string): TokenPrincipal {
    if (!isWellFormedToken(bearer)) throw invalidToken();
    const hash = hashToken(bearer);
    if (this.#byHash === undefined) this.reload();
    const id = this.#byHash?.get(hash);
    if (id === undefined) throw invalidToken();
    const record = this.#tokens().find(id);
    if (record === undefined || !sameDigest(record.hash, hash) || !isRole(record.role)) throw invalidToken();
    if (tokenStatus(record, this.#clock.nowMs()) !== 'active') throw invalidToken();
    return { kind: 'token', tokenId: record.id, role: record.role, scopes: record.scopes };
  }

  /** The policy decision (policy.ts), here too so a route needs only the token service. */
  authorize(principal: Principal, action: Action, resource?: Resource): void {
    authorize(principal, action, resource);
  }

  #tokens() {
    return this.#store.collection<TokenRecord>(TOKENS_COLLECTION);
  }

  /**
   * Rebuilds the hash index from the collection. Built on first use and kept current by this service's
   * own writes; call it only if something else wrote tokens into the same open store. A miss never
   * triggers a rebuild, so unknown tokens cost no more than known ones.
   */
  reload(): void {
    this.#byHash = new Map(
      this.#tokens()
        .list()
        .map((r) => [r.hash, r.id]),
    );
  }
}

function notFound(id: string): AccessError {
  return new AccessError(
    'TOKEN_NOT_FOUND',
    `no token has id ${JSON.stringify(id.slice(0, 40))}; see keywright token list`,
    {
      details: { id: id.slice(0, 40) },
    },
  );
}

function checkText(field: string, value: unknown, max: number): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || CONTROL_CHARS.test(value)) {
    throw new ValidationError('INVALID_ARGUMENT', `${field} must be 1 to ${max} printable characters`, {
      details: { field },
    });
  }
}
