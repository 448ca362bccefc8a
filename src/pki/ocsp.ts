/**
 * OCSP messages (RFC 6960 §4): CertID hashing, requests (parse and build) and responses (parse). The CA's
 * responder builds responses from these in src/ca/ocsp.ts; the parsers also let tests and clients read
 * what a responder says.
 */
import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import { PkiError } from '../core/errors.js';
import type { SignatureAlgorithm } from './algorithms.js';
import { readSignatureAlgorithm, verifyBytes } from './algorithms.js';
import type { ParsedCertificate } from './certificate.js';
import { serialHexOf } from './certificate.js';
import { explicit, octetString, oid, sequence, sequenceOf, TAG, unsignedInteger } from './der.js';
import type { DerElement } from './der-reader.js';
import {
  parseDer,
  readBitString,
  readBoolean,
  readIntegerBytes,
  readOctetString,
  readOid,
  readSmallInt,
  readTime,
} from './der-reader.js';
import { OID } from './oids.js';
import type { RevocationReason } from './revocation.js';
import { reasonFromCode } from './revocation.js';

export type OcspHash = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export const OCSP_HASH_OIDS: Readonly<Record<OcspHash, string>> = {
  sha1: OID.sha1,
  sha256: OID.sha256,
  sha384: OID.sha384,
  sha512: OID.sha512,
};
const HASH_BY_OID: ReadonlyMap<string, OcspHash> = new Map(
  Object.entries(OCSP_HASH_OIDS).map(([k, v]) => [v, k as OcspHash]),
);

/** RFC 6960 §4.1.1 response status codes. */
export const OCSP_RESPONSE_STATUS = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;
export type OcspResponseStatus = keyof typeof OCSP_RESPONSE_STATUS;

export interface CertId {
  /** undefined when the request names a hash keywright does not compute. */
  readonly hash: OcspHash | undefined;
  readonly hashOid: string;
  readonly issuerNameHash: Buffer;
  readonly issuerKeyHash: Buffer;
  readonly serialHex: string;
  /** The CertID as the requester encoded it; a response echoes it byte for byte. */
  readonly der: Buffer;
}

/** issuerNameHash and issuerKeyHash for a CA: hash of its subject Name DER and of its key bits (§4.1.1). */
export function issuerHashes(
  issuer: ParsedCertificate,
  hash: OcspHash,
): { nameHash: Buffer; keyHash: Buffer } {
  return {
    nameHash: createHash(hash).update(issuer.subject.der).digest(),
    keyHash: createHash(hash).update(issuer.keyBits).digest(),
  };
}

function malformed(message: string): PkiError {
  return new PkiError('PKI_PARSE', `OCSP request: ${message}`, { details: { what: 'OCSP request' } });
}

export function readCertId(el: DerElement): CertId {
  const r = el.expect(TAG.SEQUENCE, 'CertID').reader();
  const algEl = r.next('hashAlgorithm', TAG.SEQUENCE).reader();
  const hashOid = readOid(algEl.next('algorithm', TAG.OID));
  algEl.optional(TAG.NULL);
  algEl.end('hashAlgorithm');
  const issuerNameHash = readOctetString(r.next('issuerNameHash', TAG.OCTET_STRING));
  const issuerKeyHash = readOctetString(r.next('issuerKeyHash', TAG.OCTET_STRING));
  const serialHex = serialHexOf(readIntegerBytes(r.next('serialNumber', TAG.INTEGER)));
  r.end('CertID');
  return { hash: HASH_BY_OID.get(hashOid), hashOid, issuerNameHash, issuerKeyHash, serialHex, der: el.raw };
}

interface RawExtension {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Buffer;
}

function readRawExtensions(el: DerElement): RawExtension[] {
  return el
    .expect(TAG.SEQUENCE, 'Extensions')
    .children()
    .map((e) => {
      const r = e.expect(TAG.SEQUENCE, 'Extension').reader();
      const id = readOid(r.next('extnID', TAG.OID));
      const crit = r.optional(TAG.BOOLEAN);
      const value = readOctetString(r.next('extnValue', TAG.OCTET_STRING));
      r.end('Extension');
      return { oid: id, critical: crit ? readBoolean(crit) : false, value };
    });
}

export interface OcspRequest {
  readonly certIds: readonly CertId[];
  /** The nonce extension's extnValue as sent (RFC 8954: an OCTET STRING of 1–32 octets). */
  readonly nonce: Buffer | undefined;
  readonly signed: boolean;
}

/** Requests above this many CertIDs are refused, so one request cannot demand unbounded work. */
export const MAX_OCSP_CERT_IDS = 64;
export const MAX_OCSP_REQUEST_BYTES = 64 * 1024;

