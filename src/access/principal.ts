import type { TokenId } from '../core/ids.js';
import type { Role } from './roles.js';

/** Who is calling, once authenticated: a bearer token, or a client certificate from the internal CA. */
export type Principal = TokenPrincipal | MtlsPrincipal;

export interface TokenPrincipal {
  readonly kind: 'token';
  readonly tokenId: TokenId;
  readonly role: Role;
  /** As granted; the policy applies the role's default when empty (see effectiveScopes). */
  readonly scopes: readonly string[];
}

/** A service authenticated by mTLS; its role and scopes come from the identity mapping in config. */
export interface MtlsPrincipal {
  readonly kind: 'mtls';
  /** The SAN the mapping matched: a URI (`spiffe://…`) or a DNS name. */
  readonly identity: string;
  /** The client certificate's serial (lowercase hex) and issuing CA, as in the CA's ledger. */
  readonly serialHex: string;
  readonly ca: string;
  readonly role: Role;
  readonly scopes: readonly string[];
}

/** The audit `actor` for a principal: its token id (never the token), or `mtls:<identity>`. */
export function principalActor(principal: Principal): string {
  switch (principal.kind) {
    case 'token':
      return principal.tokenId;
    case 'mtls':
      return `mtls:${principal.identity}`;
  }
}
