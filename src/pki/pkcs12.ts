/**
 * PKCS#12 bundles (RFC 7292) with the algorithms OpenSSL 3 writes by default and reads without -legacy:
 * PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC (RFC 8018 §6.2, RFC 9579) for both the certificates and
 * the shrouded key, and an HMAC-SHA256 MAC keyed by the PKCS#12 KDF (RFC 7292 Appendix B).
 *
 * The key bag comes straight from node:crypto's encrypted PKCS#8 export, so the plaintext private key
 * never exists as bytes in JavaScript memory.
 */
import type { KeyObject } from 'node:crypto';
import { createCipheriv, createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { KeyError, ValidationError } from '../core/errors.js';
import { keysMatch } from './algorithms.js';
import { parseCertificate } from './certificate.js';
import {
  bmpString,
  contextConstructed,
  contextPrimitive,
  explicit,
  integer,
  nul,
  octetString,
  oid,
  sequence,
  sequenceOf,
  setOf,
} from './der.js';
import { OID } from './oids.js';

/** OpenSSL 3's default (PKCS12_DEFAULT_ITER) and what node:crypto uses for encrypted PKCS#8. */
export const PKCS12_ITERATIONS = 2048;

export interface Pkcs12Input {
  readonly privateKey: KeyObject;
  /** The end-entity certificate (DER). */
  readonly certificate: Uint8Array;
  /** Issuer certificates (DER), nearest first. */
  readonly chain?: readonly Uint8Array[];
  readonly password: string;
  /** Shown by importers as the entry's name (PKCS#9 friendlyName). */
  readonly friendlyName?: string;
  readonly iterations?: number;
  /** Source of salts and IVs; injectable for tests. */
  readonly random?: (size: number) => Buffer;
}

function pbes2Params(salt: Buffer, iterations: number, iv: Buffer): Buffer {
  const prf = sequence(oid(OID.hmacWithSHA256), nul());
  const kdf = sequence(oid(OID.pbkdf2), sequence(octetString(salt), integer(iterations), prf));
  return sequence(oid(OID.pbes2), sequence(kdf, sequence(oid(OID.aes256Cbc), octetString(iv))));
}

/** PBES2 encryption (RFC 8018 §6.2.1); the password is used as its UTF-8 bytes, as OpenSSL does. */
function pbes2Encrypt(
  plaintext: Buffer,
  password: string,
  iterations: number,
  random: (n: number) => Buffer,
) {
  const salt = random(16);
  const iv = random(16);
  const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  key.fill(0);
  return { algorithm: pbes2Params(salt, iterations, iv), ciphertext };
}

/** RFC 7292 Appendix B.2 key derivation, with SHA-256 (u = 32, v = 64); id 3 makes a MAC key. */
export function pkcs12Kdf(
  password: string,
  salt: Buffer,
  iterations: number,
  id: number,
  size: number,
): Buffer {
  const u = 32;
  const v = 64;
  // Appendix B.1: the password as a BMPString with a two-octet NUL terminator
  const pass = Buffer.concat([Buffer.from(password, 'utf16le').swap16(), Buffer.alloc(2)]);
  const repeat = (src: Buffer): Buffer => {
    if (src.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([repeat(salt), repeat(pass)]);
  const out: Buffer[] = [];
  for (let produced = 0; produced < size; produced += u) {
    let A = createHash('sha256').update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = createHash('sha256').update(A).digest();
    out.push(A);
    const B = Buffer.alloc(v);
    for (let i = 0; i < v; i++) B[i] = A[i % u]!;
    for (let j = 0; j < I.length; j += v) {
      // I_j = (I_j + B + 1) mod 2^(8v), big-endian
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  pass.fill(0);
  return Buffer.concat(out).subarray(0, size);
}

function attributes(localKeyId: Buffer, friendlyName: string | undefined): Buffer {
  const attrs = [sequence(oid(OID.localKeyId), setOf([octetString(localKeyId)]))];
  if (friendlyName !== undefined)
    attrs.push(sequence(oid(OID.friendlyName), setOf([bmpString(friendlyName)])));
  return setOf(attrs);
}

function certBag(der: Uint8Array, attrs?: Buffer): Buffer {
  const value = sequence(oid(OID.x509Certificate), explicit(0, octetString(der)));
  return attrs
    ? sequence(oid(OID.certBag), explicit(0, value), attrs)
    : sequence(oid(OID.certBag), explicit(0, value));
}

/** Builds the PFX; OpenSSL 3 opens it with `openssl pkcs12 -passin pass:…` and no -legacy. */
export function buildPkcs12(input: Pkcs12Input): Buffer {
  const { password } = input;
  const iterations = input.iterations ?? PKCS12_ITERATIONS;
  const random = input.random ?? randomBytes;
  if (password.length === 0) {
    throw new ValidationError('INVALID_ARGUMENT', 'a PKCS#12 bundle needs a non-empty password', {
      details: { field: 'password' },
    });
  }
  if (!Number.isInteger(iterations) || iterations < 1000 || iterations > 10_000_000) {
    throw new ValidationError('INVALID_ARGUMENT', 'PKCS#12 iterations must be 1000 to 10000000', {
      details: { field: 'iterations' },
    });
  }
  const cert = parseCertificate(input.certificate);
  if (!keysMatch(input.privateKey, cert.publicKey)) {
    throw new KeyError('KEY_INVALID', 'the private key does not belong to the certificate', {
      details: { serial: cert.serialHex },
    });
  }
  // openssl links key and certificate by the certificate's SHA-1 fingerprint
  const localKeyId = createHash('sha1').update(cert.der).digest();
  const attrs = attributes(localKeyId, input.friendlyName);

  const certContents = sequenceOf([certBag(cert.der, attrs), ...(input.chain ?? []).map((c) => certBag(c))]);
  const enc = pbes2Encrypt(certContents, password, iterations, random);
  // EncryptedData { version 0, EncryptedContentInfo { data, alg, [0] IMPLICIT OCTET STRING } } (RFC 5652 §8)
  const encryptedData = sequence(
    integer(0),
    sequence(oid(OID.data), enc.algorithm, contextPrimitive(0, enc.ciphertext)),
  );

  const shrouded = input.privateKey.export({
    type: 'pkcs8',
    format: 'der',
    cipher: 'aes-256-cbc',
    passphrase: password,
  });
  const keyContents = sequenceOf([sequence(oid(OID.pkcs8ShroudedKeyBag), explicit(0, shrouded), attrs)]);

  const authSafe = sequenceOf([
    sequence(oid(OID.encryptedData), contextConstructed(0, [encryptedData])),
    sequence(oid(OID.data), explicit(0, octetString(keyContents))),
  ]);

  const macSalt = random(16);
  const macKey = pkcs12Kdf(password, macSalt, iterations, 3, 32);
  const mac = createHmac('sha256', macKey).update(authSafe).digest();
  macKey.fill(0);
  const macData = sequence(
    sequence(sequence(oid(OID.sha256)), octetString(mac)),
    octetString(macSalt),
    integer(iterations),
  );

  return sequence(integer(3), sequence(oid(OID.data), explicit(0, octetString(authSafe))), macData);
}
