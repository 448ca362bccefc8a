/**
 * The internal CA as an Issuer (`ca:<name>`): signs CSRs under a profile and keeps the CA's ledger of
 * every serial it issued (the CRL and OCSP answer from it). The signing key is unsealed once and kept as
 * a KeyObject while the daemon runs; `forgetKey()` drops it when the key goes offline.
 */
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { Sealer } from '../keys/port.js';
import type { Store } from '../store/port.js';
import type {
  Issuer,
  IssueRequest,
  IssueResult,
  IssuerRef,
  OpContext,
  Revoker,
  RevokeRequest,
} from '../issuer/port.js';
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { formatGeneralName, type GeneralName } from '../pki/general-name.js';
import { buildLeafCertificate, buildLeafFromCsr } from './issue.js';
import { BUILTIN_PROFILES, type Profile } from './profiles.js';
import { chainPems, getCa, loadCaKey } from './authority.js';
import type { IssuedCertificate, IssueUrls } from './sign.js';
import { LEDGER_COLLECTION, ledgerId, normaliseSerial, type LedgerRecord } from './ledger.js';

export { LEDGER_COLLECTION, ledgerId, type LedgerRecord } from './ledger.js';

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

/** A leaf for a key keywright made: the names are given, nothing is read from a CSR. */
export interface KeyIssueRequest {
  readonly publicKey: KeyObject;
  readonly sans: readonly string[];
  readonly profile?: string;
  readonly lifetimeMs?: number;
}

/** A signed leaf before it is recorded: what `beforeCommit` sees (to audit it with its serial). */
export interface SignedLeaf extends IssuedCertificate {
  readonly names: readonly GeneralName[];
  readonly profile: string;
}

export class InternalCaIssuer implements Issuer, Revoker {
  readonly ref: IssuerRef;
  readonly name: string;
  readonly #o: InternalCaIssuerOptions;
  #signer: { certificate: ParsedCertificate; key: KeyObject } | undefined;
  /** The chain above a CA never changes (its parents are fixed when it is made): read it once. */
  #chain: string[] | undefined;

  constructor(options: InternalCaIssuerOptions) {
    this.#o = options;
    this.name = options.name;
    this.ref = `ca:${options.name}`;
  }

