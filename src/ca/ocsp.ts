/**
 * The OCSP responder (RFC 6960). For each CertID in a request that names this CA (issuerNameHash and
 * issuerKeyHash in SHA-1, SHA-256, SHA-384 or SHA-512) it answers good, revoked (time and reason) or
 * unknown from a lookup callback, signed by the CA key or by a delegated OCSP signing certificate
 * (id-kp-OCSPSigning, included in `certs`). The nonce is echoed (RFC 8954). Garbage gets
 * malformedRequest; a request only for other CAs gets unauthorized (RFC 5019 §2.2.3).
 */
import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { SignatureAlgorithm } from '../pki/algorithms.js';
import { signatureAlgorithmFor, signBytes, spkiOf } from '../pki/algorithms.js';
import type { ParsedCertificate } from '../pki/certificate.js';
import { parseCertificate } from '../pki/certificate.js';
import {
  bitString,
  contextPrimitive,
  enumerated,
  explicit,
  generalizedTime,
  octetString,
  oid,
  sequence,
  sequenceOf,
  tlv,
} from '../pki/der.js';
import { EXT_KEY_USAGES, findExtension } from '../pki/extensions.js';
import type { NameInput } from '../pki/name.js';
import { buildName } from '../pki/name.js';
import type { CertId, OcspHash, OcspResponseStatus } from '../pki/ocsp.js';
import { issuerHashes, OCSP_RESPONSE_STATUS, ocspRequestFromGetPath, parseOcspRequest } from '../pki/ocsp.js';
import { OID } from '../pki/oids.js';
import type { RevocationReason } from '../pki/revocation.js';
import { REVOCATION_REASONS } from '../pki/revocation.js';
import type { CaIssuer, IssuerContext } from './issuer-context.js';
import { issuerContext } from './issuer-context.js';
import { lintIssuerOf } from './lint.js';
import type { RandomSource } from './serial.js';
import type { IssuedCertificate } from './sign.js';
import { computeValidity, issuedTbs, lintAndSign } from './sign.js';

/** What the store knows about a serial of this CA. */
export type OcspStatus =
  | { readonly status: 'good' }
  | { readonly status: 'revoked'; readonly at: Date; readonly reason?: RevocationReason }
  | { readonly status: 'unknown' };

export type OcspLookup = (serialHex: string) => OcspStatus | Promise<OcspStatus>;

export interface OcspResponderOptions {
  readonly issuer: CaIssuer | IssuerContext;
  /** A delegated responder certificate issued by `issuer` with id-kp-OCSPSigning; the CA key signs otherwise. */
  readonly signer?: { readonly certificate: Uint8Array | ParsedCertificate; readonly key: KeyObject };
  readonly lookup: OcspLookup;
  readonly clock: Clock;
  /** nextUpdate = thisUpdate + validityMs. */
  readonly validityMs: number;
  /** Called when the lookup throws; the client gets internalError. */
  readonly onError?: (err: unknown) => void;
}

export interface OcspResponder {
  /** Answers a DER request (POST body); always returns a DER OCSPResponse. */
  respond(request: Uint8Array): Promise<Buffer>;
  /** Answers a GET request given the path segment after the responder URL (RFC 6960 Appendix A.1). */
  respondGet(pathSegment: string): Promise<Buffer>;
}

/** An unsigned OCSPResponse carrying only an error status (§4.2.1: no responseBytes). */
export function ocspErrorResponse(status: Exclude<OcspResponseStatus, 'successful'>): Buffer {
  return sequence(enumerated(OCSP_RESPONSE_STATUS[status]));
}

const GOOD = contextPrimitive(0, Buffer.alloc(0));
const UNKNOWN = contextPrimitive(2, Buffer.alloc(0));

function certStatus(s: OcspStatus): Buffer {
  switch (s.status) {
    case 'good':
      return GOOD;
    case 'unknown':
      return UNKNOWN;
    case 'revoked': {
      // revoked [1] IMPLICIT RevokedInfo { revocationTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
      const parts = [generalizedTime(s.at)];
      if (s.reason !== undefined && s.reason !== 'unspecified')
        parts.push(explicit(0, enumerated(REVOCATION_REASONS[s.reason])));
      return tlv(0xa1, Buffer.concat(parts));
    }
  }
}

interface Signer {
  readonly key: KeyObject;
  readonly algorithm: SignatureAlgorithm;
  /** ResponderID byKey [2] EXPLICIT KeyHash: SHA-1 of the responder's key bits (§4.2.1). */
  readonly responderId: Buffer;
  readonly certs: Buffer | undefined;
}

function delegatedSigner(ca: IssuerContext, signer: NonNullable<OcspResponderOptions['signer']>): Signer {
  const cert =
    signer.certificate instanceof Uint8Array
      ? parseCertificate(signer.certificate, 'OCSP signer certificate')
      : signer.certificate;
  const fail = (rule: string, message: string): never => {
    throw new CaError('LINT_FAILED', `OCSP signer: ${message}`, { details: { rule } });
  };
  if (
    !cert.issuer.der.equals(ca.certificate.subject.der) ||
    !cert.verifySignature(ca.certificate.publicKey)
  ) {
    fail('ocsp_signer_issued_by_ca', 'the certificate was not issued by this CA (RFC 6960 §4.2.2.2)');
  }
  if (!findExtension(cert.extensions, 'extKeyUsage')?.purposes.includes(EXT_KEY_USAGES.ocspSigning)) {
    fail('ocsp_signer_eku', 'the certificate lacks id-kp-OCSPSigning');
  }
  if (!spkiOf(signer.key).der.equals(cert.spkiDer))
    fail('ocsp_signer_key', 'the key does not belong to the certificate');
  return {
    key: signer.key,
    algorithm: signatureAlgorithmFor(signer.key),
    responderId: explicit(2, octetString(createHash('sha1').update(cert.keyBits).digest())),
    certs: explicit(0, sequenceOf([cert.der])),
  };
}

