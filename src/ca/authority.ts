/**
 * The CA's persistent state: the hierarchy made by `init` (root + default intermediate), its records in
 * the store and its keys sealed in the blob area, and the daemon's own HTTPS certificate issued from it.
 * Signing keys are unsealed once and kept as KeyObjects while the daemon runs (DESIGN §3).
 */
import { hostname } from 'node:os';
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';
import { AppError, CaError } from '../core/errors.js';
import type { CertKeyType } from '../pki/key-spec.js';
import type { Sealer, SealedBlob, SealContext } from '../keys/port.js';
import { generateKeyPair } from '../keys/generate.js';
import { sealPrivateKey, unsealPrivateKey } from '../keys/sealed-key.js';
import type { Store, StoredRecord } from '../store/port.js';
import { SEALED_BLOB_PREFIX } from '../store/port.js';
import type { AuditRecorder } from '../audit/audit-log.js';
import { parseCertificate } from '../pki/certificate.js';
import { createRoot, createIntermediate } from './hierarchy.js';
import { buildLeafCertificate } from './issue.js';
import { BUILTIN_PROFILES } from './profiles.js';
import { LEDGER_COLLECTION, ledgerId, normaliseSerial, type LedgerRecord } from './ledger.js';

export const CAS_COLLECTION = 'cas';
export const DAEMON_TLS_COLLECTION = 'daemonTls';

export interface CaRecord extends StoredRecord {
  /** The CA's name: `default` is the issuing intermediate addressed as `ca:default`. */
  readonly id: string;
  readonly kind: 'root' | 'intermediate';
  readonly parent?: string;
  readonly keyType: CertKeyType;
  readonly certificatePem: string;
  readonly serialHex: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** Blob key of the sealed private key; absent when the key is kept offline. */
  readonly keyBlob?: string;
  readonly createdAt: string;
  /** How the CA came to be; absent on records made before this field existed (init). */
  readonly origin?: 'init' | 'created' | 'imported';
  /**
   * An imported CA whose issuer is not a keywright CA: the certificates above it as the operator gave
   * them (issuer first, the root last if it was included), PEM each.
   */
  readonly externalChainPem?: readonly string[];
  /** When `disable-key` removed the sealed key from the store. */
  readonly keyDisabledAt?: string;
}

export interface CaHierarchyConfig {
  readonly root: { readonly name: string; readonly key: CertKeyType; readonly lifetime: number };
  readonly intermediate: { readonly name: string; readonly key: CertKeyType; readonly lifetime: number };
}

export interface CaDeps {
  readonly store: Store;
  readonly sealer: Sealer;
  readonly audit: AuditRecorder;
  readonly clock: Clock;
  readonly actor: string;
}

const caKeyContext = (name: string): SealContext => ({ recordType: 'ca-key', recordId: name });
const caKeyBlob = (name: string, serialHex: string) => `${SEALED_BLOB_PREFIX}ca/${name}/${serialHex}`;

/**
 * Creates the root and the default intermediate unless they exist (a crashed init resumes here).
 * Each key is sealed and its creation audited before the record is committed.
 */
export async function ensureCaHierarchy(
  deps: CaDeps & { config: CaHierarchyConfig },
): Promise<{ root: CaRecord; intermediate: CaRecord }> {
  const { root: rootCfg, intermediate: interCfg } = deps.config;
  const cas = deps.store.collection<CaRecord>(CAS_COLLECTION);
  let root = cas.find(rootCfg.name);
  let rootKey: KeyObject | undefined;
  if (root === undefined) {
    const { privateKey } = await generateKeyPair(rootCfg.key);
    const issued = createRoot({
      subject: { commonName: 'keywright root CA', organization: 'keywright' },
      key: privateKey,
      lifetimeMs: rootCfg.lifetime,
      clock: deps.clock,
    });
    root = await persistCa(
      deps,
      { id: rootCfg.name, kind: 'root', keyType: rootCfg.key, origin: 'init' },
      issued,
      privateKey,
    );
    rootKey = privateKey;
  }
  let intermediate = cas.find(interCfg.name);
  if (intermediate === undefined) {
    rootKey ??= await loadCaKey(deps.store, deps.sealer, root);
    const { privateKey, publicKey } = await generateKeyPair(interCfg.key);
    const issued = createIntermediate({
      issuer: { certificate: parseCertificate(root.certificatePem), key: rootKey },
      subjectPublicKey: publicKey,
      subject: { commonName: `keywright ${interCfg.name} intermediate CA`, organization: 'keywright' },
      lifetimeMs: interCfg.lifetime,
      clock: deps.clock,
    });
    intermediate = await persistCa(
      deps,
      { id: interCfg.name, kind: 'intermediate', parent: root.id, keyType: interCfg.key, origin: 'init' },
      issued,
      privateKey,
    );
  }
  return { root, intermediate };
}

