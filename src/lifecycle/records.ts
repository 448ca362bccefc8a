/**
 * Stored shapes of managed certificates and their versions (docs/storage.md). A managed certificate is
 * the desired state (issuer, names, key type, lifetime, policies); each issuance is a version with its
 * own serial, chain blob and sealed key blob. Versions are kept; superseded keys follow the key states.
 */
import type { StoredRecord } from '../store/port.js';
import type { CertKeyType } from '../pki/key-spec.js';
import type { IssuerRef, RevocationReason } from '../issuer/port.js';
import type { DeployTargetConfig } from '../config/schema.js';
import type { TargetState } from '../deploy/run.js';

export const CERTIFICATES_COLLECTION = 'certificates';
export const VERSIONS_COLLECTION = 'certVersions';

export type RenewBefore = { readonly ms: number } | { readonly percent: number };

export interface CertificateSpec {
  readonly issuer: IssuerRef;
  readonly profile?: string;
  readonly sans: readonly string[];
  readonly keyType: CertKeyType;
  readonly lifetimeMs: number;
  readonly renewBefore?: RenewBefore;
  readonly keyRotation: 'always' | 'reuse';
}

export interface CertificateRecord extends StoredRecord, CertificateSpec {
  /** The certificate's name. */
  readonly id: string;
  readonly source: 'api' | 'config';
  readonly createdAt: string;
  readonly createdBy: string;
  readonly updatedAt: string;
  readonly currentVersion?: number;
  readonly nextVersion: number;
  /** When the scheduler should renew the current version (stored so a restart does not reshuffle it). */
  readonly renewAt?: string;
  readonly lastIssuedAt?: string;
  readonly lastError?: { readonly code: string; readonly message: string; readonly at: string };
  /** Consecutive failed issuances since the last success, and when the sweep may try again (back-off). */
  readonly failures?: number;
  readonly nextAttemptAt?: string;
  /** Declared in config once and since removed: kept, never silently deleted. */
  readonly retired?: boolean;
  /** Where each new version goes (config-declared certificates). */
  readonly deploy?: readonly DeployTargetConfig[];
  /** Per deploy target: what it last delivered, its last error and when to retry. */
  readonly deployState?: readonly TargetState[];
  /** Set by a manual renew request or a spec change; cleared by the next issuance. */
  readonly renewRequested?: string;
}

export type VersionStatus = 'active' | 'superseded' | 'revoked';
export type KeyState = 'enabled' | 'disabled' | 'pending-destruction' | 'destroyed';

export interface VersionRecord extends StoredRecord {
  /** `<name>@<version>` */
  readonly id: string;
  readonly certificate: string;
  readonly version: number;
  readonly issuer: IssuerRef;
  readonly serialHex: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** SHA-256 of the leaf DER, hex: the bundle ETag and the deploy targets' "what did I deliver". */
  readonly fingerprint: string;
  readonly sans: readonly string[];
  readonly keyType: CertKeyType;
  readonly status: VersionStatus;
  readonly revokedAt?: string;
  readonly revocationReason?: RevocationReason;
  /** Blob: leaf PEM followed by the chain PEMs. */
  readonly chainBlob: string;
  /** Blob (under SEALED_BLOB_PREFIX) of the sealed private key; absent when the requester kept the key (CSR). */
  readonly keyBlob?: string;
  readonly keyState: KeyState;
  readonly destroyAfter?: string;
  /** Set by `cert key restore`: the key was brought back from pending-destruction and is kept. */
  readonly restoredAt?: string;
  readonly createdAt: string;
  readonly reason: string;
}

export const versionId = (name: string, version: number): string => `${name}@${version}`;
export const chainBlobKey = (name: string, version: number): string => `cert/${name}/${version}/chain`;