export function createOcspResponder(options: OcspResponderOptions): OcspResponder {
  const ca = issuerContext(options.issuer);
  const signer: Signer = options.signer
    ? delegatedSigner(ca, options.signer)
    : {
        key: ca.key,
        algorithm: ca.algorithm,
        responderId: explicit(2, octetString(createHash('sha1').update(ca.certificate.keyBits).digest())),
        certs: undefined,
      };
  const hashes = new Map<OcspHash, { nameHash: Buffer; keyHash: Buffer }>();
  const ours = (id: CertId): boolean => {
    if (!id.hash) return false;
    let h = hashes.get(id.hash);
    if (!h) {
      h = issuerHashes(ca.certificate, id.hash);
      hashes.set(id.hash, h);
    }
    return h.nameHash.equals(id.issuerNameHash) && h.keyHash.equals(id.issuerKeyHash);
  };

  async function respond(request: Uint8Array): Promise<Buffer> {
    let req;
    try {
      req = parseOcspRequest(request);
    } catch {
      return ocspErrorResponse('malformedRequest');
    }
    const mine = req.certIds.map(ours);
    if (!mine.includes(true)) return ocspErrorResponse('unauthorized');

    const now = Math.floor(options.clock.nowMs() / 1000) * 1000;
    const thisUpdate = generalizedTime(new Date(now));
    const nextUpdate = explicit(0, generalizedTime(new Date(now + options.validityMs)));
    const singles: Buffer[] = [];
    try {
      for (let i = 0; i < req.certIds.length; i++) {
        const id = req.certIds[i]!;
        // a CertID for another issuer in a mixed request: §2.2 "unknown" covers an unrecognised issuer
        const status: OcspStatus = mine[i] ? await options.lookup(id.serialHex) : { status: 'unknown' };
        singles.push(sequence(id.der, certStatus(status), thisUpdate, nextUpdate));
      }
    } catch (err) {
      options.onError?.(err);
      return ocspErrorResponse('internalError');
    }

    const dataParts = [signer.responderId, thisUpdate, sequenceOf(singles)];
    // RFC 8954 §2.1: echo nonces of 1–32 octets; others are left out rather than refused
    if (req.nonce && req.nonce.length >= 3 && req.nonce.length <= 34) {
      dataParts.push(explicit(1, sequence(sequence(oid(OID.ocspNonce), octetString(req.nonce)))));
    }
    const tbs = sequence(...dataParts);
    const basicParts = [
      tbs,
      signer.algorithm.identifier,
      bitString(signBytes(signer.algorithm, signer.key, tbs)),
    ];
    if (signer.certs) basicParts.push(signer.certs);
    const basic = sequence(...basicParts);
    return sequence(
      enumerated(OCSP_RESPONSE_STATUS.successful),
      explicit(0, sequence(oid(OID.ocspBasic), octetString(basic))),
    );
  }

  return {
    respond,
    async respondGet(pathSegment: string): Promise<Buffer> {
      let der: Buffer;
      try {
        der = ocspRequestFromGetPath(pathSegment);
      } catch {
        return ocspErrorResponse('malformedRequest');
      }
      return respond(der);
    },
  };
}

export interface OcspSignerRequest {
  readonly issuer: CaIssuer | IssuerContext;
  readonly subjectPublicKey: KeyObject;
  readonly subject?: NameInput;
  readonly lifetimeMs: number;
  readonly clock: Clock;
  readonly random?: RandomSource;
}

/**
 * A delegated OCSP signing certificate (RFC 6960 §4.2.2.2): digitalSignature, id-kp-OCSPSigning only,
 * id-pkix-ocsp-nocheck (§4.2.2.2.1: clients need not check its revocation, so keep it short-lived).
 */
export function createOcspSigner(req: OcspSignerRequest): IssuedCertificate {
  const issuer = issuerContext(req.issuer);
  const subject = buildName(req.subject ?? { commonName: `OCSP responder` });
  const { notBefore, notAfter } = computeValidity(
    req.clock,
    req.lifetimeMs,
    [issuer.certificate.notAfter],
    issuer.certificate.notBefore,
  );
  return lintAndSign(
    issuedTbs(issuer, {
      random: req.random,
      notBefore,
      notAfter,
      subject,
      subjectPublicKey: req.subjectPublicKey,
      extensions: [
        { kind: 'keyUsage', critical: true, usages: ['digitalSignature'] },
        { kind: 'extKeyUsage', critical: false, purposes: [EXT_KEY_USAGES.ocspSigning] },
        { kind: 'basicConstraints', critical: true, ca: false },
        { kind: 'subjectKeyIdentifier', critical: false, keyId: spkiOf(req.subjectPublicKey).keyId },
        { kind: 'authorityKeyIdentifier', critical: false, keyId: issuer.keyId },
        { kind: 'ocspNoCheck', critical: false },
      ],
    }),
    'ocsp-signer',
    lintIssuerOf(issuer),
    issuer.key,
  );
}
