/**
 * mTLS for services: a client certificate from the internal CA authenticates its holder. The HTTPS
 * listener asks for a certificate and never requires one (tokens keep working), and OpenSSL has checked
 * the chain against the CA certificates and the validity period before a request arrives. Here the
 * certificate must also be in the issuing CA's ledger and not revoked (so a CA key that signed outside
 * keywright is not enough), carry clientAuth (RFC 5280 §4.2.1.12), be valid by the daemon's clock, and
 * have a SAN that the configured identity rules map to a role and scopes.
 */
import type { TLSSocket } from 'node:tls';
import type { Clock } from '../../core/clock.js';
import { AccessError, AppError } from '../../core/errors.js';
import type { MtlsPrincipal } from '../../access/principal.js';
import type { Role } from '../../access/roles.js';
import { validateScopes } from '../../access/scopes.js';
import type { Store } from '../../store/port.js';
import { parseCertificate, type ParsedCertificate } from '../../pki/certificate.js';
import { findExtension } from '../../pki/extensions.js';
import { OID } from '../../pki/oids.js';
import { CAS_COLLECTION, type CaRecord } from '../../ca/authority.js';
import { LEDGER_COLLECTION, ledgerId, type LedgerRecord } from '../../ca/internal-issuer.js';

export interface MtlsIdentityRule {
  /** A SAN URI or DNS name; a trailing `*` matches any rest. */
  readonly match: string;
  readonly role: Exclude<Role, 'admin'>;
  readonly scopes: readonly string[];
}

export interface MtlsOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly identities: readonly MtlsIdentityRule[];
}

/** What a certificate proved once per connection; revocation and expiry are still checked per request. */
interface Verified {
  readonly ca: string;
  readonly serialHex: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly identity: string;
  readonly rule: MtlsIdentityRule;
}

/** One message for expired, revoked and foreign: the caller learns no more than that it was refused. */
function refused(reason: string): AccessError {
  return new AccessError(
    'AUTH_CERT_INVALID',
    'the client certificate is not accepted: it is expired, revoked, not from this CA, or not for client authentication',
    { details: { reason } },
  );
}

/** The trust anchors for the listener's client-certificate check: every CA certificate in the store. */
export function clientCaCertificates(store: Store): string[] {
  return store
    .collection<CaRecord>(CAS_COLLECTION)
    .list()
    .map((ca) => ca.certificatePem);
}

/** Validates the rules at start-up: a scope typo must stop the daemon, not deny a service at 3 a.m. */
export function checkIdentityRules(rules: readonly MtlsIdentityRule[]): MtlsIdentityRule[] {
  return rules.map((rule, i) => {
    try {
      return { ...rule, scopes: validateScopes(rule.scopes) };
    } catch (err) {
      throw new AppError('CONFIG_INVALID', `api.mtls.identities[${i}]: ${(err as Error).message}`, {
        details: { issues: [{ path: `api.mtls.identities.${i}.scopes`, message: (err as Error).message }] },
      });
    }
  });
}

export class MtlsAuthenticator {
  readonly #o: MtlsOptions;
  /** A connection keeps its certificate; keep-alive requests need not parse it again. */
  readonly #bySocket = new WeakMap<TLSSocket, Verified>();
  readonly #caCerts = new Map<string, { pem: string; cert: ParsedCertificate }>();

  constructor(options: MtlsOptions) {
    this.#o = options;
  }

  /**
   * The principal for the client certificate on `socket`, or undefined when none was presented.
   * Throws AUTH_CERT_INVALID (401) for expired, revoked or foreign certificates, and ACCESS_DENIED (403)
   * for a genuine certificate that no identity rule maps.
   */
  authenticate(socket: TLSSocket): MtlsPrincipal | undefined {
    let verified = this.#bySocket.get(socket);
    if (verified === undefined) {
      const peer = socket.getPeerCertificate();
      if (peer === null || peer.raw === undefined) return undefined;
      // OpenSSL's verdict on chain and validity (requestCert without rejectUnauthorized).
      if (!socket.authorized) throw refused(String(socket.authorizationError ?? 'unverified'));
      verified = this.#verify(parseCertificate(peer.raw, 'client certificate'));
      this.#bySocket.set(socket, verified);
    }
    const now = this.#o.clock.nowMs();
    if (now < verified.notBefore || now >= verified.notAfter) throw refused('expired');
    const entry = this.#o.store
      .collection<LedgerRecord>(LEDGER_COLLECTION)
      .find(ledgerId(verified.ca, verified.serialHex));
    if (entry === undefined) throw refused('not-issued-here');
    if (entry.revokedAt !== undefined) throw refused('revoked');
    return {
      kind: 'mtls',
      identity: verified.identity,
      serialHex: verified.serialHex,
      ca: verified.ca,
      role: verified.rule.role,
      scopes: verified.rule.scopes,
    };
  }

  #verify(cert: ParsedCertificate): Verified {
    const eku = findExtension(cert.extensions, 'extKeyUsage');
    if (eku !== undefined && !eku.purposes.includes(OID.clientAuth)) throw refused('not-client-auth');
    const ca = this.#issuingCa(cert);
    if (ca === undefined) throw refused('foreign');
    const names = findExtension(cert.extensions, 'subjectAltName')?.names ?? [];
    const candidates = [
      ...names.filter((n) => n.type === 'uri').map((n) => n.value),
      ...names.filter((n) => n.type === 'dns').map((n) => n.value.toLowerCase()),
    ];
    for (const rule of this.#o.identities) {
      const identity = candidates.find((c) => ruleMatches(rule.match, c));
      if (identity !== undefined) {
        return {
          ca,
          serialHex: cert.serialHex,
          notBefore: cert.notBefore.getTime(),
          notAfter: cert.notAfter.getTime(),
          identity,
          rule,
        };
      }
    }
    throw new AccessError(
      'ACCESS_DENIED',
      'access denied: the client certificate is valid, but none of its names is mapped in api.mtls.identities',
      { details: { names: candidates.slice(0, 8).map((c) => c.slice(0, 120)) } },
    );
  }

  /** The internal CA whose key signed `cert` (checked by signature, not by name alone). */
  #issuingCa(cert: ParsedCertificate): string | undefined {
    for (const record of this.#o.store.collection<CaRecord>(CAS_COLLECTION).list()) {
      let cached = this.#caCerts.get(record.id);
      if (cached?.pem !== record.certificatePem) {
        cached = {
          pem: record.certificatePem,
          cert: parseCertificate(record.certificatePem, 'CA certificate'),
        };
        this.#caCerts.set(record.id, cached);
      }
      if (cached.cert.subject.der.equals(cert.issuer.der) && cert.verifySignature(cached.cert.publicKey)) {
        return record.id;
      }
    }
    return undefined;
  }
}

function ruleMatches(pattern: string, name: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}
