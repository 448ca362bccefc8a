/**
 * X.509 v3 certificates (RFC 5280 §4.1): a TBSCertificate model, its DER encoding, signing, and a strict
 * parser for inspection. The model carries exactly what will be encoded, nothing is defaulted on the way
 * to the wire, so a check run on the model is a check of the bytes that get signed.
 */
import type { KeyObject } from 'node:crypto';
import { KeyError, PkiError } from '../core/errors.js';
import { bitString, explicit, integer, sequence, TAG, tlv, x509Time } from './der.js';
import type { DerElement } from './der-reader.js';
import { parseDer, readBitString, readIntegerBytes, readOid, readSmallInt, readTime } from './der-reader.js';
import type { SignatureAlgorithm } from './algorithms.js';
import {
  publicKeyFromSpki,
  readSignatureAlgorithm,
  signatureAlgorithmFor,
  signBytes,
  spkiOf,
  subjectPublicKeyBits,
  verifyBytes,
} from './algorithms.js';
import type { Extension } from './extensions.js';
import { decodeExtensions, encodeExtensions, findExtension } from './extensions.js';
import type { ParsedName } from './name.js';
import { parseNameElement } from './name.js';
import { derOrPem, encodePem } from './pem.js';

export interface TbsCertificate {
  /** INTEGER content octets exactly as encoded (two's complement, as on the wire). */
  readonly serialNumber: Buffer;
  readonly signatureAlgorithm: SignatureAlgorithm;
  /** Copied from the issuer certificate's subject, byte for byte. */
  readonly issuer: ParsedName;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subject: ParsedName;
  readonly subjectPublicKey: KeyObject;
  readonly extensions: readonly Extension[];
}

const VERSION_3 = explicit(0, integer(2));

/** TBSCertificate DER (§4.1.2): always v3, times per §4.1.2.5, extensions in [3] EXPLICIT. */
export function encodeTbsCertificate(tbs: TbsCertificate): Buffer {
  const parts: Buffer[] = [
    VERSION_3,
    tlv(TAG.INTEGER, tbs.serialNumber),
    tbs.signatureAlgorithm.identifier,
    tbs.issuer.der,
    sequence(x509Time(tbs.notBefore), x509Time(tbs.notAfter)),
    tbs.subject.der,
    spkiOf(tbs.subjectPublicKey).der,
  ];
  if (tbs.extensions.length > 0) parts.push(explicit(3, encodeExtensions(tbs.extensions)));
  return sequence(...parts);
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue } (§4.1.1). */
export function assembleSigned(
  tbsDer: Uint8Array,
  algorithm: SignatureAlgorithm,
  signature: Uint8Array,
): Buffer {
  return sequence(tbsDer, algorithm.identifier, bitString(signature));
}

/**
 * Encodes and signs a TBSCertificate with the issuer's key (synchronous crypto.sign). The algorithm in the
 * TBS must be the one the key signs with, so the inner and outer signature fields agree (§4.1.1.2).
 */
export function signCertificate(tbs: TbsCertificate, issuerKey: KeyObject): Buffer {
  const expected = signatureAlgorithmFor(issuerKey);
  if (expected.name !== tbs.signatureAlgorithm.name) {
    throw new KeyError(
      'KEY_INVALID',
      `the TBS names ${tbs.signatureAlgorithm.name} but the issuer key signs ${expected.name}`,
      {
        details: { expected: expected.name, actual: tbs.signatureAlgorithm.name },
      },
    );
  }
  const tbsDer = encodeTbsCertificate(tbs);
  return assembleSigned(tbsDer, expected, signBytes(expected, issuerKey, tbsDer));
}

export function certificateToPem(der: Uint8Array): string {
  return encodePem('CERTIFICATE', der);
}

/** Lowercase hex of a serial's magnitude, no sign octet: the form keywright stores, logs and looks up. */
export function serialHexOf(content: Uint8Array): string {
  const buf = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  return (buf.length > 1 && buf[0] === 0 ? buf.subarray(1) : buf).toString('hex');
}

/**
 * The canonical serial, as `serialHexOf` writes it: lowercase hex of the magnitude's octets (an even
 * number of digits, so `0d…` keeps its zero nibble), no separators, no zero octets in front.
 */
export function normaliseSerial(serialHex: string): string {
  const digits = serialHex.replace(/:/g, '').toLowerCase().replace(/^0+/, '');
  if (digits === '') return '00';
  return digits.length % 2 ? `0${digits}` : digits;
}

/** A parsed certificate. Fields are views into `der`; the public key is decoded on first use. */
export class ParsedCertificate {
  #publicKey: KeyObject | undefined;

