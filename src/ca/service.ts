/**
 * The internal CAs of a running (unsealed) daemon: one InternalCaIssuer per CA whose key is in the store,
 * registered as `ca:<name>` at once when a CA is created or imported; one CRL publisher and one OCSP
 * responder per CA; and the management operations (create, import, sign a CSR, revoke by serial, export
 * and disable a key). Every operation that makes, brings in, hands out or removes a key, and every
 * signature, is audited before the change is committed (fail closed).
 */
import { createHash, type KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { CaError, KeyError, ValidationError, isAppError } from '../core/errors.js';
import { NAME_PATTERN } from '../core/ids.js';
import type { CaProfileConfig } from '../config/schema.js';
import type { Sealer } from '../keys/port.js';
import { generateKeyPair, generateKeyToHandOut, importPrivateKey, keyTypeOf } from '../keys/generate.js';
import type { Store } from '../store/port.js';
import type { AuditRecorder } from '../audit/audit-log.js';
import type { IssueResult, OpContext } from '../issuer/port.js';
import type { IssuerRegistry } from '../issuer/registry.js';
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { derOrPem, decodePemBlocks, encodePem } from '../pki/pem.js';
import { encodeGeneralName, formatGeneralName, parseSanText, type GeneralName } from '../pki/general-name.js';
import { findExtension } from '../pki/extensions.js';
import { formatName } from '../pki/name.js';
import { parseCidr } from '../pki/ip.js';
import { CERT_KEY_TYPES, type CertKeyType } from '../pki/key-spec.js';
import { isRevocationReason, type RevocationReason } from '../pki/revocation.js';
import { CAS_COLLECTION, chainPems, getCa, persistCa, type CaDeps, type CaRecord } from './authority.js';
import { CrlPublisher, CRL_STATE_COLLECTION, type CrlStateRecord } from './crl-publisher.js';
import type { BuiltCrl } from './crl.js';
import { createRoot, createIntermediate } from './hierarchy.js';
import { InternalCaIssuer, type SignedLeaf } from './internal-issuer.js';
import { issuerContext } from './issuer-context.js';
import { LEDGER_COLLECTION, ledgerId, type LedgerRecord } from './ledger.js';
import { createOcspResponder, type OcspResponder, type OcspStatus } from './ocsp.js';
import { profilesForCa, validateProfileConfig } from './profile-config.js';

const DAY = 86_400_000;
export const DEFAULT_ROOT_LIFETIME_MS = 3650 * DAY;
export const DEFAULT_INTERMEDIATE_LIFETIME_MS = 1825 * DAY;
/** Passphrases for exported CA keys: the export is as strong as this. */
export const MIN_EXPORT_PASSPHRASE = 12;

export interface CaServiceOptions {
  readonly store: Store;
  readonly sealer: Sealer;
  readonly audit: AuditRecorder;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Where `ca:<name>` issuers are registered (and unregistered when a key goes offline). */
  readonly registry: IssuerRegistry;
  readonly publicUrl?: string;
  readonly profiles?: readonly CaProfileConfig[];
  readonly crlValidityMs: number;
  readonly crlOfflineValidityMs: number;
  readonly ocspValidityMs: number;
}

export interface CreateCaInput {
  readonly name: string;
  /** An existing CA with its key: the new CA is an intermediate under it. A root otherwise. */
  readonly parent?: string;
  readonly keyType: CertKeyType;
  readonly lifetimeMs?: number;
  /** Intermediates below this one (root: unlimited when absent; intermediate: 0 when absent). */
  readonly pathLen?: number;
  /** Subtrees as text (`DNS:svc.internal`, `IP:10.0.0.0/8`, `email:example.com`, `URI:.example.com`). */
  readonly permitted?: readonly string[];
  readonly excluded?: readonly string[];
  readonly commonName?: string;
  readonly organization?: string;
}

export interface ImportCaInput {
  readonly name: string;
  /** The CA certificate, optionally followed by the certificates above it (PEM). */
  readonly certificatePem: string;
  readonly keyPem: string;
}

export interface SignCsrInput {
  /** PEM or DER. */
  readonly csr: string | Uint8Array;
  readonly profile?: string;
  readonly lifetimeMs?: number;
}

export interface CaView {
  readonly name: string;
  readonly kind: 'root' | 'intermediate';
  readonly parent: string | null;
  readonly origin: string;
  readonly keyType: CertKeyType;
  /** online: the key is sealed in the store and signs; offline: disable-key removed it. */
  readonly keyState: 'online' | 'offline';
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly fingerprint: string;
  readonly pathLen: number | null;
  readonly nameConstraints: { readonly permitted: string[]; readonly excluded: string[] } | null;
  readonly profiles: string[];
  readonly urls: { readonly crl?: string; readonly ocsp?: string; readonly caIssuers?: string } | null;
  readonly crl: { readonly number: string; readonly thisUpdate: string; readonly nextUpdate: string } | null;
  readonly createdAt: string;
  readonly keyDisabledAt: string | null;
}

export interface SignedCsr extends IssueResult {
  readonly names: readonly string[];
  readonly profile: string;
}

export interface IssueWithKeyInput {
  /** DNS names, IP addresses, `email:`/`uri:` names (parseSanText). */
  readonly sans: readonly string[];
  /** Default ec-p256. */
  readonly keyType?: CertKeyType;
  readonly profile?: string;
  readonly lifetimeMs?: number;
}

export interface IssuedWithKey extends SignedCsr {
  readonly keyType: CertKeyType;
  /** PKCS#8 PEM; keywright keeps no copy. */
  readonly privateKeyPem: string;
}

function invalidArgument(field: string, message: string): ValidationError {
  return new ValidationError('INVALID_ARGUMENT', `${field}: ${message}`, { details: { field } });
}

export class CaService {
  readonly #o: CaServiceOptions;
  readonly #issuers = new Map<string, InternalCaIssuer>();
  readonly #publishers = new Map<string, CrlPublisher>();
  readonly #responders = new Map<string, Promise<OcspResponder>>();
  readonly #parsed = new Map<string, ParsedCertificate>();

  constructor(options: CaServiceOptions) {
    this.#o = options;
    validateProfileConfig(options.profiles ?? []);
    for (const ca of options.store.collection<CaRecord>(CAS_COLLECTION).list()) this.#attach(ca);
  }

  /** The live map of online CAs as issuers (callers see CAs added later too). */
  get issuers(): ReadonlyMap<string, InternalCaIssuer> {
    return this.#issuers;
  }

  #attach(ca: CaRecord): void {
    if (ca.keyBlob !== undefined) {
      const issuer = new InternalCaIssuer({
        name: ca.id,
        store: this.#o.store,
        sealer: this.#o.sealer,
        clock: this.#o.clock,
        profiles: profilesForCa(ca.id, this.#o.profiles ?? []),
        ...(this.#o.publicUrl ? { publicUrl: this.#o.publicUrl } : {}),
        onRevoked: (name) => this.#republish(name),
      });
      this.#issuers.set(ca.id, issuer);
      this.#o.registry.register(issuer);
    }
    this.#publishers.set(
      ca.id,
      new CrlPublisher({
        ca: ca.id,
        store: this.#o.store,
        clock: this.#o.clock,
        logger: this.#o.logger,
        validityMs: this.#o.crlValidityMs,
        signer: () => this.issuer(ca.id).signer(),
        revoked: () =>
          this.#o.store
            .collection<LedgerRecord>(LEDGER_COLLECTION)
            .list((r) => r.ca === ca.id && r.revokedAt !== undefined),
      }),
    );
  }

  async #republish(name: string): Promise<void> {
    // the revocation is durable already; a CRL that fails to build now is rebuilt on the next request
    await this.#publishers
      .get(name)
      ?.rebuild()
      .catch((err: unknown) => this.#o.logger.error({ err, ca: name }, 'rebuilding the CRL failed'));
  }

  #record(name: string): CaRecord {
    return getCa(this.#o.store, name);
  }

  #certificate(ca: CaRecord): ParsedCertificate {
    let parsed = this.#parsed.get(ca.id);
    if (parsed === undefined || parsed.serialHex !== ca.serialHex) {
      parsed = parseCertificate(ca.certificatePem);
      this.#parsed.set(ca.id, parsed);
    }
    return parsed;
  }

  /** The issuer of an online CA; CA_NOT_FOUND or CA_KEY_UNAVAILABLE otherwise. */
  issuer(name: string): InternalCaIssuer {
    const issuer = this.#issuers.get(name);
    if (issuer) return issuer;
    const ca = this.#record(name);
    throw new CaError(
      'CA_KEY_UNAVAILABLE',
      `the key of CA ${ca.id} is offline (disable-key); sign with an intermediate instead`,
      { details: { ca: ca.id } },
    );
  }

  list(): CaView[] {
    return this.#o.store
      .collection<CaRecord>(CAS_COLLECTION)
      .list()
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((c) => this.#view(c));
  }

  describe(name: string): CaView {
    return this.#view(this.#record(name));
  }

  #view(ca: CaRecord): CaView {
    const cert = this.#certificate(ca);
    const bc = findExtension(cert.extensions, 'basicConstraints');
    const nc = findExtension(cert.extensions, 'nameConstraints');
    const crl = this.#o.store.collection<CrlStateRecord>(CRL_STATE_COLLECTION).find(ca.id);
    const issuer = this.#issuers.get(ca.id);
    const base = this.#o.publicUrl?.replace(/\/+$/, '');
    const enc = encodeURIComponent(ca.id);
    return {
      name: ca.id,
      kind: ca.kind,
      parent: ca.parent ?? null,
      origin: ca.origin ?? 'init',
      keyType: ca.keyType,
      keyState: ca.keyBlob === undefined ? 'offline' : 'online',
      subject: formatName(cert.subject),
      issuer: formatName(cert.issuer),
      serial: ca.serialHex,
      notBefore: ca.notBefore,
      notAfter: ca.notAfter,
      fingerprint: createHash('sha256').update(cert.der).digest('hex'),
      pathLen: bc?.pathLen ?? null,
      nameConstraints: nc
        ? { permitted: nc.permitted.map(formatGeneralName), excluded: nc.excluded.map(formatGeneralName) }
        : null,
      profiles: Object.keys(issuer?.profiles() ?? profilesForCa(ca.id, this.#o.profiles ?? [])).sort(),
      urls:
        base === undefined
          ? null
          : {
              crl: `${base}/crl/${enc}.crl`,
              ocsp: `${base}/ocsp/${enc}`,
              caIssuers: `${base}/ca/${enc}.crt`,
            },
      crl: crl ? { number: crl.crlNumber, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate } : null,
      createdAt: ca.createdAt,
      keyDisabledAt: ca.keyDisabledAt ?? null,
    };
  }

  /** PEM chain from the CA up to its root (the CA first). */
  chainPem(name: string): string {
    return chainPems(this.#o.store, name, { withRoot: true }).join('');
  }

  /** The CA certificate, DER (AIA caIssuers, RFC 5280 §4.2.2.1). */
  certificateDer(name: string): Buffer {
    return this.#certificate(this.#record(name)).der;
  }

  #deps(ctx: OpContext): CaDeps {
    const { store, sealer, audit, clock } = this.#o;
    return { store, sealer, audit, clock, actor: ctx.actor };
  }

  #assertNewName(name: string): void {
    if (!NAME_PATTERN.test(name)) {
      throw invalidArgument('name', `"${name}": use 1-64 lowercase letters, digits, ".", "_" or "-"`);
    }
    if (this.#o.store.collection<CaRecord>(CAS_COLLECTION).find(name) !== undefined) {
      throw new CaError('CA_EXISTS', `a CA named "${name}" exists already`, { details: { ca: name } });
    }
  }

  /** Creates a root, or an intermediate under `parent`; the key is generated, sealed and audited. */
  async create(input: CreateCaInput, ctx: OpContext): Promise<CaView> {
    this.#assertNewName(input.name);
    if (!(CERT_KEY_TYPES as readonly string[]).includes(input.keyType)) {
      throw invalidArgument('key', `"${input.keyType}" is not one of ${CERT_KEY_TYPES.join(', ')}`);
    }
    const lifetimeMs =
      input.lifetimeMs ??
      (input.parent === undefined ? DEFAULT_ROOT_LIFETIME_MS : DEFAULT_INTERMEDIATE_LIFETIME_MS);
    if (!Number.isSafeInteger(lifetimeMs) || lifetimeMs < 3_600_000 || lifetimeMs > 100 * 365 * DAY) {
      throw invalidArgument('ttl', 'a CA lifetime is between 1 hour and 100 years');
    }
    if (
      input.pathLen !== undefined &&
      (!Number.isInteger(input.pathLen) || input.pathLen < 0 || input.pathLen > 16)
    ) {
      throw invalidArgument('pathLen', 'an integer from 0 to 16');
    }
    const permitted = constraintNames('permitted', input.permitted);
    const excluded = constraintNames('excluded', input.excluded);
    const subject = {
      commonName:
        input.commonName ??
        `keywright ${input.name} ${input.parent === undefined ? 'root' : 'intermediate'} CA`,
      organization: input.organization ?? 'keywright',
    };
    const deps = this.#deps(ctx);
    let record: CaRecord;
    if (input.parent === undefined) {
      if (permitted.length > 0 || excluded.length > 0) {
        throw invalidArgument('permitted', 'name constraints go on an intermediate (give --parent)');
      }
      const { privateKey } = await generateKeyPair(input.keyType);
      const issued = createRoot({
        subject,
        key: privateKey,
        lifetimeMs,
        clock: this.#o.clock,
        ...(input.pathLen !== undefined ? { pathLen: input.pathLen } : {}),
      });
      record = await persistCa(
        deps,
        { id: input.name, kind: 'root', keyType: input.keyType, origin: 'created' },
        issued,
        privateKey,
        'ca.create',
        ctx.requestId,
      );
    } else {
      const parent = this.issuer(input.parent);
      const signer = await parent.signer();
      const { privateKey, publicKey } = await generateKeyPair(input.keyType);
      const urls = parent.urls();
      const issued = createIntermediate({
        issuer: signer,
        subjectPublicKey: publicKey,
        subject,
        lifetimeMs,
        clock: this.#o.clock,
        ...(input.pathLen !== undefined ? { pathLen: input.pathLen } : {}),
        ...(permitted.length > 0 || excluded.length > 0 ? { nameConstraints: { permitted, excluded } } : {}),
        ...(urls ? { urls } : {}),
      });
      record = await persistCa(
        deps,
        {
          id: input.name,
          kind: 'intermediate',
          parent: parent.name,
          keyType: input.keyType,
          origin: 'created',
        },
        issued,
        privateKey,
        'ca.create',
        ctx.requestId,
      );
    }
    this.#attach(record);
    return this.#view(record);
  }

  /**
   * Imports an existing CA: its certificate (optionally followed by the certificates above it) and its
   * key, which is sealed at once; the PEM is not kept anywhere else. Everything is checked before the
   * audit entry and the commit, so a refused import stores nothing.
   */
  async importCa(input: ImportCaInput, ctx: OpContext): Promise<CaView> {
    this.#assertNewName(input.name);
    const ders = decodePemBlocks(input.certificatePem, 'CERTIFICATE', 'certificate');
    const certs = ders.map((d, i) => parseCertificate(d, i === 0 ? 'certificate' : `certificate ${i + 1}`));
    const cert = certs[0]!;
    const key = importPrivateKey(input.keyPem);
    const keyType = keyTypeOf(key);
    if (!(CERT_KEY_TYPES as readonly string[]).includes(keyType)) {
      throw new KeyError('KEY_TYPE_UNSUPPORTED', `a ${keyType} key cannot sign certificates`, {
        details: { keyType },
      });
    }
    const ctxOf = (() => {
      try {
        return issuerContext({ certificate: cert, key });
      } catch (err) {
        if (isAppError(err, 'KEY_INVALID')) {
          throw new KeyError(
            'KEY_INVALID',
            "the key does not match the certificate: its public key is not the certificate's; nothing was stored",
            { details: { serial: cert.serialHex } },
          );
        }
        throw err;
      }
    })();
    if (!ctxOf.isCa || !ctxOf.keyCertSign) {
      throw invalidArgument('certificate', 'not a CA certificate (BasicConstraints CA:TRUE and keyCertSign)');
    }
    if (!ctxOf.crlSign) {
      throw invalidArgument(
        'certificate',
        'the CA certificate does not allow cRLSign: keywright publishes a CRL for every CA',
      );
    }
    const now = this.#o.clock.nowMs();
    if (cert.notAfter.getTime() <= now || cert.notBefore.getTime() > now + 300_000) {
      throw invalidArgument(
        'certificate',
        `the certificate is not valid now (${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()})`,
      );
    }
    const selfSigned = cert.selfIssued && cert.verifySignature(cert.publicKey);
    let parent: string | undefined;
    let externalChainPem: string[] | undefined;
    if (!selfSigned) {
      parent = this.#o.store
        .collection<CaRecord>(CAS_COLLECTION)
        .list()
        .find((c) => {
          const candidate = this.#certificate(c);
          return candidate.subject.der.equals(cert.issuer.der) && cert.verifySignature(candidate.publicKey);
        })?.id;
      if (parent === undefined) {
        if (certs.length < 2) {
          throw invalidArgument(
            'certificate',
            `its issuer (${formatName(cert.issuer)}) is not a keywright CA: import the issuer first, or append the issuer's chain to the certificate file`,
          );
        }
        for (let i = 0; i + 1 < certs.length; i++) {
          const [child, up] = [certs[i]!, certs[i + 1]!];
          if (!child.issuer.der.equals(up.subject.der) || !child.verifySignature(up.publicKey)) {
            throw invalidArgument(
              'certificate',
              `certificate ${i + 2} did not sign certificate ${i + 1}: the chain is broken`,
            );
          }
        }
        externalChainPem = certs.slice(1).map((c) => c.pem);
      }
    }
    const record = await persistCa(
      this.#deps(ctx),
      {
        id: input.name,
        kind: selfSigned ? 'root' : 'intermediate',
        ...(parent !== undefined ? { parent } : {}),
        keyType: keyType as CertKeyType,
        origin: 'imported',
        ...(externalChainPem ? { externalChainPem } : {}),
      },
      { pem: cert.pem, serialHex: cert.serialHex, notBefore: cert.notBefore, notAfter: cert.notAfter },
      key,
      'ca.import',
      ctx.requestId,
    );
    this.#attach(record);
    return this.#view(record);
  }

  /** Signs a CSR under a profile; recorded in the CA's ledger and audited (`ca.sign`) before it is. */
  async sign(name: string, input: SignCsrInput, ctx: OpContext): Promise<SignedCsr> {
    const issuer = this.issuer(name);
    const csrDer = derOrPem(input.csr, 'CERTIFICATE REQUEST', 'csr');
    const audit = this.#leafAudit(name, 'ca.sign', ctx);
    const result = await issuer.signCsr(
      {
        csrDer,
        sans: [],
        ...(input.profile !== undefined ? { profile: input.profile } : {}),
        ...(input.lifetimeMs !== undefined ? { lifetimeMs: input.lifetimeMs } : {}),
      },
      ctx,
      audit.beforeCommit,
    );
    const { names, profile } = audit.signed();
    return { ...result, names, profile };
  }

  /**
   * A fresh key pair and a certificate for it, both handed back once (Vault's pki/issue, CFSSL's
   * newcert): the serial goes to the ledger (CRL, OCSP) and the audit log, the private key nowhere.
   * Use a managed certificate instead when keywright should keep, renew and deploy it.
   */
  async issueWithKey(name: string, input: IssueWithKeyInput, ctx: OpContext): Promise<IssuedWithKey> {
    const issuer = this.issuer(name);
    if (input.sans.length === 0) throw invalidArgument('sans', 'give at least one name');
    const keyType = input.keyType ?? 'ec-p256';
    if (!CERT_KEY_TYPES.includes(keyType))
      throw invalidArgument('key', `one of ${CERT_KEY_TYPES.join(', ')}`);
    for (const san of input.sans) {
      try {
        parseSanText(san);
      } catch (err) {
        throw invalidArgument('sans', `${JSON.stringify(san.slice(0, 100))}: ${(err as Error).message}`);
      }
    }
    const { publicKey, pkcs8Der: der } = await generateKeyToHandOut(keyType);
    const audit = this.#leafAudit(name, 'ca.issue', ctx, { keyType });
    const result = await issuer
      .issueForKey(
        {
          publicKey,
          sans: input.sans,
          ...(input.profile !== undefined ? { profile: input.profile } : {}),
          ...(input.lifetimeMs !== undefined ? { lifetimeMs: input.lifetimeMs } : {}),
        },
        ctx,
        audit.beforeCommit,
      )
      .catch((err: unknown) => {
        der.fill(0);
        throw err;
      });
    try {
      return {
        ...result,
        ...audit.signed(),
        keyType,
        privateKeyPem: encodePem('PRIVATE KEY', der),
      };
    } finally {
      der.fill(0);
    }
  }

  /**
   * The beforeCommit of a bare leaf signing: the audit entry (serial, profile, names, validity, `extra`)
   * is durable before the ledger line; `signed()` then gives the names and profile for the answer.
   */
  #leafAudit(
    name: string,
    action: 'ca.sign' | 'ca.issue',
    ctx: OpContext,
    extra: Readonly<Record<string, string>> = {},
  ): {
    beforeCommit: (leaf: SignedLeaf) => Promise<void>;
    signed: () => { names: string[]; profile: string };
  } {
    let signed: SignedLeaf | undefined;
    return {
      beforeCommit: async (leaf) => {
        signed = leaf;
        await this.#o.audit.append({
          actor: ctx.actor,
          action,
          subject: `ca:${name}`,
          outcome: 'success',
          ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
          details: {
            serial: leaf.serialHex,
            profile: leaf.profile,
            ...extra,
            names: leaf.names.map(formatGeneralName).join(',').slice(0, 1000),
            notAfter: leaf.notAfter.toISOString(),
          },
        });
      },
      signed: () => ({ names: signed!.names.map(formatGeneralName), profile: signed!.profile }),
    };
  }

  /** A ledger entry of the CA by serial; CERT_NOT_FOUND when it never issued it. */
  ledgerEntry(name: string, serialHex: string): LedgerRecord {
    this.#record(name);
    const entry = this.#o.store.collection<LedgerRecord>(LEDGER_COLLECTION).find(ledgerId(name, serialHex));
    if (entry === undefined) {
      throw new CaError('CERT_NOT_FOUND', `CA ${name} never issued serial ${serialHex}`, {
        details: { ca: name, serial: serialHex },
      });
    }
    return entry;
  }

  /**
   * Revokes a serial the CA issued (not a managed certificate's: those go through the certificate
   * service, which marks the version too). Audited; the CRL is rebuilt before this resolves.
   */
  async revoke(
    name: string,
    serialHex: string,
    reason: RevocationReason,
    ctx: OpContext,
  ): Promise<LedgerRecord> {
    if (!/^[0-9a-fA-F:]{1,60}$/.test(serialHex)) throw invalidArgument('serial', 'hexadecimal, e.g. 3f9a0c…');
    if (!isRevocationReason(reason))
      throw invalidArgument('reason', 'not an RFC 5280 reason (RFC 5280 §5.3.1)');
    const entry = this.ledgerEntry(name, serialHex);
    if (entry.revokedAt !== undefined) return entry;
    const issuer = this.issuer(name);
    await this.#o.audit.append({
      actor: ctx.actor,
      action: 'cert.revoke',
      subject: `ca:${name}`,
      outcome: 'success',
      ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
      details: { serial: entry.serialHex, reason },
    });
    await issuer.revoke({ serialHex: entry.serialHex, certificatePem: '', reason }, ctx);
    return this.ledgerEntry(name, serialHex);
  }

  /** The CA key as encrypted PKCS#8 PEM (PBES2, AES-256-CBC). Audited (`key.export`) before it is made. */
  async exportKey(name: string, passphrase: string, ctx: OpContext): Promise<string> {
    if (passphrase.length < MIN_EXPORT_PASSPHRASE) {
      throw invalidArgument('passphrase', `at least ${MIN_EXPORT_PASSPHRASE} characters`);
    }
    const issuer = this.issuer(name);
    const { key } = await issuer.signer();
    await this.#o.audit.append({
      actor: ctx.actor,
      action: 'key.export',
      subject: `ca:${name}`,
      outcome: 'success',
      ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
      details: { format: 'pkcs8-encrypted', cipher: 'aes-256-cbc', keyType: this.#record(name).keyType },
    });
    return exportEncrypted(key, passphrase);
  }

  /**
   * Takes the CA key offline: signs the CA's last CRL (valid `crlOfflineValidityMs`), then removes the
   * sealed key from the store and drops it from memory. The CA stays for chains and its CRL; it signs
   * nothing any more (no new CRL, no OCSP answer), while CAs below it keep issuing.
   */
  async disableKey(name: string, ctx: OpContext): Promise<CaView> {
    const ca = this.#record(name);
    if (ca.keyBlob === undefined) {
      throw new CaError('CA_KEY_UNAVAILABLE', `the key of CA ${name} is offline already`, {
        details: { ca: name },
      });
    }
    const issuer = this.issuer(name);
    await this.#o.audit.append({
      actor: ctx.actor,
      action: 'ca.key.disable',
      subject: `ca:${name}`,
      outcome: 'success',
      ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
      details: { serial: ca.serialHex, keyType: ca.keyType },
    });
    const at = this.#o.clock.now().toISOString();
    await this.#publishers.get(name)!.finalize(this.#o.crlOfflineValidityMs, (tx) => {
      tx.deleteBlob(ca.keyBlob!);
      tx.collection<CaRecord>(CAS_COLLECTION).update(name, (r) => {
        const { keyBlob: _gone, ...rest } = r;
        return { ...rest, keyDisabledAt: at };
      });
    });
    this.#o.registry.unregister(issuer.ref);
    issuer.forgetKey();
    this.#issuers.delete(name);
    this.#responders.delete(name);
    this.#o.logger.info({ ca: name }, 'CA key disabled: removed from the store and from memory');
    return this.describe(name);
  }

  /** The CA's current CRL (built or rebuilt when due). */
  crl(name: string): Promise<BuiltCrl> {
    this.#record(name);
    return this.#publishers.get(name)!.current();
  }

  /** The OCSP responder of an online CA, or undefined for an unknown or offline CA. */
  async ocsp(name: string): Promise<OcspResponder | undefined> {
    const issuer = this.#issuers.get(name);
    if (issuer === undefined) return undefined;
    let responder = this.#responders.get(name);
    if (responder === undefined) {
      responder = issuer.signer().then((signer) =>
        createOcspResponder({
          issuer: signer,
          lookup: (serial) => this.#ocspStatus(name, serial),
          clock: this.#o.clock,
          validityMs: this.#o.ocspValidityMs,
          onError: (err) => this.#o.logger.error({ err, ca: name }, 'OCSP lookup failed'),
        }),
      );
      responder.catch(() => this.#responders.delete(name));
      this.#responders.set(name, responder);
    }
    return responder;
  }

  #ocspStatus(name: string, serialHex: string): OcspStatus {
    const entry = this.#o.store.collection<LedgerRecord>(LEDGER_COLLECTION).find(ledgerId(name, serialHex));
    if (entry === undefined) return { status: 'unknown' };
    if (entry.revokedAt === undefined) return { status: 'good' };
    return {
      status: 'revoked',
      at: new Date(entry.revokedAt),
      ...(entry.reason !== undefined ? { reason: entry.reason } : {}),
    };
  }

  /** Names of the CAs whose CRL should be rebuilt at `now` (the scheduler's CRL sweep). */
  refreshDue(now: Date): string[] {
    return [...this.#publishers.values()].filter((p) => p.refreshDue(now)).map((p) => p.ca);
  }

  /** Rebuilds every due CRL; failures are logged and retried on the next sweep (the scheduler's outcome). */
  async refreshCrls(now: Date): Promise<{ processed: number; failed: number }> {
    let processed = 0;
    let failed = 0;
    for (const name of this.refreshDue(now)) {
      try {
        await this.#publishers.get(name)!.rebuild();
        processed++;
      } catch (err) {
        failed++;
        this.#o.logger.error({ err, ca: name }, 'scheduled CRL rebuild failed');
      }
    }
    return { processed, failed };
  }
}

function exportEncrypted(key: KeyObject, passphrase: string): string {
  return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

/** Name-constraint subtrees from text; INVALID_ARGUMENT naming the entry that is not one. */
function constraintNames(
  field: 'permitted' | 'excluded',
  list: readonly string[] | undefined,
): GeneralName[] {
  return (list ?? []).map((text, i) => {
    const name: GeneralName = parseCidr(text) ? { type: 'ip', value: text } : parseSanText(text);
    try {
      encodeGeneralName(name, 'constraint');
    } catch (err) {
      throw new ValidationError('INVALID_ARGUMENT', `${field}[${i}] "${text}": ${(err as Error).message}`, {
        cause: err,
        details: { field: `${field}.${i}` },
      });
    }
    if (
      name.type === 'dns' &&
      name.value !== '' &&
      !/^\.?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(name.value)
    ) {
      throw invalidArgument(
        `${field}.${i}`,
        `"${text}" is not a DNS subtree such as svc.internal or .internal`,
      );
    }
    return name;
  });
}
