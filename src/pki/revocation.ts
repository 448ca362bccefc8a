/** Revocation reasons (RFC 5280 §5.3.1 CRLReason), shared by CRLs and OCSP (RFC 6960 §4.2.1). */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  // 7 is not used
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export type RevocationReason = keyof typeof REVOCATION_REASONS;

const BY_CODE: ReadonlyMap<number, RevocationReason> = new Map(
  Object.entries(REVOCATION_REASONS).map(([k, v]) => [v, k as RevocationReason]),
);

export function reasonFromCode(code: number): RevocationReason | undefined {
  return BY_CODE.get(code);
}

export function isRevocationReason(value: string): value is RevocationReason {
  return Object.hasOwn(REVOCATION_REASONS, value);
}
