import type { TokenId } from '../core/ids.js';
import type { Role } from './roles.js';

/** Who is calling, once authenticated. A union so mTLS clients (kind 'mtls') can join without changing callers. */
export type Principal = TokenPrincipal;

export interface TokenPrincipal {
  readonly kind: 'token';
  readonly tokenId: TokenId;
  readonly role: Role;
  /** As granted; the policy applies the role's default when empty (see effectiveScopes). */
  readonly scopes: readonly string[];
}

/** The audit `actor` for a principal: its token id, never the token. */
export function principalActor(principal: Principal): string {
  switch (principal.kind) {
    case 'token':
      return principal.tokenId;
  }
}
