/**
 * Keys, SubjectPublicKeyInfo and signature algorithms. The AlgorithmIdentifier parameters follow the
 * RFCs exactly: NULL for the RSA PKCS#1 v1.5 algorithms (RFC 4055 §5), absent for ECDSA (RFC 5758 §3.2)
 * and Ed25519 (RFC 8410 §3). Signing is synchronous `crypto.sign` with a cached KeyObject: a threadpool
 * hop costs more than a P-256 signature.
 */
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { createHash, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { KeyError } from '../core/errors.js';
import type { CertKeyType } from './key-spec.js';
import { nul, oid, sequence, TAG } from './der.js';
import type { DerElement } from './der-reader.js';
import { parseDer, readBitString, readIntegerBytes, readOid } from './der-reader.js';
import { spkiFromJwk } from './key-der.js';
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

const describeCache = new WeakMap<KeyObject, KeyInfo>();

/** What a KeyObject (public or private) is, from node:crypto's own details; never reads key bytes. Cached per KeyObject. */
export function describeKey(key: KeyObject): KeyInfo {
  let info = describeCache.get(key);
  if (!info) {
    info = computeKeyInfo(key);
    describeCache.set(key, info);
  }
  return info;
}

/**
 * The curve of a public EC key from its JWK (~9 µs) rather than asymmetricKeyDetails, which asks OpenSSL
 * for the curve name (~120 µs here, on every new key of every request). Public keys only: a private
 * key's JWK would put its scalar in a string nobody can wipe.
 */
function publicCurveName(key: KeyObject): string | undefined {
  if (key.type !== 'public') return undefined;
  try {
    const crv = key.export({ format: 'jwk' }).crv;
    return crv === 'P-256' ? 'prime256v1' : crv === 'P-384' ? 'secp384r1' : undefined;
  } catch {
    return undefined; // a curve JWK cannot express
  }
}

function computeKeyInfo(key: KeyObject): KeyInfo {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const named = publicCurveName(key) ?? key.asymmetricKeyDetails?.namedCurve ?? 'unknown';
    const curve = CURVES[named] ?? named;
    const certKeyType = curve === 'P-256' ? 'ec-p256' : curve === 'P-384' ? 'ec-p384' : undefined;
    return {
      family: 'ec',
      curve,
      ...(certKeyType ? { certKeyType } : {}),
      label: certKeyType ?? `ec-${named}`,
    };
  }
  const details = key.asymmetricKeyDetails ?? {};
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

const publicKeys = new WeakMap<KeyObject, KeyObject>();

/**
 * The public half of a key (itself when public), one KeyObject per private key: its SPKI, once spkiOf
 * has encoded it for either half, is not encoded again (an EC public export costs ~70 µs in OpenSSL 3).
 */
export function publicKeyOf(key: KeyObject): KeyObject {
  if (key.type !== 'private') return key;
  let pub = publicKeys.get(key);
  if (pub === undefined) {
    pub = createPublicKey(key);
    publicKeys.set(key, pub);
  }
  return pub;
}

/** The SubjectPublicKeyInfo of a key, with its key bits and key identifier; cached per KeyObject. */
export function spkiOf(key: KeyObject): SpkiInfo {
  const cached = spkiCache.get(key);
  if (cached) return cached;
  const pub = publicKeyOf(key);
  const known = pub === key ? undefined : spkiCache.get(pub);
  if (known) {
    spkiCache.set(key, known);
    return known;
  }
  const der =
    (pub.asymmetricKeyType === 'rsa' ? undefined : spkiFromJwk(pub.export({ format: 'jwk' }))) ??
    pub.export({ type: 'spki', format: 'der' });
  const info = rememberSpki(key, der);
  if (pub !== key) spkiCache.set(pub, info);
  return info;
}

/** Records the SPKI of `key` already known to the caller (built with its key pair), for spkiOf. */
export function rememberSpki(key: KeyObject, der: Buffer): SpkiInfo {
  const keyBits = subjectPublicKeyBits(der);
  const info = { der, keyBits, keyId: createHash('sha1').update(keyBits).digest() };
  spkiCache.set(key, info);
  return info;
}

function readSpki(spki: Uint8Array): { algorithm: string; params: DerElement | undefined; keyBits: Buffer } {
  const r = parseDer(spki, 'SubjectPublicKeyInfo').expect(TAG.SEQUENCE, 'SubjectPublicKeyInfo').reader();
  const alg = r.next('algorithm', TAG.SEQUENCE).reader();
  const algorithm = readOid(alg.next('algorithm', TAG.OID));
  const params = alg.items[1];
  if (alg.items.length > 2) alg.parent.fail('algorithm: trailing elements');
  const bits = readBitString(r.next('subjectPublicKey', TAG.BIT_STRING), 'subjectPublicKey');
  r.end('SubjectPublicKeyInfo');
  if (bits.unused !== 0) r.parent.fail('subjectPublicKey: unused bits');
  return { algorithm, params, keyBits: bits.bytes };
}

/** The subjectPublicKey bits of an encoded SubjectPublicKeyInfo (RFC 5280 §4.1.2.7). */
export function subjectPublicKeyBits(spki: Uint8Array): Buffer {
  return readSpki(spki).keyBits;
}

const JWK_CURVES: ReadonlyMap<string, { crv: string; size: number }> = new Map([
  [OID.prime256v1, { crv: 'P-256', size: 32 }],
  [OID.secp384r1, { crv: 'P-384', size: 48 }],
]);

/**
 * The same key as a JWK, for the common shapes (named-curve EC with an uncompressed point, Ed25519, RSA
 * with NULL or absent parameters). node:crypto imports a JWK in about half the time OpenSSL 3's DER
 * decoder takes; anything else goes to the decoder. Both paths validate the key (the EC point is checked
 * to be on the curve).
 */
function jwkOf(algorithm: string, params: DerElement | undefined, keyBits: Buffer): JsonWebKey | undefined {
  if (algorithm === OID.ecPublicKey && params?.tag === TAG.OID) {
    const curve = JWK_CURVES.get(readOid(params));
    if (!curve || keyBits.length !== 1 + 2 * curve.size || keyBits[0] !== 0x04) return undefined;
    const x = keyBits.subarray(1, 1 + curve.size).toString('base64url');
    const y = keyBits.subarray(1 + curve.size).toString('base64url');
    return { kty: 'EC', crv: curve.crv, x, y };
  }
  if (algorithm === OID.ed25519 && params === undefined && keyBits.length === 32) {
    return { kty: 'OKP', crv: 'Ed25519', x: keyBits.toString('base64url') };
  }
  if (
    algorithm === OID.rsaEncryption &&
    (params === undefined || (params.tag === TAG.NULL && params.content.length === 0))
  ) {
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 §A.1.1)
    const r = parseDer(keyBits, 'RSAPublicKey').expect(TAG.SEQUENCE, 'RSAPublicKey').reader();
    const n = readIntegerBytes(r.next('modulus', TAG.INTEGER), 'modulus');
    const e = readIntegerBytes(r.next('publicExponent', TAG.INTEGER), 'publicExponent');
    r.end('RSAPublicKey');
    if ((n[0]! & 0x80) !== 0 || (e[0]! & 0x80) !== 0) return undefined;
    const strip = (b: Buffer): string =>
      (b.length > 1 && b[0] === 0 ? b.subarray(1) : b).toString('base64url');
    return { kty: 'RSA', n: strip(n), e: strip(e) };
  }
  return undefined;
}

