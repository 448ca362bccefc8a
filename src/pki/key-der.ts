/**
 * SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) of EC and Edwards/Montgomery public keys, built from their
 * JWK: OpenSSL 3's SPKI encoder costs ~200 µs per key here, the JWK export 9 µs, and every issuance
 * encodes its subject's key. The output is byte for byte what node:crypto exports (a unit test holds it
 * to that). RSA and anything unknown give undefined: callers fall back to KeyObject.export.
 * (Private keys stay on KeyObject.export: a JWK would put the private scalar in an unwipeable string.)
 */
import type { JsonWebKey } from 'node:crypto';
import { bitString, oid, sequence } from './der.js';
import { OID } from './oids.js';

const EC_CURVES: Readonly<Record<string, { readonly oid: string; readonly size: number }>> = {
  'P-256': { oid: OID.prime256v1, size: 32 },
  'P-384': { oid: OID.secp384r1, size: 48 },
};
const OKP_CURVES: Readonly<Record<string, string>> = { Ed25519: OID.ed25519, X25519: OID.x25519 };

function bytes(b64url: string | undefined, size: number): Buffer | undefined {
  if (b64url === undefined) return undefined;
  const out = Buffer.from(b64url, 'base64url');
  return out.length === size ? out : undefined;
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