export interface CaRecordMeta {
  readonly id: string;
  readonly kind: 'root' | 'intermediate';
  readonly parent?: string;
  readonly keyType: CertKeyType;
  readonly origin: 'init' | 'created' | 'imported';
  readonly externalChainPem?: readonly string[];
}

/**
 * Seals the CA key and commits the CA record, its key blob and (under a keywright parent) the parent's
 * ledger line in one transaction, after the audit entry (`ca.create` or `ca.import`) is durable.
 */
export async function persistCa(
  deps: CaDeps,
  meta: CaRecordMeta,
  issued: { pem: string; serialHex: string; notBefore: Date; notAfter: Date },
  key: KeyObject,
  action: 'ca.create' | 'ca.import' = 'ca.create',
  requestId?: string,
): Promise<CaRecord> {
  const sealed = await sealPrivateKey(deps.sealer, key, caKeyContext(meta.id));
  const now = deps.clock.now().toISOString();
  const record: CaRecord = {
    ...meta,
    certificatePem: issued.pem,
    serialHex: issued.serialHex,
    notBefore: issued.notBefore.toISOString(),
    notAfter: issued.notAfter.toISOString(),
    keyBlob: caKeyBlob(meta.id, issued.serialHex),
    createdAt: now,
  };
  await deps.audit.append({
    actor: deps.actor,
    action,
    subject: `ca:${meta.id}`,
    outcome: 'success',
    ...(requestId ? { requestId } : {}),
    details: {
      kind: meta.kind,
      keyType: meta.keyType,
      serial: issued.serialHex,
      ...(meta.parent ? { parent: meta.parent } : {}),
    },
  });
  await deps.store.tx((tx) => {
    tx.putBlob(record.keyBlob!, Buffer.from(JSON.stringify(sealed)));
    tx.collection<CaRecord>(CAS_COLLECTION).insert(record);
    if (meta.parent !== undefined) {
      // the parent's ledger knows its subordinate, so its CRL and OCSP can revoke it
      const ledger = tx.collection<LedgerRecord>(LEDGER_COLLECTION);
      const id = ledgerId(meta.parent, issued.serialHex);
      if (ledger.find(id) === undefined) {
        ledger.insert({
          id,
          ca: meta.parent,
          serialHex: normaliseSerial(issued.serialHex),
          notAfter: record.notAfter,
          issuedAt: now,
          names: [`ca:${meta.id}`],
          kind: 'ca',
        });
      }
    }
  });
  return record;
}

/** Unseals a CA's signing key (kept by callers as a KeyObject for the daemon's lifetime). */
export async function loadCaKey(store: Store, sealer: Sealer, ca: CaRecord): Promise<KeyObject> {
  if (ca.keyBlob === undefined) {
    throw new CaError(
      'CA_KEY_UNAVAILABLE',
      `the key of CA ${ca.id} is offline; issue from an intermediate instead`,
      { details: { ca: ca.id } },
    );
  }
  const raw = await store.getBlob(ca.keyBlob);
  if (raw === undefined) {
    throw new AppError(
      'STORE_NOT_FOUND',
      `the sealed key of CA ${ca.id} is missing from the store (${ca.keyBlob})`,
      { details: { ca: ca.id } },
    );
  }
  return unsealPrivateKey(sealer, JSON.parse(raw.toString('utf8')) as SealedBlob, caKeyContext(ca.id));
}

export function getCa(store: Store, name: string): CaRecord {
  const ca = store.collection<CaRecord>(CAS_COLLECTION).find(name);
  if (ca === undefined) throw new CaError('CA_NOT_FOUND', `no CA named "${name}"`, { details: { ca: name } });
  return ca;
}

/**
 * PEMs from the CA up: the CA's own certificate first, then its keywright parents, then any external
 * chain an imported CA came with. `withRoot: false` leaves out a self-signed last certificate (what a
 * server sends).
 */
export function chainPems(store: Store, name: string, options: { withRoot: boolean }): string[] {
  const records = caChain(store, name);
  const pems = records.map((c) => c.certificatePem);
  pems.push(...(records.at(-1)?.externalChainPem ?? []));
  while (!options.withRoot && pems.length > 0 && parseCertificate(pems.at(-1)!).selfIssued) pems.pop();
  return pems;
}

/** The chain above a CA, issuing CA first, root last. */
export function caChain(store: Store, name: string): CaRecord[] {
  const chain: CaRecord[] = [];
  for (
    let ca: CaRecord | undefined = getCa(store, name);
    ca !== undefined;
    ca = ca.parent ? getCa(store, ca.parent) : undefined
  ) {
    chain.push(ca);
    if (chain.length > 8) break;
  }
  return chain;
}

interface DaemonTlsRecord extends StoredRecord {
  readonly id: 'current';
  readonly issuer: string;
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly serialHex: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly sans: readonly string[];
  readonly keyBlob: string;
}

