/**
 * SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) of EC and Edwards/Montgomery public keys, built from their
 * JWK: OpenSSL 3's SPKI encoder costs ~200 µs per key here, the JWK export 9 µs, and every issuance
 * encodes its subject's key. The output is byte for byte what node:crypto exports (a unit test holds it
 * to that). RSA and anything unknown give undefined: callers fall back to KeyObject.export.
 * Private keys stay on KeyObject.export where keywright keeps them (a JWK puts the private scalar in a
 * string nobody can wipe); pkcs8FromJwk is for keys handed out at once, already headed for a PEM string.
 */
import type { JsonWebKey } from 'node:crypto';
import { bitString, contextConstructed, integer, octetString, oid, sequence } from './der.js';
import { OID } from './oids.js';

const EC_CURVES: Readonly<Record<string, { readonly oid: string; readonly size: number }>> = {
  'P-256': { oid: OID.prime256v1, size: 32 },
  'P-384': { oid: OID.secp384r1, size: 48 },
};
const OKP_CURVES: Readonly<Record<string, string>> = { Ed25519: OID.ed25519, X25519: OID.x25519 };

function bytes(b64url: string | undefined, size: number): Buffer | undefined {
  if (b64url === undefined) return undefined;
  const out = Buffer.from(b64url, 'base64url');
  if (out.length === size) return out;
  out.fill(0); // it may be a private scalar
  return undefined;
}

/** The uncompressed point 04‖x‖y of an EC JWK (SEC 1 §2.3.3). */
function ecPoint(jwk: JsonWebKey, size: number): Buffer | undefined {
  const x = bytes(jwk.x, size);
  const y = bytes(jwk.y, size);
  return x && y ? Buffer.concat([Buffer.of(0x04), x, y]) : undefined;
}

export function spkiFromJwk(jwk: JsonWebKey): Buffer | undefined {
  if (jwk.kty === 'EC') {
    const curve = jwk.crv === undefined ? undefined : EC_CURVES[jwk.crv];
    const point = curve && ecPoint(jwk, curve.size);
    if (!curve || !point) return undefined;
    return sequence(sequence(oid(OID.ecPublicKey), oid(curve.oid)), bitString(point));
  }
  if (jwk.kty === 'OKP') {
    const algorithm = jwk.crv === undefined ? undefined : OKP_CURVES[jwk.crv];
    const x = bytes(jwk.x, 32);
    if (!algorithm || !x) return undefined;
    return sequence(sequence(oid(algorithm)), bitString(x));
  }
  return undefined;
}

/**
 * PKCS#8 PrivateKeyInfo (RFC 5208) of an EC (RFC 5915 ECPrivateKey, public key included, parameters in
 * the algorithm only) or Ed25519 (RFC 8410) private JWK: byte for byte what OpenSSL 3 exports (a unit
 * test holds it to that), for a fraction of its encoder's cost. The structure is built around a zeroed
 * placeholder and the scalar copied into the result alone, its decoded copy wiped: the caller wipes the
 * result like any exported key. Anything else gives undefined.
 */
export function pkcs8FromJwk(jwk: JsonWebKey): Buffer | undefined {
  let der: Buffer;
  let scalar: Buffer | undefined;
  if (jwk.kty === 'EC') {
    const curve = jwk.crv === undefined ? undefined : EC_CURVES[jwk.crv];
    const point = curve && ecPoint(jwk, curve.size);
    scalar = curve && bytes(jwk.d, curve.size);
    if (!curve || !point || !scalar) return wiped(scalar);
    const publicKey = contextConstructed(1, [bitString(point)]);
    const ecPrivateKey = sequence(integer(1), octetString(Buffer.alloc(curve.size)), publicKey);
    der = sequence(integer(0), sequence(oid(OID.ecPublicKey), oid(curve.oid)), octetString(ecPrivateKey));
    // The placeholder ends where the [1] public key begins, which ends the structure.
    scalar.copy(der, der.length - publicKey.length - curve.size);
  } else if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    scalar = bytes(jwk.d, 32);
    if (!scalar) return undefined;
    der = sequence(integer(0), sequence(oid(OID.ed25519)), octetString(octetString(Buffer.alloc(32))));
    scalar.copy(der, der.length - 32);
  } else {
    return undefined;
  }
  scalar.fill(0);
  return der;
}

function wiped(b: Buffer | undefined): undefined {
  b?.fill(0);
  return undefined;
}