/** Parses a DER OCSPRequest (RFC 6960 §4.1.1); PKI_PARSE when it is not one. */
export function parseOcspRequest(der: Uint8Array): OcspRequest {
  if (der.byteLength > MAX_OCSP_REQUEST_BYTES) throw malformed(`${der.byteLength} bytes is over the limit`);
  const root = parseDer(der, 'OCSP request');
  const r = root.expect(TAG.SEQUENCE, 'OCSPRequest').reader();
  const tbs = r.next('tbsRequest', TAG.SEQUENCE).reader();
  const signed = r.optional(0xa0) !== undefined;
  r.end('OCSPRequest');
  const v = tbs.optional(0xa0);
  if (v && readSmallInt(v.reader().next('version', TAG.INTEGER), 'version') !== 0)
    throw malformed('only version 1 is defined');
  tbs.optional(0xa1); // requestorName
  const list = tbs.next('requestList', TAG.SEQUENCE).children();
  const extWrap = tbs.optional(0xa2);
  tbs.end('TBSRequest');
  if (list.length === 0) throw malformed('the request list is empty');
  if (list.length > MAX_OCSP_CERT_IDS)
    throw malformed(`${list.length} CertIDs are over the limit of ${MAX_OCSP_CERT_IDS}`);
  const certIds = list.map((req) => {
    const rr = req.expect(TAG.SEQUENCE, 'Request').reader();
    const id = readCertId(rr.next('reqCert', TAG.SEQUENCE));
    rr.optional(0xa0);
    rr.end('Request');
    return id;
  });
  let nonce: Buffer | undefined;
  if (extWrap) {
    for (const ext of readRawExtensions(extWrap.reader().next('requestExtensions', TAG.SEQUENCE))) {
      if (ext.oid === OID.ocspNonce) nonce = ext.value;
    }
  }
  return { certIds, nonce, signed };
}

/**
 * The DER inside an OCSP GET URL (RFC 6960 Appendix A.1: the URL-encoded base64 of the request, after
 * the responder's path). Accepts the base64url alphabet too, which some clients send.
 */
