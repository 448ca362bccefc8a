/**
 * PKCS#10 certificate requests (RFC 2986). A CSR is the seam between whoever holds a key and the CA: the
 * CA learns the public key and the names asked for, proves the requester holds the private key by the
 * self-signature, and copies nothing else (requested extensions are reported, never honoured here).
 */
import type { KeyObject } from 'node:crypto';
import { isAppError, PkiError } from '../core/errors.js';
import type { KeyInfo, SignatureAlgorithm } from './algorithms.js';
import {
  describeKey,
  publicKeyFromSpki,
  readSignatureAlgorithm,
  signatureAlgorithmFor,
  signBytes,
  spkiOf,
  verifyBytes,
} from './algorithms.js';
import { assembleSigned } from './certificate.js';
import { contextConstructed, integer, oid, sequence, setOf, TAG } from './der.js';
import { parseDer, readBitString, readOid, readSmallInt } from './der-reader.js';
import type { Extension } from './extensions.js';
import { decodeExtensions, encodeExtensions, findExtension } from './extensions.js';
import type { GeneralName } from './general-name.js';
import type { NameInput, ParsedName } from './name.js';
import { encodeName, parseNameElement } from './name.js';
import { OID } from './oids.js';
import { decodePem, encodePem } from './pem.js';

/** Real CSRs are 0.3–4 KB; anything near this is an attack or a mistake. */
export const MAX_CSR_BYTES = 64 * 1024;

export interface ParsedCsr {
  readonly der: Buffer;
  readonly subject: ParsedName;
  readonly publicKey: KeyObject;
  readonly spkiDer: Buffer;
  readonly key: KeyInfo;
  readonly signatureAlgorithm: SignatureAlgorithm;
  /** SANs from the extensionRequest attribute (PKCS#9), for the CA's policy to vet. */
  readonly requestedNames: readonly GeneralName[];
  /** Every requested extension, for reporting; a CA must not copy them. */
  readonly requestedExtensions: readonly Extension[];
}

function invalid(message: string, cause?: unknown, details: Record<string, unknown> = {}): PkiError {
  return new PkiError('CSR_INVALID', `CSR: ${message}`, {
    ...(cause === undefined ? {} : { cause }),
    details,
  });
}

function toDer(input: string | Uint8Array): Buffer {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > MAX_CSR_BYTES) {
    throw invalid(`${size} bytes is over the ${MAX_CSR_BYTES}-byte limit`, undefined, {
      size,
      limit: MAX_CSR_BYTES,
    });
  }
  if (typeof input !== 'string') {
    const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (buf[0] === 0x30) return buf;
    input = buf.toString('latin1');
  }
  if (!input.includes('-----BEGIN'))
    throw invalid('neither PEM (-----BEGIN CERTIFICATE REQUEST-----) nor DER');
  try {
    // RFC 7468 §7: "NEW CERTIFICATE REQUEST" is a legacy label some tools still write.
    return decodePem(input, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'], 'CSR');
  } catch (cause) {
    throw invalid(cause instanceof Error ? cause.message : 'bad PEM', cause);
  }
}

/** Parses a CSR (PEM or DER) and verifies its self-signature; every failure is CSR_INVALID. */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  const der = toDer(input);
  try {
    const root = parseDer(der, 'CSR');
    const r = root.expect(TAG.SEQUENCE, 'CertificationRequest').reader();
    const infoEl = r.next('certificationRequestInfo', TAG.SEQUENCE);
    const algEl = r.next('signatureAlgorithm', TAG.SEQUENCE);
    const sig = readBitString(r.next('signature', TAG.BIT_STRING), 'signature');
    r.end('CertificationRequest');

    const info = infoEl.reader();
    const version = readSmallInt(info.next('version', TAG.INTEGER), 'version');
    if (version !== 0) infoEl.fail(`version ${version} is not v1 (0)`);
    const subject = parseNameElement(info.next('subject', TAG.SEQUENCE));
    const spkiDer = info.next('subjectPKInfo', TAG.SEQUENCE).raw;
    const attrs = info.next('attributes', 0xa0);
    info.end('CertificationRequestInfo');

    let requestedExtensions: Extension[] = [];
    for (const attr of attrs.children()) {
      const ar = attr.expect(TAG.SEQUENCE, 'Attribute').reader();
      const type = readOid(ar.next('type', TAG.OID));
      const values = ar.next('values', TAG.SET).children();
      if (type === OID.extensionRequest) {
        if (values.length !== 1) attr.fail('extensionRequest: expected exactly one value');
        requestedExtensions = decodeExtensions(values[0]!);
      }
    }

    const algorithm = readSignatureAlgorithm(algEl, 'signatureAlgorithm');
    if (!algorithm)
      throw invalid(
        'the signature algorithm is not one keywright verifies (ECDSA, RSA PKCS#1 v1.5 with SHA-2, Ed25519)',
      );
    const publicKey = publicKeyFromSpki(spkiDer, 'CSR');
    if (sig.unused !== 0 || !verifyBytes(algorithm, publicKey, infoEl.raw, sig.bytes)) {
      throw invalid("the signature does not verify with the CSR's own public key");
    }
    return {
      der: root.raw,
      subject,
      publicKey,
      spkiDer,
      key: describeKey(publicKey),
      signatureAlgorithm: algorithm,
      requestedNames: findExtension(requestedExtensions, 'subjectAltName')?.names ?? [],
      requestedExtensions,
    };
  } catch (err) {
    if (isAppError(err, 'CSR_INVALID')) throw err;
    if (isAppError(err)) throw invalid(err.message, err);
    throw invalid('malformed', err);
  }
}

export interface CsrInput {
  readonly subject?: NameInput;
  readonly sans?: readonly GeneralName[];
  /** Further extensions to request (a CA decides what to grant; keywright's grants none of them). */
  readonly extensions?: readonly Extension[];
  readonly privateKey: KeyObject;
}

/** Builds and self-signs a CSR; the SANs go in an extensionRequest attribute (RFC 2985 §5.4.2). */
export function buildCsr(input: CsrInput): Buffer {
  const algorithm = signatureAlgorithmFor(input.privateKey);
  const attributes: Buffer[] = [];
  const requested: Extension[] = [...(input.extensions ?? [])];
  if (input.sans && input.sans.length > 0)
    requested.unshift({ kind: 'subjectAltName', critical: false, names: input.sans });
  if (requested.length > 0) {
    attributes.push(sequence(oid(OID.extensionRequest), setOf([encodeExtensions(requested)])));
  }
  const info = sequence(
    integer(0),
    encodeName(input.subject ?? {}),
    spkiOf(input.privateKey).der,
    contextConstructed(0, attributes),
  );
  return assembleSigned(info, algorithm, signBytes(algorithm, input.privateKey, info));
}

export function csrToPem(der: Uint8Array): string {
  return encodePem('CERTIFICATE REQUEST', der);
}
