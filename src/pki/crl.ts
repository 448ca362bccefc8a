/** Parsing CRLs (RFC 5280 §5) for inspection and for checking what keywright serves. */
import type { KeyObject } from 'node:crypto';
import type { SignatureAlgorithm } from './algorithms.js';
import { readSignatureAlgorithm, verifyBytes } from './algorithms.js';
import { serialHexOf } from './certificate.js';
import { TAG } from './der.js';
import {
  parseDer,
  readBitString,
  readBoolean,
  readInteger,
  readIntegerBytes,
  readOctetString,
  readOid,
  readSmallInt,
  readTime,
} from './der-reader.js';
import type { DerElement } from './der-reader.js';
import { OID } from './oids.js';
import type { ParsedName } from './name.js';
import { parseNameElement } from './name.js';
import { derOrPem } from './pem.js';
import type { RevocationReason } from './revocation.js';
import { reasonFromCode } from './revocation.js';

export interface ParsedCrlEntry {
  readonly serialHex: string;
  readonly revokedAt: Date;
  readonly reason?: RevocationReason;
}

export interface ParsedCrl {
  readonly der: Buffer;
  readonly tbsDer: Buffer;
  readonly version: number;
  readonly signatureAlgorithm: SignatureAlgorithm | undefined;
  readonly issuer: ParsedName;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly entries: readonly ParsedCrlEntry[];
  readonly crlNumber: bigint | undefined;
  readonly authorityKeyId: Buffer | undefined;
  readonly signatureValue: Buffer;
}

function readExtensions(el: DerElement): { oid: string; critical: boolean; value: Buffer }[] {
  return el.children().map((e) => {
    const r = e.expect(TAG.SEQUENCE, 'Extension').reader();
    const id = readOid(r.next('extnID', TAG.OID));
    const crit = r.optional(TAG.BOOLEAN);
    const value = readOctetString(r.next('extnValue', TAG.OCTET_STRING));
    r.end('Extension');
    return { oid: id, critical: crit ? readBoolean(crit) : false, value };
  });
}

export function parseCrl(input: string | Uint8Array): ParsedCrl {
  const der = derOrPem(input, 'X509 CRL', 'CRL');
  const root = parseDer(der, 'CRL');
  const r = root.expect(TAG.SEQUENCE, 'CertificateList').reader();
  const tbsEl = r.next('tbsCertList', TAG.SEQUENCE);
  r.next('signatureAlgorithm', TAG.SEQUENCE);
  const sig = readBitString(r.next('signatureValue', TAG.BIT_STRING));
  r.end('CertificateList');

  const t = tbsEl.reader();
  const v = t.optional(TAG.INTEGER);
  const version = v ? readSmallInt(v, 'version') + 1 : 1;
  const signatureAlgorithm = readSignatureAlgorithm(t.next('signature', TAG.SEQUENCE), 'signature');
  const issuer = parseNameElement(t.next('issuer', TAG.SEQUENCE));
  const thisUpdate = readTime(t.next('thisUpdate'), 'thisUpdate');
  const nuEl = t.optional(TAG.UTC_TIME) ?? t.optional(TAG.GENERALIZED_TIME);
  const nextUpdate = nuEl ? readTime(nuEl, 'nextUpdate') : undefined;
  const revokedEl = t.optional(TAG.SEQUENCE);
  const entries: ParsedCrlEntry[] = [];
  for (const entry of revokedEl?.children() ?? []) {
    const er = entry.expect(TAG.SEQUENCE, 'revoked certificate').reader();
    const serialHex = serialHexOf(readIntegerBytes(er.next('userCertificate', TAG.INTEGER)));
    const revokedAt = readTime(er.next('revocationDate'), 'revocationDate');
    const extEl = er.optional(TAG.SEQUENCE);
    let reason: RevocationReason | undefined;
    for (const ext of extEl ? readExtensions(extEl) : []) {
      if (ext.oid === OID.crlReason)
        reason = reasonFromCode(readSmallInt(parseDer(ext.value, 'CRLReason'), 'CRLReason', TAG.ENUMERATED));
    }
    entries.push({ serialHex, revokedAt, ...(reason ? { reason } : {}) });
  }
  let crlNumber: bigint | undefined;
  let authorityKeyId: Buffer | undefined;
  const extWrap = t.optional(0xa0);
  if (extWrap) {
    for (const ext of readExtensions(extWrap.reader().next('crlExtensions', TAG.SEQUENCE))) {
      if (ext.oid === OID.crlNumber) crlNumber = readInteger(parseDer(ext.value, 'CRLNumber'));
      if (ext.oid === OID.authorityKeyIdentifier)
        authorityKeyId = parseDer(ext.value, 'AKI').reader().optional(0x80)?.content;
    }
  }
  t.end('TBSCertList');
  return {
    der: root.raw,
    tbsDer: tbsEl.raw,
    version,
    signatureAlgorithm,
    issuer,
    thisUpdate,
    nextUpdate,
    entries,
    crlNumber,
    authorityKeyId,
    signatureValue: sig.bytes,
  };
}

export function verifyCrlSignature(crl: ParsedCrl, issuerPublicKey: KeyObject): boolean {
  return (
    crl.signatureAlgorithm !== undefined &&
    verifyBytes(crl.signatureAlgorithm, issuerPublicKey, crl.tbsDer, crl.signatureValue)
  );
}
