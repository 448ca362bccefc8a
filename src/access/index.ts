export type { Action, Role } from './roles.js';
export { ACTIONS, ROLES, ROLE_ACTIONS, isAction, isRole, roleAllows } from './roles.js';
export type { Resource, ResourceKind } from './scopes.js';
export {
  MAX_SCOPES,
  RESOURCE_KINDS,
  effectiveScopes,
  scopeMatches,
  scopeProblem,
  validateScopes,
} from './scopes.js';
export type { MtlsPrincipal, Principal, TokenPrincipal } from './principal.js';
export { principalActor } from './principal.js';
export { authorize, inScope, isAllowed } from './policy.js';
export { TOKEN_PATTERN, TOKEN_PREFIX, hashToken, isWellFormedToken } from './token-format.js';
export type { CreateTokenInput, PreparedToken, TokenRecord, TokenStatus } from './token-service.js';
export { TOKENS_COLLECTION, TokenService, tokenStatus } from './token-service.js';