export function ocspRequestFromGetPath(segment: string): Buffer {
  let text: string;
  try {
    text = decodeURIComponent(segment);
  } catch {
    throw malformed('the GET path is not URL-encoded');
  }
  text = text.replace(/-/g, '+').replace(/_/g, '/').replace(/\s/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw malformed('the GET path is not base64');
  return Buffer.from(text, 'base64');
}

export interface OcspRequestInput {
  readonly issuer: ParsedCertificate;
  readonly serials: readonly string[];
  readonly hash?: OcspHash;
  readonly nonce?: Buffer;
}

/** Builds an unsigned OCSP request (what `openssl ocsp -reqout` makes), for tests and clients. */
export function buildOcspRequest(input: OcspRequestInput): Buffer {
  const hash = input.hash ?? 'sha1';
  const { nameHash, keyHash } = issuerHashes(input.issuer, hash);
  const requests = input.serials.map((s) =>
    sequence(
      sequence(
        sequence(oid(OCSP_HASH_OIDS[hash])),
        octetString(nameHash),
        octetString(keyHash),
        unsignedInteger(Buffer.from(s.length % 2 ? '0' + s : s, 'hex')),
      ),
    ),
  );
  const parts = [sequenceOf(requests)];
  if (input.nonce)
    parts.push(explicit(2, sequence(sequence(oid(OID.ocspNonce), octetString(octetString(input.nonce))))));
  return sequence(sequence(...parts));
}

export type CertStatus =
  | { readonly status: 'good' }
  | { readonly status: 'revoked'; readonly revokedAt: Date; readonly reason?: RevocationReason }
  | { readonly status: 'unknown' };

export interface SingleResponse {
  readonly certId: CertId;
  readonly certStatus: CertStatus;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
}

export interface ParsedOcspResponse {
  readonly status: OcspResponseStatus | 'unassigned';
  readonly basic?: {
    readonly tbsDer: Buffer;
    readonly responderKeyHash: Buffer | undefined;
    readonly responderNameDer: Buffer | undefined;
    readonly producedAt: Date;
    readonly responses: readonly SingleResponse[];
    readonly nonce: Buffer | undefined;
    readonly signatureAlgorithm: SignatureAlgorithm | undefined;
    readonly signature: Buffer;
    readonly certs: readonly Buffer[];
  };
}

/** Parses an OCSPResponse (RFC 6960 §4.2.1). */
export function parseOcspResponse(der: Uint8Array): ParsedOcspResponse {
  const root = parseDer(der, 'OCSP response');
  const r = root.expect(TAG.SEQUENCE, 'OCSPResponse').reader();
  const code = readSmallInt(r.next('responseStatus', TAG.ENUMERATED), 'responseStatus', TAG.ENUMERATED);
  const status = (Object.entries(OCSP_RESPONSE_STATUS).find(([, v]) => v === code)?.[0] ??
    'unassigned') as ParsedOcspResponse['status'];
  const bytesWrap = r.optional(0xa0);
  r.end('OCSPResponse');
  if (!bytesWrap) return { status };
  const rb = bytesWrap.reader().next('responseBytes', TAG.SEQUENCE).reader();
  const type = readOid(rb.next('responseType', TAG.OID));
  if (type !== OID.ocspBasic) root.fail(`response type ${type} is not id-pkix-ocsp-basic`);
  const basic = parseDer(readOctetString(rb.next('response', TAG.OCTET_STRING)), 'BasicOCSPResponse')
    .expect(TAG.SEQUENCE, 'BasicOCSPResponse')
    .reader();
  const tbsEl = basic.next('tbsResponseData', TAG.SEQUENCE);
  const signatureAlgorithm = readSignatureAlgorithm(
    basic.next('signatureAlgorithm', TAG.SEQUENCE),
    'signatureAlgorithm',
  );
  const signature = readBitString(basic.next('signature', TAG.BIT_STRING)).bytes;
  const certsWrap = basic.optional(0xa0);
  const certs = certsWrap
    ? certsWrap
        .reader()
        .next('certs', TAG.SEQUENCE)
        .children()
        .map((c) => c.raw)
    : [];

  const t = tbsEl.reader();
  t.optional(0xa0);
  const byName = t.optional(0xa1);
  const byKey = t.optional(0xa2);
  if (!byName && !byKey) tbsEl.fail('responderID: missing');
  const producedAt = readTime(t.next('producedAt', TAG.GENERALIZED_TIME), 'producedAt');
  const responses = t
    .next('responses', TAG.SEQUENCE)
    .children()
    .map((sr): SingleResponse => {
      const s = sr.expect(TAG.SEQUENCE, 'SingleResponse').reader();
      const certId = readCertId(s.next('certID', TAG.SEQUENCE));
      const st = s.next('certStatus');
      let certStatus: CertStatus;
      if (st.tag === 0x80) certStatus = { status: 'good' };
      else if (st.tag === 0x82) certStatus = { status: 'unknown' };
      else if (st.tag === 0xa1) {
        const ri = st.reader();
        const revokedAt = readTime(ri.next('revocationTime', TAG.GENERALIZED_TIME), 'revocationTime');
        const reasonEl = ri.optional(0xa0);
        const reason = reasonEl
          ? reasonFromCode(
              readSmallInt(
                reasonEl.reader().next('revocationReason', TAG.ENUMERATED),
                'revocationReason',
                TAG.ENUMERATED,
              ),
            )
          : undefined;
        certStatus = { status: 'revoked', revokedAt, ...(reason ? { reason } : {}) };
      } else return st.fail('certStatus: unknown choice');
      const thisUpdate = readTime(s.next('thisUpdate', TAG.GENERALIZED_TIME), 'thisUpdate');
      const nu = s.optional(0xa0);
      const nextUpdate = nu
        ? readTime(nu.reader().next('nextUpdate', TAG.GENERALIZED_TIME), 'nextUpdate')
        : undefined;
      return { certId, certStatus, thisUpdate, nextUpdate };
    });
  let nonce: Buffer | undefined;
  const extWrap = t.optional(0xa1);
  if (extWrap) {
    for (const ext of readRawExtensions(extWrap.reader().next('responseExtensions', TAG.SEQUENCE)))
      if (ext.oid === OID.ocspNonce) nonce = ext.value;
  }
  return {
    status,
    basic: {
      tbsDer: tbsEl.raw,
      responderKeyHash: byKey ? readOctetString(byKey.reader().next('KeyHash', TAG.OCTET_STRING)) : undefined,
      responderNameDer: byName ? byName.reader().next('Name', TAG.SEQUENCE).raw : undefined,
      producedAt,
      responses,
      nonce,
      signatureAlgorithm,
      signature,
      certs,
    },
  };
}

export function verifyOcspResponseSignature(resp: ParsedOcspResponse, signerPublicKey: KeyObject): boolean {
  const b = resp.basic;
  return (
    b?.signatureAlgorithm !== undefined &&
    verifyBytes(b.signatureAlgorithm, signerPublicKey, b.tbsDer, b.signature)
  );
}