  constructor(
    readonly der: Buffer,
    readonly tbsDer: Buffer,
    readonly version: number,
    readonly serialNumber: Buffer,
    readonly signatureAlgorithm: SignatureAlgorithm | undefined,
    readonly signatureAlgorithmOid: string,
    readonly issuer: ParsedName,
    readonly notBefore: Date,
    readonly notAfter: Date,
    readonly subject: ParsedName,
    readonly spkiDer: Buffer,
    readonly extensions: readonly Extension[],
    readonly signatureValue: Buffer,
  ) {}

  get serialHex(): string {
    return serialHexOf(this.serialNumber);
  }

  /** The subjectPublicKey BIT STRING value (what SKI and OCSP issuerKeyHash are computed over). */
  get keyBits(): Buffer {
    return subjectPublicKeyBits(this.spkiDer);
  }

  get publicKey(): KeyObject {
    this.#publicKey ??= publicKeyFromSpki(this.spkiDer, 'certificate subjectPublicKeyInfo');
    return this.#publicKey;
  }

  get pem(): string {
    return certificateToPem(this.der);
  }

  get isCa(): boolean {
    return findExtension(this.extensions, 'basicConstraints')?.ca === true;
  }

  get selfIssued(): boolean {
    return this.issuer.der.equals(this.subject.der);
  }

  /** Whether `issuer`'s key made this certificate's signature. */
  verifySignature(issuerPublicKey: KeyObject): boolean {
    return (
      this.signatureAlgorithm !== undefined &&
      verifyBytes(this.signatureAlgorithm, issuerPublicKey, this.tbsDer, this.signatureValue)
    );
  }
}

interface TbsFields {
  readonly version: number;
  readonly serial: Buffer;
  readonly sigEl: DerElement;
  readonly sigOid: string;
  readonly sigAlg: SignatureAlgorithm | undefined;
  readonly issuer: ParsedName;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subject: ParsedName;
  readonly spki: Buffer;
  readonly extensions: Extension[];
}

function parseTbs(el: DerElement): TbsFields {
  const r = el.expect(TAG.SEQUENCE, 'TBSCertificate').reader();
  const v = r.optional(0xa0);
  let version = 1;
  if (v) {
    const inner = v.reader();
    version = readSmallInt(inner.next('version', TAG.INTEGER), 'version') + 1;
    inner.end('version');
  }
  const serial = readIntegerBytes(r.next('serialNumber', TAG.INTEGER), 'serialNumber');
  const sigEl = r.next('signature', TAG.SEQUENCE);
  const sigOid = readOid(sigEl.reader().next('signature algorithm', TAG.OID));
  const sigAlg = readSignatureAlgorithm(sigEl, 'signature');
  const issuer = parseNameElement(r.next('issuer', TAG.SEQUENCE));
  const validity = r.next('validity', TAG.SEQUENCE).reader();
  const notBefore = readTime(validity.next('notBefore'), 'notBefore');
  const notAfter = readTime(validity.next('notAfter'), 'notAfter');
  validity.end('validity');
  const subject = parseNameElement(r.next('subject', TAG.SEQUENCE));
  const spki = r.next('subjectPublicKeyInfo', TAG.SEQUENCE).raw;
  r.optional(0x81); // issuerUniqueID
  r.optional(0x82); // subjectUniqueID
  const extEl = r.optional(0xa3);
  let extensions: Extension[] = [];
  if (extEl) {
    const inner = extEl.reader();
    extensions = decodeExtensions(inner.next('extensions', TAG.SEQUENCE));
    inner.end('extensions');
  }
  r.end('TBSCertificate');
  return { version, serial, sigEl, sigOid, sigAlg, issuer, notBefore, notAfter, subject, spki, extensions };
}

/** Parses a certificate from DER or PEM; PKI_PARSE names the field that is wrong. */
export function parseCertificate(input: string | Uint8Array, what = 'certificate'): ParsedCertificate {
  const der = derOrPem(input, 'CERTIFICATE', what);
  const root = parseDer(der, what);
  const r = root.expect(TAG.SEQUENCE, 'Certificate').reader();
  const tbsEl = r.next('tbsCertificate', TAG.SEQUENCE);
  const outerAlg = r.next('signatureAlgorithm', TAG.SEQUENCE);
  const sig = readBitString(r.next('signatureValue', TAG.BIT_STRING), 'signatureValue');
  r.end('Certificate');
  if (sig.unused !== 0) root.fail('signatureValue: unused bits in a signature');
  const t = parseTbs(tbsEl);
  if (!outerAlg.raw.equals(t.sigEl.raw)) {
    throw new PkiError(
      'PKI_PARSE',
      `${what}: signatureAlgorithm differs from the TBS signature field (RFC 5280 §4.1.1.2)`,
      {
        details: { what },
      },
    );
  }
  return new ParsedCertificate(
    root.raw,
    tbsEl.raw,
    t.version,
    t.serial,
    t.sigAlg,
    t.sigOid,
    t.issuer,
    t.notBefore,
    t.notAfter,
    t.subject,
    t.spki,
    t.extensions,
    sig.bytes,
  );
}
