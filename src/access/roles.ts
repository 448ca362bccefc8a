/**
 * Roles and the actions each may perform: one table, read by the policy and by docs/access.md. Scopes
 * (scopes.ts) then narrow which named resources an allowed action may touch.
 */

export const ROLES = ['admin', 'operator', 'issuer', 'reader', 'service'] as const;
export type Role = (typeof ROLES)[number];

export const ACTIONS = [
  'token.manage', // create, list, revoke tokens
  'audit.read',
  'status.read',
  'ca.read', // metadata and public chains
  'ca.manage', // create, import, change CAs
  'cert.read', // metadata, versions, public certificates, deploy state of a certificate
  'cert.issue', // issue, renew, sign a CSR (what it gets back holds no private key)
  'cert.manage', // create, change, delete managed certificates
  'cert.revoke',
  'key.export', // anything carrying a private key: bundle pull (pem/json with key, p12)
  'deploy.read',
  'deploy.manage', // retry, change targets
  'acme.read',
  'acme.manage', // register accounts
  'vpn.read', // networks and peers, public keys only
  'vpn.manage', // networks, peers, rotation
  'vpn.config.export', // a peer's wg-quick config: it holds the peer's private key and PSKs
  'backup.create', // a backup of the data dir: sealed keys and the audit log (useless without the KEK)
] as const;
export type Action = (typeof ACTIONS)[number];

const OPERATOR: readonly Action[] = [
  'audit.read',
  'status.read',
  'ca.read',
  'ca.manage',
  'cert.read',
  'cert.issue',
  'cert.manage',
  'cert.revoke',
  'deploy.read',
  'deploy.manage',
  'acme.read',
  'acme.manage',
  'vpn.read',
  'vpn.manage',
];

/**
 * Role → actions. admin: everything. operator: runs the PKI, never sees a private key, never touches
 * tokens. issuer: issues and renews within its scopes. reader: metadata, never keys, not the audit log.
 * service: pulls the bundles and VPN configs its scopes name, nothing else.
 */
export const ROLE_ACTIONS: Readonly<Record<Role, readonly Action[]>> = {
  admin: ACTIONS,
  operator: OPERATOR,
  issuer: ['status.read', 'ca.read', 'cert.read', 'cert.issue'],
  reader: ['status.read', 'ca.read', 'cert.read', 'deploy.read', 'acme.read', 'vpn.read'],
  service: ['key.export', 'vpn.config.export'],
};

const ALLOWED = new Map<Role, ReadonlySet<Action>>(ROLES.map((r) => [r, new Set(ROLE_ACTIONS[r])]));

export function roleAllows(role: Role, action: Action): boolean {
  return ALLOWED.get(role)?.has(action) ?? false;
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export function isAction(value: unknown): value is Action {
  return typeof value === 'string' && (ACTIONS as readonly string[]).includes(value);
}
