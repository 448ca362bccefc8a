/**
 * The DeployTarget port: where a new certificate version goes once it is issued (file, exec, webhook,
 * verify). The lifecycle builds one DeployArtifact per version and hands it to `deployAll` (run.ts); a
 * target answers `deployed` or `unchanged`, or throws a DeployError. Targets never see the store, the
 * sealer or other certificates, and only the file target ever touches the private key.
 */
import { createHash } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { decodePemBlocks } from '../pki/pem.js';

const REDACTED = '[private key redacted]';

/**
 * A private key in PEM, held so that logging, JSON.stringify or util.inspect of an artifact shows
 * "[private key redacted]" instead of the key. Read it with `reveal()` only where it is written out.
 */
export class SecretPem {
  #bytes: Buffer;

  constructor(pem: string | Buffer) {
    this.#bytes = Buffer.from(pem);
  }

  static fromKeyObject(key: KeyObject): SecretPem {
    const exported = key.export({ type: 'pkcs8', format: 'pem' });
    return new SecretPem(exported);
  }

  /** The PEM bytes; the caller must not log or keep them. */
  reveal(): Buffer {
    if (this.#bytes.length === 0) throw new Error('the private key of this artifact was disposed');
    return this.#bytes;
  }

  /** Overwrites the bytes: call once the deploy run is over. */
  dispose(): void {
    this.#bytes.fill(0);
    this.#bytes = Buffer.alloc(0);
  }

  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return REDACTED;
  }
}

/** One certificate version, as the targets receive it. Everything but `privateKey` is public. */
export interface DeployArtifact {
  /** The managed certificate's name. */
  readonly certificate: string;
  readonly version: number;
  /** SHA-256 of the leaf DER, lowercase hex: what targets compare to decide `unchanged`. */
  readonly fingerprint: string;
  readonly serialHex: string;
  readonly issuer?: string;
  readonly certificatePem: string;
  /** Issuing CA first, root excluded (what a server sends after its leaf). */
  readonly chainPem: readonly string[];
  /** Leaf followed by the chain. */
  readonly fullchainPem: string;
  /** Absent when the certificate was issued from a requester's CSR: keywright does not hold that key. */
  readonly privateKey?: SecretPem;
  readonly domains: readonly string[];
  /** ISO-8601. */
  readonly notBefore: string;
  readonly notAfter: string;
}

export interface ArtifactInput {
  readonly certificate: string;
  readonly version: number;
  readonly issuer?: string;
  readonly serialHex: string;
  readonly certificatePem: string;
  readonly chainPem: readonly string[];
  readonly privateKey?: KeyObject | SecretPem;
  readonly domains: readonly string[];
  readonly notBefore: Date | string;
  readonly notAfter: Date | string;
}

/** Builds an artifact: fingerprint computed from the leaf, full chain assembled, key wrapped. */
export function makeArtifact(input: ArtifactInput): DeployArtifact {
  const leafDer = decodePemBlocks(input.certificatePem, 'CERTIFICATE', 'deploy artifact certificate')[0];
  const certificatePem = withNewline(input.certificatePem);
  const chainPem = input.chainPem.map(withNewline);
  const key = input.privateKey;
  return {
    certificate: input.certificate,
    version: input.version,
    fingerprint: leafDer ? sha256Hex(leafDer) : '',
    serialHex: input.serialHex,
    ...(input.issuer !== undefined ? { issuer: input.issuer } : {}),
    certificatePem,
    chainPem,
    fullchainPem: [certificatePem, ...chainPem].join(''),
    ...(key !== undefined
      ? { privateKey: key instanceof SecretPem ? key : SecretPem.fromKeyObject(key) }
      : {}),
    domains: [...input.domains],
    notBefore: iso(input.notBefore),
    notAfter: iso(input.notAfter),
  };
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The fingerprint of the first certificate in a PEM text, or undefined when there is none. */
export function pemFingerprint(pem: string): string | undefined {
  try {
    const der = decodePemBlocks(pem, 'CERTIFICATE', 'certificate file')[0];
    return der ? sha256Hex(der) : undefined;
  } catch {
    return undefined;
  }
}

function withNewline(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

function iso(value: Date | string): string {
  return typeof value === 'string' ? value : value.toISOString();
}

export type DeployTargetKind = 'file' | 'exec' | 'webhook' | 'verify';

/** Paths a file target wrote, for later targets of the same run (exec's environment). */
export interface DeployedFiles {
  readonly dir: string;
  readonly cert: string;
  readonly chain: string;
  readonly fullchain: string;
  /** Absent when no key file was written. */
  readonly privkey?: string;
}

export interface DeployContext {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /** The fingerprint this target delivered last time (its persisted state), if any. */
  readonly lastDeliveredFingerprint?: string;
  /** Whether an earlier target of this run changed something (so a reload must run again). */
  readonly earlierChanged: boolean;
  /** What earlier file targets of this run wrote (or found unchanged), in order. */
  readonly files: readonly DeployedFiles[];
}

export interface DeployResult {
  readonly outcome: 'deployed' | 'unchanged';
  /** One line for `deploy status` and the log; never a secret. */
  readonly detail: string;
  /** Set by file targets. */
  readonly files?: DeployedFiles;
  /** Set by targets that can undo what they did (file with rollback). */
  readonly undo?: Undo;
}

/** The previous state a target kept: restore it, or discard it (wiping what it held) once not needed. */
export interface Undo {
  restore(): Promise<void>;
  discard(): void;
}

export interface DeployTarget {
  readonly kind: DeployTargetKind;
  /** Stable id for state and status: `file:/etc/keywright/web`, `exec:nginx`, `verify:127.0.0.1:443`. */
  readonly id: string;
  /** Delivers the artifact; throws DeployError('DEPLOY_FAILED') with `retryable` set on failure. */
  deploy(artifact: DeployArtifact, ctx: DeployContext): Promise<DeployResult>;
  /** A read-only check that the artifact is in place (files on disk, certificate served), if it can tell. */
  verify?(artifact: DeployArtifact, ctx: DeployContext): Promise<VerifyResult>;
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly detail: string;
}
