/**
 * The CA ledger: one record per certificate a CA signed (OpenSSL's index.txt, in the store). The CRL and
 * the OCSP responder answer from it, so a serial keywright never recorded is `unknown`, never `good`.
 */
import type { StoredRecord } from '../store/port.js';
import type { RevocationReason } from '../pki/revocation.js';

export const LEDGER_COLLECTION = 'caIssued';

export interface LedgerRecord extends StoredRecord {
  /** `<ca>/<serialHex>` */
  readonly id: string;
  readonly ca: string;
  readonly serialHex: string;
  readonly notAfter: string;
  readonly issuedAt: string;
  readonly names: readonly string[];
  /** What was signed: a leaf (default) or a subordinate CA. */
  readonly kind?: 'leaf' | 'ca';
  readonly revokedAt?: string;
  readonly reason?: RevocationReason;
}

export { normaliseSerial } from '../pki/certificate.js';
import { normaliseSerial } from '../pki/certificate.js';

export const ledgerId = (ca: string, serialHex: string): string => `${ca}/${normaliseSerial(serialHex)}`;
