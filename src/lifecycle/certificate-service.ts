import { createHash, type KeyObject } from 'node:crypto';
import { publicKeyOf } from '../pki/algorithms.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { CaError, IssuerError, ValidationError, toAppError } from '../core/errors.js';
import { NAME_PATTERN } from '../core/ids.js';
import type { Sealer, SealedBlob, SealContext } from '../keys/port.js';
import { generateKeyPair } from '../keys/generate.js';
import { sealPrivateKey, unsealPrivateKey, unsealPrivateKeyPem } from '../keys/sealed-key.js';
import type { Store } from '../store/port.js';
import { SEALED_BLOB_PREFIX } from '../store/port.js';
import type { AuditRecorder } from '../audit/audit-log.js';
import type { Issuer, IssuerRef, OpContext, RevocationReason } from '../issuer/port.js';
import { canAdviseRenewal, canRevoke } from '../issuer/port.js';
import { buildCsr, parseCsr } from '../pki/csr.js';
import { parseSanText } from '../pki/general-name.js';
import { decodePemBlocks } from '../pki/pem.js';
import { normaliseSerial } from '../pki/certificate.js';
import { renewalTime } from './renewal-time.js';
import { nextAttemptAt } from './backoff.js';
import { planKeyRestore } from './key-destruction.js';
import {
  CERTIFICATES_COLLECTION,
  VERSIONS_COLLECTION,
  chainBlobKey,
  versionId,
  type CertificateRecord,
  type CertificateSpec,
  type VersionRecord,
} from './records.js';

export interface CertificateEvent {
  readonly type: 'issued' | 'renewed' | 'revoked';
  readonly certificate: string;
  readonly version: number;
  readonly serialHex: string;
  readonly at: string;
}

/** One issuance attempt's outcome, for metrics. */
export interface IssuanceOutcome {
  readonly certificate: string;
  readonly issuer: IssuerRef;
  readonly ok: boolean;
  readonly code?: string;
  readonly durationMs: number;
}

export interface CertificateServiceOptions {
  readonly store: Store;
  readonly sealer: Sealer;
  readonly audit: AuditRecorder;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Issuers by reference (`ca:default`, `acme:le`); throws ISSUER_NOT_FOUND for an unknown one. */
  readonly resolveIssuer: (ref: IssuerRef) => Issuer;
  /** Jitter source for renewal times, in [0, 1). */
  readonly random?: () => number;
  readonly onEvent?: (event: CertificateEvent) => void;
  readonly observe?: (outcome: IssuanceOutcome) => void;
}

export interface IssueOptions {
  /** Why: 'created', 'manual', 'renewal-time', 'spec-changed', … (the first check that fired). */
  readonly reason: string;
  /** A CSR from the requester: keywright then never holds the key. */
  readonly csrDer?: Buffer;
}

/** What a bundle pull gets; the key only when the caller may export it. */
export interface BundleMaterial {
  readonly version: VersionRecord;
  readonly certificatePem: string;
  readonly chainPem: readonly string[];
  /** PKCS#8 PEM, unsealed for this pull only (never cached). */
  readonly privateKeyPem?: string;
}

const keyContext = (id: string): SealContext => ({ recordType: 'cert-key', recordId: id });

/**
 * Managed certificates: the issue → seal → persist pipeline, versions, revocation and bundle material,
 * the same for every issuer. Talks to the Issuer port only. Issuance of one certificate is serialized.
 */
export class CertificateService {
  readonly #o: CertificateServiceOptions;
  readonly #inFlight = new Map<string, Promise<unknown>>();

  constructor(options: CertificateServiceOptions) {
    this.#o = options;
  }

