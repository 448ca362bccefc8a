/**
 * Keys, SubjectPublicKeyInfo and signature algorithms. The AlgorithmIdentifier parameters follow the
 * RFCs exactly: NULL for the RSA PKCS#1 v1.5 algorithms (RFC 4055 §5), absent for ECDSA (RFC 5758 §3.2)
 * and Ed25519 (RFC 8410 §3). Signing is synchronous `crypto.sign` with a cached KeyObject: a threadpool
 * hop costs more than a P-256 signature.
 */
import type { KeyObject } from 'node:crypto';
import { createHash, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { KeyError } from '../core/errors.js';
import type { CertKeyType } from './key-spec.js';
import { nul, oid, sequence, TAG } from './der.js';
import type { DerElement } from './der-reader.js';
import { parseDer, readBitString, readOid } from './der-reader.js';
import { OID } from './oids.js';

export type KeyFamily = 'ec' | 'rsa' | 'ed25519' | 'x25519' | 'other';

export interface KeyInfo {
  readonly family: KeyFamily;
  /** NIST name for EC keys (P-256, P-384, P-521), else undefined. */
  readonly curve?: string;
  /** RSA modulus length. */
  readonly bits?: number;
  readonly publicExponent?: bigint;
  /** The keywright key type when the key is exactly one of them. */
  readonly certKeyType?: CertKeyType;
  /** For messages: "ec-p256", "rsa-2048", "rsa-1024", "ec-secp256k1", "dsa". */
  readonly label: string;
}

const CURVES: Readonly<Record<string, string>> = {
  prime256v1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
};

/** What a KeyObject (public or private) is, from node:crypto's own details; never reads key bytes. */
export function describeKey(key: KeyObject): KeyInfo {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'ec') {
    const named = details.namedCurve ?? 'unknown';
    const curve = CURVES[named] ?? named;
    const certKeyType = curve === 'P-256' ? 'ec-p256' : curve === 'P-384' ? 'ec-p384' : undefined;
    return {
      family: 'ec',
      curve,
      ...(certKeyType ? { certKeyType } : {}),
      label: certKeyType ?? `ec-${named}`,
    };
  }
  if (type === 'rsa') {
    const bits = details.modulusLength ?? 0;
    const certKeyType =
      bits === 2048 || bits === 3072 || bits === 4096 ? (`rsa-${bits}` as CertKeyType) : undefined;
    return {
      family: 'rsa',
      bits,
      ...(details.publicExponent !== undefined ? { publicExponent: details.publicExponent } : {}),
      ...(certKeyType ? { certKeyType } : {}),
      label: `rsa-${bits}`,
    };
  }
  if (type === 'ed25519') return { family: 'ed25519', certKeyType: 'ed25519', label: 'ed25519' };
  if (type === 'x25519') return { family: 'x25519', label: 'x25519' };
  return { family: 'other', label: type ?? 'symmetric' };
}

export type SignatureAlgorithmName =
  | 'ecdsa-with-SHA256'
  | 'ecdsa-with-SHA384'
  | 'ecdsa-with-SHA512'
  | 'sha256WithRSAEncryption'
  | 'sha384WithRSAEncryption'
  | 'sha512WithRSAEncryption'
  | 'Ed25519';

export interface SignatureAlgorithm {
  readonly name: SignatureAlgorithmName;
  readonly oid: string;
  readonly family: 'ec' | 'rsa' | 'ed25519';
  /** The digest node:crypto is given; null for Ed25519, which hashes internally (RFC 8032). */
  readonly hash: 'sha256' | 'sha384' | 'sha512' | null;
  /** The encoded AlgorithmIdentifier. */
  readonly identifier: Buffer;
}

function alg(
  name: SignatureAlgorithmName,
  o: string,
  family: SignatureAlgorithm['family'],
  hash: SignatureAlgorithm['hash'],
): SignatureAlgorithm {
  const identifier = family === 'rsa' ? sequence(oid(o), nul()) : sequence(oid(o));
  return { name, oid: o, family, hash, identifier };
}

export const SIGNATURE_ALGORITHMS: Readonly<Record<SignatureAlgorithmName, SignatureAlgorithm>> = {
  'ecdsa-with-SHA256': alg('ecdsa-with-SHA256', OID.ecdsaWithSHA256, 'ec', 'sha256'),
  'ecdsa-with-SHA384': alg('ecdsa-with-SHA384', OID.ecdsaWithSHA384, 'ec', 'sha384'),
  'ecdsa-with-SHA512': alg('ecdsa-with-SHA512', OID.ecdsaWithSHA512, 'ec', 'sha512'),
  sha256WithRSAEncryption: alg('sha256WithRSAEncryption', OID.sha256WithRSAEncryption, 'rsa', 'sha256'),
  sha384WithRSAEncryption: alg('sha384WithRSAEncryption', OID.sha384WithRSAEncryption, 'rsa', 'sha384'),
  sha512WithRSAEncryption: alg('sha512WithRSAEncryption', OID.sha512WithRSAEncryption, 'rsa', 'sha512'),
  Ed25519: alg('Ed25519', OID.ed25519, 'ed25519', null),
};

