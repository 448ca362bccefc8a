import { AccessError } from '../core/errors.js';
import type { Principal } from './principal.js';
import type { Action } from './roles.js';
import { roleAllows } from './roles.js';
import type { Resource } from './scopes.js';
import { effectiveScopes, formatResource, scopeMatches } from './scopes.js';

/**
 * The policy decision: the role must allow the action, and when the action touches a named resource,
 * one of the principal's scopes must cover it. A principal whose scopes cover nothing may do nothing.
 * Calls on a collection (list) pass no resource and filter what they return with `inScope`.
 */
export function isAllowed(principal: Principal, action: Action, resource?: Resource): boolean {
  if (!roleAllows(principal.role, action)) return false;
  const scopes = effectiveScopes(principal.role, principal.scopes);
  if (resource === undefined) return scopes.length > 0;
  return scopes.some((scope) => scopeMatches(scope, resource));
}

/** Throws AccessError ACCESS_DENIED naming the role, action and resource (never the token). */
export function authorize(principal: Principal, action: Action, resource?: Resource): void {
  if (isAllowed(principal, action, resource)) return;
  const { role } = principal;
  const target = resource === undefined ? undefined : formatResource(resource);
  const why = !roleAllows(role, action)
    ? `role "${role}" may not ${action}`
    : target === undefined
      ? `role "${role}" may ${action}, but this token's scopes cover nothing`
      : `role "${role}" may ${action}, but not on ${target}: it is outside this token's scopes`;
  throw new AccessError('ACCESS_DENIED', `access denied: ${why}`, {
    details: { role, action, ...(target === undefined ? {} : { resource: target }) },
  });
}

/** Is the resource within the principal's scopes (whatever the action)? For filtering lists. */
export function inScope(principal: Principal, resource: Resource): boolean {
  return effectiveScopes(principal.role, principal.scopes).some((scope) => scopeMatches(scope, resource));
}