/** SKI by RFC 5280 §4.2.1.2 method 1: the SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(key: KeyObject): Buffer {
  return spkiOf(key).keyId;
}

/** True when the private key is the other half of the public key (compared as keys, not as encodings). */
export function keysMatch(privateKey: KeyObject, publicKey: KeyObject): boolean {
  return publicKeyOf(privateKey).equals(publicKeyOf(publicKey));
}

/**
 * A public KeyObject from SPKI DER; KEY_INVALID on keys OpenSSL cannot read. The DER given is remembered
 * as the key's SPKI, so certifying a key from a CSR copies the requester's SubjectPublicKeyInfo as is
 * (as Go's crypto/x509 does) and skips an OpenSSL re-encode, which costs as much as the signature.
 */
export function publicKeyFromSpki(spki: Uint8Array, what: string): KeyObject {
  try {
    const der = Buffer.from(spki);
    const { algorithm, params, keyBits } = readSpki(der);
    const jwk = jwkOf(algorithm, params, keyBits);
    const key = jwk
      ? createPublicKey({ key: jwk, format: 'jwk' })
      : createPublicKey({ key: der, format: 'der', type: 'spki' });
    spkiCache.set(key, { der, keyBits, keyId: createHash('sha1').update(keyBits).digest() });
    return key;
  } catch (cause) {
    throw new KeyError('KEY_INVALID', `${what}: the public key cannot be read`, { cause, details: { what } });
  }
}