  list(): CertificateRecord[] {
    return this.#o.store
      .collection<CertificateRecord>(CERTIFICATES_COLLECTION)
      .list()
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  get(name: string): CertificateRecord {
    const record = this.#o.store.collection<CertificateRecord>(CERTIFICATES_COLLECTION).find(name);
    if (record === undefined)
      throw new CaError('CERT_NOT_FOUND', `no certificate named "${name}"`, {
        details: { certificate: name },
      });
    return record;
  }

  versions(name: string): VersionRecord[] {
    this.get(name);
    return this.#o.store
      .collection<VersionRecord>(VERSIONS_COLLECTION)
      .list((v) => v.certificate === name)
      .sort((a, b) => b.version - a.version);
  }

  current(name: string): VersionRecord {
    const cert = this.get(name);
    const version =
      cert.currentVersion === undefined
        ? undefined
        : this.#o.store
            .collection<VersionRecord>(VERSIONS_COLLECTION)
            .find(versionId(name, cert.currentVersion));
    if (version === undefined)
      throw new CaError('CERT_NOT_FOUND', `certificate "${name}" has no issued version yet`, {
        details: { certificate: name },
      });
    return version;
  }

  findBySerial(serialHex: string): VersionRecord | undefined {
    const serial = normaliseSerial(serialHex);
    return this.#o.store
      .collection<VersionRecord>(VERSIONS_COLLECTION)
      .list((v) => v.serialHex === serial)[0];
  }

  /**
   * Creates a managed certificate and issues its first version, atomically: the record and the version
   * are committed together, so a refused issuance (policy, CSR, issuer down) leaves nothing behind.
   */
  async create(
    name: string,
    spec: CertificateSpec,
    meta: { source: 'api' | 'config' },
    ctx: OpContext,
    options: Omit<IssueOptions, 'reason'> = {},
  ): Promise<VersionRecord> {
    if (!NAME_PATTERN.test(name)) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `name "${name}": use 1-64 lowercase letters, digits, ".", "_" or "-"`,
        { details: { field: 'name' } },
      );
    }
    validateSpec(spec);
    this.#o.resolveIssuer(spec.issuer); // an unknown issuer is refused before anything is made
    if (this.#o.store.collection<CertificateRecord>(CERTIFICATES_COLLECTION).find(name) !== undefined) {
      throw new CaError(
        'CERT_EXISTS',
        `a certificate named "${name}" exists already; renew it or pick another name`,
        { details: { certificate: name } },
      );
    }
    const now = this.#o.clock.now().toISOString();
    const draft: CertificateRecord = {
      id: name,
      ...spec,
      source: meta.source,
      createdAt: now,
      createdBy: ctx.actor,
      updatedAt: now,
      nextVersion: 1,
    };
    return this.#serialized(name, () => this.#issue(draft, ctx, { ...options, reason: 'created' }, true));
  }

  /** Issues a new version now (first issuance, renewal or re-key). Concurrent calls for one name share the first. */
  issue(name: string, ctx: OpContext, options: IssueOptions): Promise<VersionRecord> {
    return this.#serialized(name, () => this.#issue(this.get(name), ctx, options, false));
  }

  #serialized(name: string, work: () => Promise<VersionRecord>): Promise<VersionRecord> {
    const running = this.#inFlight.get(name) as Promise<VersionRecord> | undefined;
    if (running) return running;
    const promise = work().finally(() => this.#inFlight.delete(name));
    this.#inFlight.set(name, promise);
    return promise;
  }

  async #issue(
    cert: CertificateRecord,
    ctx: OpContext,
    options: IssueOptions,
    isNew: boolean,
  ): Promise<VersionRecord> {
    const { store, sealer, audit, clock } = this.#o;
    const name = cert.id;
    const startedMs = clock.nowMs();
    const number = cert.nextVersion;
    const id = versionId(name, number);
    const previous =
      cert.currentVersion === undefined
        ? undefined
        : store.collection<VersionRecord>(VERSIONS_COLLECTION).find(versionId(name, cert.currentVersion));
    try {
      let privateKey: KeyObject | undefined;
      let ownKey: KeyObject | undefined;
      let csrDer = options.csrDer;
      if (csrDer === undefined) {
        privateKey =
          cert.keyRotation === 'reuse' && previous?.keyBlob && previous.keyState === 'enabled'
            ? await this.#unsealKey(previous)
            : (await generateKeyPair(cert.keyType)).privateKey;
        csrDer = buildCsr({ privateKey, sans: cert.sans.map(parseSanText) });
        ownKey = publicKeyOf(privateKey); // its SPKI, encoded for the CSR, is not encoded again
      } else {
        parseCsr(csrDer); // signature and shape checked before any issuer sees it
      }
      const issuer = this.#o.resolveIssuer(cert.issuer);
      const previousPem = previous
        ? firstPem((await store.getBlob(previous.chainBlob))?.toString('utf8') ?? '')
        : '';
      const result = await issuer.issue(
        {
          certificateName: name,
          csrDer,
          ...(ownKey ? { ownKey } : {}),
          sans: cert.sans,
          lifetimeMs: cert.lifetimeMs,
          ...(cert.profile ? { profile: cert.profile } : {}),
          ...(previous && previousPem
            ? { replaces: { serialHex: previous.serialHex, certificatePem: previousPem } }
            : {}),
        },
        ctx,
      );
      const leafDer = decodePemBlocks(result.certificatePem, 'CERTIFICATE', 'issued certificate')[0]!;
      const sealed = privateKey ? await sealPrivateKey(sealer, privateKey, keyContext(id)) : undefined;
      const now = clock.now().toISOString();
      const version: VersionRecord = {
        id,
        certificate: name,
        version: number,
        issuer: result.issuer,
        serialHex: result.serialHex,
        notBefore: result.notBefore.toISOString(),
        notAfter: result.notAfter.toISOString(),
        fingerprint: createHash('sha256').update(leafDer).digest('hex'),
        sans: cert.sans,
        keyType: cert.keyType,
        status: 'active',
        chainBlob: chainBlobKey(name, number),
        ...(sealed ? { keyBlob: `${SEALED_BLOB_PREFIX}cert/${name}/${number}` } : {}),
        keyState: 'enabled',
        createdAt: now,
        reason: options.reason,
      };
      const renewAt = renewalTime(
        result.notBefore,
        result.notAfter,
        cert.renewBefore,
        this.#o.random?.() ?? Math.random(),
      );
      await audit.append({
        actor: ctx.actor,
        action: previous ? 'cert.renew' : 'cert.issue',
        subject: `cert:${name}`,
        outcome: 'success',
        ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
        details: {
          version: number,
          serial: result.serialHex,
          issuer: result.issuer,
          reason: options.reason,
          fromCsr: sealed === undefined,
        },
      });
      await store.tx((tx) => {
        tx.putBlob(
          version.chainBlob,
          Buffer.from([result.certificatePem, ...result.chainPem].map(ensureNewline).join('')),
        );
        if (sealed && version.keyBlob) tx.putBlob(version.keyBlob, Buffer.from(JSON.stringify(sealed)));
        tx.collection<VersionRecord>(VERSIONS_COLLECTION).insert(version);
        if (previous && previous.status === 'active') {
          tx.collection<VersionRecord>(VERSIONS_COLLECTION).update(previous.id, (v) => ({
            ...v,
            status: 'superseded',
            keyState: v.keyBlob ? 'disabled' : v.keyState,
          }));
        }
        const {
          lastError: _drop,
          failures: _f,
          nextAttemptAt: _n,
          renewRequested: _r,
          ...rest
        } = isNew ? cert : tx.collection<CertificateRecord>(CERTIFICATES_COLLECTION).get(name);
        tx.collection<CertificateRecord>(CERTIFICATES_COLLECTION)[isNew ? 'insert' : 'put']({
          ...rest,
          currentVersion: number,
          nextVersion: number + 1,
          renewAt: renewAt.toISOString(),
          lastIssuedAt: now,
          updatedAt: now,
        });
      });
      this.#o.onEvent?.({
        type: previous ? 'renewed' : 'issued',
        certificate: name,
        version: number,
        serialHex: result.serialHex,
        at: now,
      });
      this.#o.observe?.({
        certificate: name,
        issuer: cert.issuer,
        ok: true,
        durationMs: clock.nowMs() - startedMs,
      });
      return version;
    } catch (err) {
      this.#o.observe?.({
        certificate: name,
        issuer: cert.issuer,
        ok: false,
        code: toAppError(err).code,
        durationMs: clock.nowMs() - startedMs,
      });
      if (!isNew) await this.#recordFailure(name, err);
      throw err;
    }
  }

  /** Back-off after a failure, bounded by the validity the current version has left. */
  #nextAttempt(c: CertificateRecord, failures: number, at: string): string {
    const current =
      c.currentVersion === undefined
        ? undefined
        : this.#o.store
            .collection<VersionRecord>(VERSIONS_COLLECTION)
            .find(versionId(c.id, c.currentVersion));
    return nextAttemptAt({
      failures,
      lastFailureAt: new Date(at),
      ...(current ? { notAfter: new Date(current.notAfter) } : {}),
      jitter: this.#o.random?.() ?? Math.random(),
    }).toISOString();
  }

  async #recordFailure(name: string, err: unknown): Promise<void> {
    const e = toAppError(err);
    const at = this.#o.clock.now().toISOString();
    await this.#o.store
      .tx((tx) => {
        const certs = tx.collection<CertificateRecord>(CERTIFICATES_COLLECTION);
        if (certs.find(name))
          certs.update(name, (c) => ({
            ...c,
            lastError: {
              code: e.code,
              message: e.category === 'internal' ? 'internal error' : e.message,
              at,
            },
            failures: (c.failures ?? 0) + 1,
            nextAttemptAt: this.#nextAttempt(c, (c.failures ?? 0) + 1, at),
            updatedAt: at,
          }));
      })
      .catch((storeErr: unknown) =>
        this.#o.logger.error({ err: storeErr, certificate: name }, 'could not record the issuance failure'),
      );
  }

  /** Revokes a version (the current one by default) through its issuer, then marks it revoked. */
  async revoke(
    target: { name?: string; serialHex?: string },
    reason: RevocationReason,
    ctx: OpContext,
  ): Promise<VersionRecord> {
    const version =
      target.serialHex !== undefined
        ? this.findBySerial(target.serialHex)
        : target.name !== undefined
          ? this.current(target.name)
          : undefined;
    if (version === undefined) {
      throw new CaError('CERT_NOT_FOUND', `no certificate version with serial ${target.serialHex ?? '?'}`, {
        details: { ...(target.serialHex ? { serial: target.serialHex } : {}) },
      });
    }
    if (version.status === 'revoked') return version;
    const issuer = this.#o.resolveIssuer(version.issuer);
    if (!canRevoke(issuer))
      throw new IssuerError('ISSUER_FAILED', `issuer ${version.issuer} cannot revoke certificates`, {
        retryable: false,
      });
    const pem = (await this.#o.store.getBlob(version.chainBlob))?.toString('utf8') ?? '';
    await this.#o.audit.append({
      actor: ctx.actor,
      action: 'cert.revoke',
      subject: `cert:${version.certificate}`,
      outcome: 'success',
      ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
      details: { version: version.version, serial: version.serialHex, reason },
    });
    await issuer.revoke({ serialHex: version.serialHex, certificatePem: firstPem(pem), reason }, ctx);
    const at = this.#o.clock.now().toISOString();
    const updated = await this.#o.store.tx((tx) =>
      tx
        .collection<VersionRecord>(VERSIONS_COLLECTION)
        .update(version.id, (v) => ({ ...v, status: 'revoked', revokedAt: at, revocationReason: reason })),
    );
    this.#o.onEvent?.({
      type: 'revoked',
      certificate: version.certificate,
      version: version.version,
      serialHex: version.serialHex,
      at,
    });
    return updated;
  }

  /** `cert key restore`: a key pending destruction goes back to disabled and is kept (audited). */
  async restoreKey(name: string, version: number, ctx: OpContext): Promise<VersionRecord> {
    this.get(name);
    const v = this.#o.store.collection<VersionRecord>(VERSIONS_COLLECTION).find(versionId(name, version));
    if (v === undefined)
      throw new CaError('CERT_NOT_FOUND', `certificate "${name}" has no version ${version}`, {
        details: { certificate: name, version },
      });
    const plan = planKeyRestore(v, ctx.clock.now());
    if (!plan.ok)
      throw new CaError('CERT_KEY_STATE', plan.reason, { details: { certificate: name, version } });
    await this.#o.audit.append({
      actor: ctx.actor,
      action: 'key.restore',
      subject: `cert:${name}`,
      outcome: 'success',
      ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
      details: { version, from: plan.transition.from, to: plan.transition.to },
    });
    return this.#o.store.tx((tx) =>
      tx.collection<VersionRecord>(VERSIONS_COLLECTION).update(v.id, (r) => {
        const { destroyAfter: _d, ...rest } = r;
        return { ...rest, keyState: 'disabled', restoredAt: ctx.clock.now().toISOString() };
      }),
    );
  }

  /**
   * The issuer's suggested renewal window for the current version (ACME ARI, RFC 9773), when the issuer
   * advises one; the issuer caches it and re-asks only after the Retry-After it was given.
   */
  async renewalWindow(name: string, ctx: OpContext): Promise<{ start: Date; end: Date } | undefined> {
    const cert = this.get(name);
    if (cert.currentVersion === undefined) return undefined;
    const issuer = this.#o.resolveIssuer(cert.issuer);
    if (!canAdviseRenewal(issuer)) return undefined;
    const pem = firstPem((await this.#o.store.getBlob(this.current(name).chainBlob))?.toString('utf8') ?? '');
    const window = pem ? await issuer.renewalWindow(pem, ctx) : undefined;
    return window ? { start: window.start, end: window.end } : undefined;
  }

  /** The current version's PEMs and, when asked, its private key (unsealed just for this call). */
  async bundle(name: string, includeKey: boolean): Promise<BundleMaterial> {
    const version = this.current(name);
    const raw = await this.#o.store.getBlob(version.chainBlob);
    if (raw === undefined)
      throw new CaError('CERT_NOT_FOUND', `the chain of ${version.id} is missing from the store`);
    const pems = splitPems(raw.toString('utf8'));
    const material: BundleMaterial = { version, certificatePem: pems[0] ?? '', chainPem: pems.slice(1) };
    if (!includeKey) return material;
    if (version.keyBlob === undefined) {
      throw new CaError(
        'CERT_NOT_FOUND',
        `certificate "${name}" was issued from a CSR: keywright does not hold its key`,
        { details: { certificate: name } },
      );
    }
    return { ...material, privateKeyPem: await this.#unsealKeyPem(version) };
  }

  async #unsealKeyPem(version: VersionRecord): Promise<string> {
    return unsealPrivateKeyPem(this.#o.sealer, await this.#sealedKey(version), keyContext(version.id));
  }

  /** A KeyObject, for reusing the key in a new CSR (renewal with keyRotation: reuse). */
  async #unsealKey(version: VersionRecord): Promise<KeyObject> {
    return unsealPrivateKey(this.#o.sealer, await this.#sealedKey(version), keyContext(version.id));
  }

  async #sealedKey(version: VersionRecord): Promise<SealedBlob> {
    const raw = version.keyBlob === undefined ? undefined : await this.#o.store.getBlob(version.keyBlob);
    if (raw === undefined)
      throw new CaError('CERT_NOT_FOUND', `the key of ${version.id} is not in the store`, {
        details: { version: version.id },
      });
    return JSON.parse(raw.toString('utf8')) as SealedBlob;
  }
}

function validateSpec(spec: CertificateSpec): void {
  if (spec.sans.length === 0)
    throw new ValidationError('INVALID_ARGUMENT', 'sans: give at least one name', {
      details: { field: 'sans' },
    });
  for (const san of spec.sans) {
    try {
      parseSanText(san);
    } catch (err) {
      throw new ValidationError('INVALID_ARGUMENT', `sans: "${san}" is not a valid name`, {
        cause: err,
        details: { field: 'sans', value: san },
      });
    }
  }
  if (!Number.isSafeInteger(spec.lifetimeMs) || spec.lifetimeMs < 60_000) {
    throw new ValidationError('INVALID_ARGUMENT', 'lifetime: at least 1 minute', {
      details: { field: 'lifetime' },
    });
  }
}

function ensureNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

function splitPems(text: string): string[] {
  return (
    text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)?.map(ensureNewline) ?? []
  );
}

function firstPem(text: string): string {
  return splitPems(text)[0] ?? '';
}