const BY_OID: ReadonlyMap<string, SignatureAlgorithm> = new Map(
  Object.values(SIGNATURE_ALGORITHMS).map((a) => [a.oid, a]),
);

/**
 * The algorithm keywright signs with for a key: the hash matched to the curve's strength for ECDSA
 * (RFC 5480 §4), SHA-256 for RSA of any size, pure Ed25519.
 */
export function signatureAlgorithmFor(key: KeyObject): SignatureAlgorithm {
  const info = describeKey(key);
  switch (info.family) {
    case 'ec':
      if (info.curve === 'P-256') return SIGNATURE_ALGORITHMS['ecdsa-with-SHA256'];
      if (info.curve === 'P-384') return SIGNATURE_ALGORITHMS['ecdsa-with-SHA384'];
      break;
    case 'rsa':
      return SIGNATURE_ALGORITHMS.sha256WithRSAEncryption;
    case 'ed25519':
      return SIGNATURE_ALGORITHMS.Ed25519;
    case 'x25519':
    case 'other':
      break;
  }
  throw new KeyError(
    'KEY_TYPE_UNSUPPORTED',
    `a ${info.label} key cannot sign certificates; use ec-p256, ec-p384, rsa-* or ed25519`,
    {
      details: { keyType: info.label },
    },
  );
}

/**
 * Reads an AlgorithmIdentifier naming a signature algorithm keywright verifies. Parameters must be as the
 * RFCs require (NULL or absent for RSA, absent for ECDSA and Ed25519); anything else is unsupported.
 */
export function readSignatureAlgorithm(el: DerElement, label: string): SignatureAlgorithm | undefined {
  const r = el.expect(TAG.SEQUENCE, label).reader();
  const o = readOid(r.next(`${label} algorithm`, TAG.OID));
  const params = r.optional(TAG.NULL);
  r.end(label);
  const found = BY_OID.get(o);
  if (!found) return undefined;
  if (params && (found.family !== 'rsa' || params.content.length !== 0)) return undefined;
  return found;
}

/** Signs `data`; ECDSA signatures come DER-encoded (Ecdsa-Sig-Value, RFC 5758 §3.2) as X.509 wants. */
export function signBytes(algorithm: SignatureAlgorithm, privateKey: KeyObject, data: Uint8Array): Buffer {
  if (algorithm.family === 'ec')
    return nodeSign(algorithm.hash, data, { key: privateKey, dsaEncoding: 'der' });
  return nodeSign(algorithm.hash, data, privateKey);
}

export function verifyBytes(
  algorithm: SignatureAlgorithm,
  publicKey: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  const info = describeKey(publicKey);
  if (info.family !== algorithm.family) return false;
  try {
    if (algorithm.family === 'ec')
      return nodeVerify(algorithm.hash, data, { key: publicKey, dsaEncoding: 'der' }, signature);
    return nodeVerify(algorithm.hash, data, publicKey, signature);
  } catch {
    return false;
  }
}

interface SpkiInfo {
  readonly der: Buffer;
  /** The subjectPublicKey BIT STRING value, without the unused-bits octet. */
  readonly keyBits: Buffer;
  /** RFC 5280 §4.2.1.2 method 1: SHA-1 of keyBits. */
  readonly keyId: Buffer;
}

const spkiCache = new WeakMap<KeyObject, SpkiInfo>();

function publicOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

/** The SubjectPublicKeyInfo of a key, with its key bits and key identifier; cached per KeyObject. */
export function spkiOf(key: KeyObject): SpkiInfo {
  const cached = spkiCache.get(key);
  if (cached) return cached;
  const der = publicOf(key).export({ type: 'spki', format: 'der' });
  const keyBits = subjectPublicKeyBits(der);
  const info = { der, keyBits, keyId: createHash('sha1').update(keyBits).digest() };
  spkiCache.set(key, info);
  return info;
}

/** The subjectPublicKey bits of an encoded SubjectPublicKeyInfo (RFC 5280 §4.1.2.7). */
export function subjectPublicKeyBits(spki: Uint8Array): Buffer {
  const r = parseDer(spki, 'SubjectPublicKeyInfo').expect(TAG.SEQUENCE, 'SubjectPublicKeyInfo').reader();
  r.next('algorithm', TAG.SEQUENCE);
  const bits = readBitString(r.next('subjectPublicKey', TAG.BIT_STRING), 'subjectPublicKey');
  r.end('SubjectPublicKeyInfo');
  return bits.bytes;
}

/** SKI by RFC 5280 §4.2.1.2 method 1: the SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(key: KeyObject): Buffer {
  return spkiOf(key).keyId;
}

/** True when the private key is the other half of the public key (their SPKIs are identical). */
export function keysMatch(privateKey: KeyObject, publicKey: KeyObject): boolean {
  return spkiOf(privateKey).der.equals(spkiOf(publicKey).der);
}

/** A public KeyObject from SPKI DER; throws PKI_PARSE on keys OpenSSL cannot read. */
export function publicKeyFromSpki(spki: Uint8Array, what: string): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new KeyError('KEY_INVALID', `${what}: the public key cannot be read`, { cause, details: { what } });
  }
}