  /** The CA certificate and its unsealed key, loaded once. CA_KEY_UNAVAILABLE when the key is offline. */
  async signer(): Promise<{ certificate: ParsedCertificate; key: KeyObject }> {
    if (this.#signer) return this.#signer;
    const ca = getCa(this.#o.store, this.#o.name);
    const key = await loadCaKey(this.#o.store, this.#o.sealer, ca);
    this.#signer = { certificate: parseCertificate(ca.certificatePem), key };
    return this.#signer;
  }

  /** Drops the cached signing key (disable-key): the next signature needs the sealed blob again. */
  forgetKey(): void {
    this.#signer = undefined;
  }

  profiles(): Readonly<Record<string, Profile>> {
    return this.#o.profiles ?? BUILTIN_PROFILES;
  }

  profile(name: string | undefined): Profile {
    const profiles = this.profiles();
    const profile = Object.hasOwn(profiles, name ?? 'server') ? profiles[name ?? 'server'] : undefined;
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

  issue(request: IssueRequest, ctx: OpContext): Promise<IssueResult> {
    return this.signCsr(request, ctx);
  }

  /**
   * Signs a CSR and records the serial in the ledger. `beforeCommit` runs between signing and recording
   * (the audit entry of a bare CSR signing): if it throws, nothing is recorded and nothing is returned.
   */
  async signCsr(
    request: IssueRequest,
    ctx: OpContext,
    beforeCommit?: (leaf: SignedLeaf) => Promise<void>,
  ): Promise<IssueResult> {
    if (request.ownKey && request.sans.length > 0) {
      return this.issueForKey(
        {
          publicKey: request.ownKey,
          sans: request.sans,
          ...(request.profile !== undefined ? { profile: request.profile } : {}),
          ...(request.lifetimeMs !== undefined ? { lifetimeMs: request.lifetimeMs } : {}),
        },
        ctx,
        beforeCommit,
      );
    }
    return this.#issueAndRecord(request.profile, ctx, beforeCommit, (common) =>
      buildLeafFromCsr({
        ...common,
        csr: request.csrDer,
        ...(request.sans.length > 0 ? { sans: request.sans } : {}),
        ...(request.lifetimeMs !== undefined ? { lifetimeMs: request.lifetimeMs } : {}),
      }),
    );
  }

  /** Certifies a public key keywright made (no CSR, so no proof of possession to check); as signCsr otherwise. */
  async issueForKey(
    request: KeyIssueRequest,
    ctx: OpContext,
    beforeCommit?: (leaf: SignedLeaf) => Promise<void>,
  ): Promise<IssueResult> {
    return this.#issueAndRecord(request.profile, ctx, beforeCommit, (common) =>
      buildLeafCertificate({
        ...common,
        subjectPublicKey: request.publicKey,
        sans: request.sans,
        ...(request.lifetimeMs !== undefined ? { lifetimeMs: request.lifetimeMs } : {}),
      }),
    );
  }

  async #issueAndRecord(
    profileName: string | undefined,
    ctx: OpContext,
    beforeCommit: ((leaf: SignedLeaf) => Promise<void>) | undefined,
    build: (common: {
      issuer: { certificate: ParsedCertificate; key: KeyObject };
      profile: Profile;
      clock: Clock;
      urls?: IssueUrls;
    }) => IssuedCertificate & { readonly names: readonly GeneralName[] },
  ): Promise<IssueResult> {
    const signer = await this.signer();
    const urls = this.urls();
    const profile = this.profile(profileName);
    const issued = build({ issuer: signer, profile, clock: ctx.clock, ...(urls ? { urls } : {}) });
    await beforeCommit?.({ ...issued, profile: profile.name });
    const entry: LedgerRecord = {
      id: ledgerId(this.#o.name, issued.serialHex),
      ca: this.#o.name,
      serialHex: normaliseSerial(issued.serialHex),
      notAfter: issued.notAfter.toISOString(),
      issuedAt: ctx.clock.now().toISOString(),
      names: issued.names.map(formatGeneralName),
      kind: 'leaf',
    };
    await this.#o.store.tx((tx) => tx.collection<LedgerRecord>(LEDGER_COLLECTION).insert(entry));
    return {
      issuer: this.ref,
      certificatePem: issued.pem,
      chainPem: (this.#chain ??= chainPems(this.#o.store, this.#o.name, { withRoot: false })),
      serialHex: issued.serialHex,
      notBefore: issued.notBefore,
      notAfter: issued.notAfter,
    };
  }

  async revoke(request: RevokeRequest, ctx: OpContext): Promise<void> {
    const id = ledgerId(this.#o.name, request.serialHex);
    const at = ctx.clock.now().toISOString();
    if (request.reason === 'removeFromCRL') {
      throw new CaError('REVOCATION_INVALID', 'removeFromCRL belongs in delta CRLs only (RFC 5280 §5.3.1)', {
        details: { ca: this.#o.name, serial: request.serialHex },
      });
    }
    await this.#o.store.tx((tx) => {
      const ledger = tx.collection<LedgerRecord>(LEDGER_COLLECTION);
      if (ledger.find(id) === undefined) {
        throw new CaError('CERT_NOT_FOUND', `CA ${this.#o.name} never issued serial ${request.serialHex}`, {
          details: { ca: this.#o.name, serial: request.serialHex },
        });
      }
      ledger.update(id, (r) => (r.revokedAt ? r : { ...r, revokedAt: at, reason: request.reason }));
    });
    await this.#o.onRevoked?.(this.#o.name, normaliseSerial(request.serialHex));
  }

  /** The ledger entry for a serial (OCSP), or undefined when this CA never issued it. */
  lookup(serialHex: string): LedgerRecord | undefined {
    return this.#o.store.collection<LedgerRecord>(LEDGER_COLLECTION).find(ledgerId(this.#o.name, serialHex));
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
