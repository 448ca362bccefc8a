import { createPrivateKey, createPublicKey, generateKeyPair as generateKeyPairCb } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { KeyError } from '../core/errors.js';
import { KEY_SPECS } from '../pki/key-spec.js';
import { pkcs8FromJwk, spkiFromJwk } from '../pki/key-der.js';
import { rememberSpki } from '../pki/algorithms.js';
import type { KeyType } from '../pki/key-spec.js';

const generateKeyPairAsync = promisify(generateKeyPairCb);

export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** RSA public exponent F4; every CA and browser expects it, and smaller ones invite attacks. */
const RSA_PUBLIC_EXPONENT = 0x10001;

/**
 * A fresh key pair of a supported type, always generated on the threadpool. RSA-4096 takes up to 3 s
 * and must not block the event loop; EC and Edwards keys (~0.1 ms) would be cheaper inline, but Node
 * 20's generateKeyPairSync leaves its job to the garbage collector, whose finaliser takes the new key's
 * lock: a collection during a later JWK export of that key (which holds the lock while it allocates)
 * deadlocks the process. Seen here: a loop of generateKeyPairSync + export({ format: 'jwk' }) hangs in
 * a few seconds to minutes; the async form frees its job right after the callback (test/unit/keys).
 */
export async function generateKeyPair(type: KeyType): Promise<KeyPair> {
  const spec = KEY_SPECS[type];
  try {
    switch (spec.family) {
      case 'ec':
        return await generateKeyPairAsync('ec', { namedCurve: spec.namedCurve ?? 'P-256' });
      case 'rsa':
        return await generateKeyPairAsync('rsa', {
          modulusLength: spec.modulusLength ?? 2048,
          publicExponent: RSA_PUBLIC_EXPONENT,
        });
      case 'ed25519':
        return await generateKeyPairAsync('ed25519');
      case 'x25519':
        return await generateKeyPairAsync('x25519');
    }
  } catch (err) {
    throw new KeyError('KEY_GENERATION_FAILED', `generating a ${type} key pair failed`, {
      cause: err,
      details: { keyType: type },
    });
  }
}

/**
 * A key pair for a key handed out at once and kept nowhere (POST /v1/cas/{ca}/issue), with its PKCS#8.
 * For EC and Ed25519 one JWK export (~30 µs) gives both the PKCS#8 and the SPKI (remembered for spkiOf),
 * instead of OpenSSL 3's public JWK export and PKCS#8 encoder (~0.15 ms per issuance here, most of the
 * key's cost). The JWK's private scalar stays in a string until garbage collection: no worse than the PEM
 * string the caller is sent, and why sealed keys keep exportPkcs8Der. The caller wipes pkcs8Der.
 */
export async function generateKeyToHandOut(type: KeyType): Promise<KeyPair & { readonly pkcs8Der: Buffer }> {
  const pair = await generateKeyPair(type);
  const family = KEY_SPECS[type].family;
  if (family === 'ec' || family === 'ed25519') {
    const jwk = pair.privateKey.export({ format: 'jwk' });
    const pkcs8Der = pkcs8FromJwk(jwk);
    const spki = spkiFromJwk(jwk);
    if (pkcs8Der && spki) {
      rememberSpki(pair.publicKey, spki);
      return { ...pair, pkcs8Der };
    }
    pkcs8Der?.fill(0); // not handed out: OpenSSL's encoder makes the one that is
  }
  return { ...pair, pkcs8Der: exportPkcs8Der(pair.privateKey) };
}

/** OpenSSL's curve names, as KeyObject.asymmetricKeyDetails reports them. */
const EC_CURVES: Readonly<Record<string, KeyType>> = { prime256v1: 'ec-p256', secp384r1: 'ec-p384' };
const RSA_SIZES: Readonly<Record<number, KeyType>> = { 2048: 'rsa-2048', 3072: 'rsa-3072', 4096: 'rsa-4096' };

/** The keywright type of a private or public key; throws KEY_TYPE_UNSUPPORTED for anything else. */
export function keyTypeOf(key: KeyObject): KeyType {
  const unsupported = (what: string): KeyError =>
    new KeyError(
      'KEY_TYPE_UNSUPPORTED',
      `${what} is not supported; use one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096, ed25519, x25519`,
      { details: { asymmetricKeyType: key.asymmetricKeyType ?? key.type } },
    );
  if (key.type === 'secret') throw unsupported('a symmetric key');
  const details = key.asymmetricKeyDetails ?? {};
  const kind = key.asymmetricKeyType;
  if (kind === 'ed25519' || kind === 'x25519') return kind;
  if (kind === 'ec') {
    const found = details.namedCurve === undefined ? undefined : EC_CURVES[details.namedCurve];
    if (found) return found;
    throw unsupported(`EC curve ${details.namedCurve ?? '(unnamed)'}`);
  }
  if (kind === 'rsa') {
    const found = details.modulusLength === undefined ? undefined : RSA_SIZES[details.modulusLength];
    if (!found) throw unsupported(`RSA with a ${details.modulusLength ?? '?'}-bit modulus`);
    if (details.publicExponent !== undefined && details.publicExponent !== BigInt(RSA_PUBLIC_EXPONENT)) {
      throw unsupported(`RSA with public exponent ${details.publicExponent}`);
    }
    return found;
  }
  throw unsupported(`key type ${kind ?? 'unknown'}`);
}