const DAEMON_TLS_LIFETIME_MS = 90 * 86_400_000;
const daemonKeyContext = (serialHex: string): SealContext => ({
  recordType: 'daemon-tls-key',
  recordId: serialHex,
});

/**
 * The daemon's HTTPS certificate and key, from the default intermediate. Reused while it covers the
 * listener's names and has more than a third of its life left; otherwise a new one is issued, sealed and
 * audited. Without a sealer (the daemon is sealed) an ephemeral self-signed certificate lets health
 * answer over HTTPS; it is never stored.
 */
export async function ensureDaemonCertificate(options: {
  store: Store;
  sealer: Sealer | undefined;
  audit: AuditRecorder;
  clock: Clock;
  listen: { host: string };
  issuer?: string;
  logger?: Logger;
}): Promise<{ key: string; cert: string }> {
  const { store, sealer, clock } = options;
  const logger = options.logger ?? silentLogger;
  const sans = daemonNames(options.listen.host);
  if (sealer === undefined) return ephemeralCertificate(clock);
  const current = store.collection<DaemonTlsRecord>(DAEMON_TLS_COLLECTION).find('current');
  const nowMs = clock.nowMs();
  if (current !== undefined) {
    const start = Date.parse(current.notBefore);
    const end = Date.parse(current.notAfter);
    const fresh = nowMs < end - (end - start) / 3;
    if (fresh && sans.every((s) => current.sans.includes(s))) {
      const raw = await store.getBlob(current.keyBlob);
      if (raw !== undefined) {
        const key = await unsealPrivateKey(
          sealer,
          JSON.parse(raw.toString('utf8')) as SealedBlob,
          daemonKeyContext(current.serialHex),
        );
        return {
          key: key.export({ type: 'pkcs8', format: 'pem' }) as string,
          cert: current.certificatePem + current.chainPem,
        };
      }
    }
  }
  const issuerName = options.issuer ?? 'default';
  const ca = getCa(store, issuerName);
  const caKey = await loadCaKey(store, sealer, ca);
  const { privateKey, publicKey } = await generateKeyPair('ec-p256');
  const issued = buildLeafCertificate({
    issuer: { certificate: parseCertificate(ca.certificatePem), key: caKey },
    subjectPublicKey: publicKey,
    sans,
    profile: BUILTIN_PROFILES.server,
    lifetimeMs: DAEMON_TLS_LIFETIME_MS,
    clock,
  });
  const sealed = await sealPrivateKey(sealer, privateKey, daemonKeyContext(issued.serialHex));
  const chainPem = chainPems(store, issuerName, { withRoot: false }).join('');
  const record: DaemonTlsRecord = {
    id: 'current',
    issuer: issuerName,
    certificatePem: issued.pem,
    chainPem,
    serialHex: issued.serialHex,
    notBefore: issued.notBefore.toISOString(),
    notAfter: issued.notAfter.toISOString(),
    sans,
    keyBlob: `${SEALED_BLOB_PREFIX}daemon-tls/${issued.serialHex}`,
  };
  await options.audit.append({
    actor: 'system',
    action: 'cert.issue',
    subject: 'daemon-tls',
    outcome: 'success',
    details: { issuer: `ca:${issuerName}`, serial: issued.serialHex, names: sans.join(',') },
  });
  await store.tx((tx) => {
    tx.putBlob(record.keyBlob, Buffer.from(JSON.stringify(sealed)));
    tx.collection<DaemonTlsRecord>(DAEMON_TLS_COLLECTION).put(record);
    tx.collection<LedgerRecord>(LEDGER_COLLECTION).insert({
      id: ledgerId(issuerName, issued.serialHex),
      ca: issuerName,
      serialHex: normaliseSerial(issued.serialHex),
      notAfter: record.notAfter,
      issuedAt: clock.now().toISOString(),
      names: sans,
    });
    if (current !== undefined && current.keyBlob !== record.keyBlob) tx.deleteBlob(current.keyBlob);
  });
  logger.info({ serial: issued.serialHex, names: sans }, 'issued the daemon TLS certificate');
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: issued.pem + chainPem };
}

function daemonNames(listenHost: string): string[] {
  const names = new Set<string>(['localhost', '127.0.0.1', '::1']);
  const host = hostname().toLowerCase();
  if (/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host)) names.add(host);
  if (listenHost !== '0.0.0.0' && listenHost !== '::') names.add(listenHost.toLowerCase());
  return [...names];
}

async function ephemeralCertificate(clock: Clock): Promise<{ key: string; cert: string }> {
  const { privateKey } = await generateKeyPair('ec-p256');
  const issued = createRoot({
    subject: { commonName: 'keywright (sealed)' },
    key: privateKey,
    lifetimeMs: 86_400_000,
    clock,
  });
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: issued.pem };
}
