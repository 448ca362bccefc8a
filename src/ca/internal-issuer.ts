/**
 * The internal CA as an Issuer (`ca:<name>`): signs CSRs under a profile and keeps the CA's ledger of
 * every serial it issued (the CRL and OCSP answer from it). The signing key is unsealed once and kept as
 * a KeyObject while the daemon runs.
 */
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { Sealer } from '../keys/port.js';
import type { Store, StoredRecord } from '../store/port.js';
import type {
  Issuer,
  IssueRequest,
  IssueResult,
  IssuerRef,
  OpContext,
  Revoker,
  RevokeRequest,
} from '../issuer/port.js';
import type { RevocationReason } from '../pki/revocation.js';
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { buildLeafFromCsr } from './issue.js';
import { BUILTIN_PROFILES, type Profile } from './profiles.js';
import { caChain, getCa, loadCaKey } from './authority.js';
import type { IssueUrls } from './sign.js';

export const LEDGER_COLLECTION = 'caIssued';

/** One line of the CA's ledger (OpenSSL's index.txt, in the store). */
export interface LedgerRecord extends StoredRecord {
  /** `<ca>/<serialHex>` */
  readonly id: string;
  readonly ca: string;
  readonly serialHex: string;
  readonly notAfter: string;
  readonly issuedAt: string;
  readonly names: readonly string[];
  readonly revokedAt?: string;
  readonly reason?: RevocationReason;
}

export const ledgerId = (ca: string, serialHex: string): string => `${ca}/${serialHex.toLowerCase()}`;

export interface InternalCaIssuerOptions {
  readonly name: string;
  readonly store: Store;
  readonly sealer: Sealer;
  readonly clock: Clock;
  /** Profiles by name; the built-ins when absent. */
  readonly profiles?: Readonly<Record<string, Profile>>;
  /** Base URL for CRL distribution points and AIA (DESIGN §4 publicUrl); none when unset. */
  readonly publicUrl?: string;
  /** Called after a revocation is durable (the CRL is rebuilt from it). */
  readonly onRevoked?: (ca: string, serialHex: string) => void | Promise<void>;
}

export class InternalCaIssuer implements Issuer, Revoker {
  readonly ref: IssuerRef;
  readonly #o: InternalCaIssuerOptions;
  #signer: { certificate: ParsedCertificate; key: KeyObject } | undefined;

  constructor(options: InternalCaIssuerOptions) {
    this.#o = options;
    this.ref = `ca:${options.name}`;
  }

  /** The CA certificate and its unsealed key, loaded once. */
  async signer(): Promise<{ certificate: ParsedCertificate; key: KeyObject }> {
    if (this.#signer) return this.#signer;
    const ca = getCa(this.#o.store, this.#o.name);
    const key = await loadCaKey(this.#o.store, this.#o.sealer, ca);
    this.#signer = { certificate: parseCertificate(ca.certificatePem), key };
    return this.#signer;
  }

  profile(name: string | undefined): Profile {
    const profiles: Readonly<Record<string, Profile>> = this.#o.profiles ?? BUILTIN_PROFILES;
    const profile = profiles[name ?? 'server'];
    if (profile === undefined) {
      throw new CaError(
        'PROFILE_NOT_FOUND',
        `CA ${this.#o.name} has no profile "${name}"; known: ${Object.keys(profiles).join(', ')}`,
        {
          details: { ca: this.#o.name, profile: name },
        },
      );
    }
    return profile;
  }

  urls(): IssueUrls | undefined {
    const base = this.#o.publicUrl?.replace(/\/+$/, '');
    if (base === undefined) return undefined;
    const ca = encodeURIComponent(this.#o.name);
    return { crl: `${base}/crl/${ca}.crl`, ocsp: `${base}/ocsp/${ca}`, caIssuers: `${base}/ca/${ca}.crt` };
  }

  async issue(request: IssueRequest, ctx: OpContext): Promise<IssueResult> {
    const signer = await this.signer();
    const urls = this.urls();
    const issued = buildLeafFromCsr({
      issuer: signer,
      csr: request.csrDer,
      sans: request.sans,
      profile: this.profile(request.profile),
      ...(request.lifetimeMs !== undefined ? { lifetimeMs: request.lifetimeMs } : {}),
      clock: ctx.clock,
      ...(urls ? { urls } : {}),
    });
    const entry: LedgerRecord = {
      id: ledgerId(this.#o.name, issued.serialHex),
      ca: this.#o.name,
      serialHex: issued.serialHex,
      notAfter: issued.notAfter.toISOString(),
      issuedAt: ctx.clock.now().toISOString(),
      names: issued.names.map((n) => ('value' in n ? n.value : '')),
    };
    await this.#o.store.tx((tx) => tx.collection<LedgerRecord>(LEDGER_COLLECTION).insert(entry));
    const chain = caChain(this.#o.store, this.#o.name).filter((c) => c.kind !== 'root');
    return {
      issuer: this.ref,
      certificatePem: issued.pem,
      chainPem: chain.map((c) => c.certificatePem),
      serialHex: issued.serialHex,
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
    };
  }

  async revoke(request: RevokeRequest, ctx: OpContext): Promise<void> {
    const id = ledgerId(this.#o.name, request.serialHex);
    const at = ctx.clock.now().toISOString();
    await this.#o.store.tx((tx) => {
      const ledger = tx.collection<LedgerRecord>(LEDGER_COLLECTION);
      if (ledger.find(id) === undefined) {
        throw new CaError('CERT_NOT_FOUND', `CA ${this.#o.name} never issued serial ${request.serialHex}`, {
          details: { ca: this.#o.name, serial: request.serialHex },
        });
      }
      ledger.update(id, (r) => (r.revokedAt ? r : { ...r, revokedAt: at, reason: request.reason }));
    });
    await this.#o.onRevoked?.(this.#o.name, request.serialHex);
  }

  /** The ledger entry for a serial (OCSP), or undefined when this CA never issued it. */
  lookup(serialHex: string): LedgerRecord | undefined {
    return this.#o.store
      .collection<LedgerRecord>(LEDGER_COLLECTION)
      .find(ledgerId(this.#o.name, serialHex.replace(/^0+(?=.)/, '')));
  }

  /** Revoked entries (CRL input). */
  revoked(): LedgerRecord[] {
    return this.#o.store
      .collection<LedgerRecord>(LEDGER_COLLECTION)
      .list((r) => r.ca === this.#o.name && r.revokedAt !== undefined);
  }

  get clock(): Clock {
    return this.#o.clock;
  }
}