/** PKCS#8 DER of a private key: the one form keywright seals. The caller wipes the buffer. */
export function exportPkcs8Der(key: KeyObject): Buffer {
  if (key.type !== 'private') {
    throw new KeyError('KEY_INVALID', `expected a private key, got a ${key.type} key`, {
      details: { keyKind: key.type },
    });
  }
  // Not through the JWK (cheaper, see pki/key-der.ts): that would put the private scalar in a JS string
  // nobody can wipe, where this Buffer is wiped by the caller.
  return key.export({ type: 'pkcs8', format: 'der' });
}

const PEM_BEGIN = '-----BEGIN ';

/**
 * A private key from PEM (PKCS#8, SEC1 `EC PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY`) or the same three in
 * DER. Encrypted keys and anything else are KEY_INVALID; a parsed key of an unsupported type (RSA-1024,
 * secp256k1 …) is KEY_TYPE_UNSUPPORTED. The caller wipes `input`.
 */
export function importPrivateKey(input: Buffer | string): KeyObject {
  const key = typeof input === 'string' || looksLikePem(input) ? importPem(input) : importDer(input);
  keyTypeOf(key);
  return key;
}

function looksLikePem(input: Buffer): boolean {
  // A PEM file may start with explanatory text; DER starts with a SEQUENCE tag (0x30).
  return input[0] !== 0x30 && input.includes(PEM_BEGIN);
}

function importPem(input: Buffer | string): KeyObject {
  const text = typeof input === 'string' ? input : input.toString('latin1');
  const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
  if (label === undefined) {
    throw new KeyError('KEY_INVALID', 'the private key is neither PEM nor DER (no -----BEGIN line found)');
  }
  if (label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type: 4,ENCRYPTED/.test(text)) {
    throw new KeyError(
      'KEY_INVALID',
      'the private key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN.pem) and import the plain key',
      { details: { pemLabel: label } },
    );
  }
  if (!['PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY'].includes(label)) {
    throw new KeyError(
      'KEY_INVALID',
      `expected a PEM private key (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY), got ${label}`,
      { details: { pemLabel: label } },
    );
  }
  try {
    return createPrivateKey({ key: text, format: 'pem' });
  } catch (err) {
    throw new KeyError('KEY_INVALID', `the PEM ${label} block could not be parsed`, {
      cause: err,
      details: { pemLabel: label },
    });
  }
}

function importDer(der: Buffer): KeyObject {
  for (const type of ['pkcs8', 'sec1', 'pkcs1'] as const) {
    try {
      return createPrivateKey({ key: der, format: 'der', type });
    } catch {
      // try the next encoding
    }
  }
  throw new KeyError(
    'KEY_INVALID',
    'the private key is neither PEM nor DER PKCS#8, SEC1 or PKCS#1 (is it a public key, a certificate or encrypted?)',
  );
}

// --- X25519 for WireGuard ---------------------------------------------------------------------------
// WireGuard keys are the raw 32-byte X25519 scalars and u-coordinates of RFC 7748 §5, shown as base64.

/** PKCS#8 header of an X25519 private key (RFC 8410 §7): the raw 32 bytes follow. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** An X25519 private key from its raw 32 bytes (a WireGuard private key, base64-decoded). */
export function x25519PrivateKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) {
    throw new KeyError('KEY_INVALID', `an X25519 private key is 32 bytes, got ${raw.length}`, {
      details: { length: raw.length },
    });
  }
  const der = Buffer.concat([X25519_PKCS8_PREFIX, raw]);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

/** The raw 32-byte private scalar; `.toString('base64')` is WireGuard's PrivateKey. The caller wipes it. */
export function x25519RawPrivate(key: KeyObject): Buffer {
  requireX25519(key, 'private');
  return jwkBytes(key.export({ format: 'jwk' }).d);
}

/** The raw 32-byte public u-coordinate of a private or public key; base64 of it is WireGuard's PublicKey. */
export function x25519RawPublic(key: KeyObject): Buffer {
  requireX25519(key);
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return jwkBytes(publicKey.export({ format: 'jwk' }).x);
}

function requireX25519(key: KeyObject, kind?: 'private'): void {
  if (key.asymmetricKeyType !== 'x25519' || (kind !== undefined && key.type !== kind)) {
    throw new KeyError(
      'KEY_INVALID',
      `expected an X25519 ${kind ?? ''} key, got ${key.asymmetricKeyType ?? 'a'} ${key.type} key`.replace(
        / +/g,
        ' ',
      ),
      { details: { asymmetricKeyType: key.asymmetricKeyType ?? key.type, keyKind: key.type } },
    );
  }
}

function jwkBytes(field: string | undefined): Buffer {
  if (field === undefined) throw new KeyError('KEY_INVALID', 'the key exported no JWK coordinate');
  return Buffer.from(field, 'base64url');
}
