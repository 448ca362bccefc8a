/**
 * The certificate extensions keywright writes and reads (RFC 5280 §4.2), as plain data. The same model
 * is encoded for signing, decoded from parsed certificates and inspected by the CA's lint, so what lint
 * approves is exactly what gets signed.
 */
import { ValidationError } from '../core/errors.js';
import {
  boolean,
  contextConstructed,
  contextPrimitive,
  integer,
  namedBitString,
  nul,
  octetString,
  oid,
  sequence,
  sequenceOf,
  TAG,
} from './der.js';
import type { DerElement } from './der-reader.js';
import {
  parseDer,
  readBoolean,
  readNamedBits,
  readOctetString,
  readOid,
  readSmallInt,
} from './der-reader.js';
import type { GeneralName } from './general-name.js';
import { decodeGeneralName, encodeGeneralName } from './general-name.js';
import { OID } from './oids.js';

/** RFC 5280 §4.2.1.3 KeyUsage bits, in bit order. */
export const KEY_USAGES = [
  'digitalSignature',
  'contentCommitment',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];

/** RFC 5280 §4.2.1.12 key purposes keywright knows by name. */
export const EXT_KEY_USAGES = {
  serverAuth: OID.serverAuth,
  clientAuth: OID.clientAuth,
  codeSigning: OID.codeSigning,
  emailProtection: OID.emailProtection,
  timeStamping: OID.timeStamping,
  ocspSigning: OID.ocspSigning,
  anyExtendedKeyUsage: OID.anyExtendedKeyUsage,
} as const;
export type ExtKeyUsage = keyof typeof EXT_KEY_USAGES;

const EKU_NAMES: ReadonlyMap<string, ExtKeyUsage> = new Map(
  Object.entries(EXT_KEY_USAGES).map(([k, v]) => [v, k as ExtKeyUsage]),
);

export function extKeyUsageName(o: string): ExtKeyUsage | undefined {
  return EKU_NAMES.get(o);
}

export type Extension =
  | {
      readonly kind: 'basicConstraints';
      readonly critical: boolean;
      readonly ca: boolean;
      readonly pathLen?: number;
    }
  | { readonly kind: 'keyUsage'; readonly critical: boolean; readonly usages: readonly KeyUsage[] }
  /** purposes are OIDs (EXT_KEY_USAGES gives the common ones). */
  | { readonly kind: 'extKeyUsage'; readonly critical: boolean; readonly purposes: readonly string[] }
  | { readonly kind: 'subjectAltName'; readonly critical: boolean; readonly names: readonly GeneralName[] }
  | { readonly kind: 'subjectKeyIdentifier'; readonly critical: boolean; readonly keyId: Buffer }
  | { readonly kind: 'authorityKeyIdentifier'; readonly critical: boolean; readonly keyId?: Buffer }
  | { readonly kind: 'crlDistributionPoints'; readonly critical: boolean; readonly uris: readonly string[] }
  | {
      readonly kind: 'authorityInfoAccess';
      readonly critical: boolean;
      readonly ocsp: readonly string[];
      readonly caIssuers: readonly string[];
    }
  | {
      readonly kind: 'nameConstraints';
      readonly critical: boolean;
      readonly permitted: readonly GeneralName[];
      readonly excluded: readonly GeneralName[];
    }
  /** RFC 6960 §4.2.2.2.1 id-pkix-ocsp-nocheck, for delegated OCSP signers. */
  | { readonly kind: 'ocspNoCheck'; readonly critical: boolean }
  | { readonly kind: 'unknown'; readonly oid: string; readonly critical: boolean; readonly value: Buffer };

export type ExtensionKind = Extension['kind'];
export type ExtensionOf<K extends ExtensionKind> = Extract<Extension, { kind: K }>;

const KIND_OID: Readonly<Record<Exclude<ExtensionKind, 'unknown'>, string>> = {
  basicConstraints: OID.basicConstraints,
  keyUsage: OID.keyUsage,
  extKeyUsage: OID.extKeyUsage,
  subjectAltName: OID.subjectAltName,
  subjectKeyIdentifier: OID.subjectKeyIdentifier,
  authorityKeyIdentifier: OID.authorityKeyIdentifier,
  crlDistributionPoints: OID.crlDistributionPoints,
  authorityInfoAccess: OID.authorityInfoAccess,
  nameConstraints: OID.nameConstraints,
  ocspNoCheck: OID.ocspNoCheck,
};

export function extensionOid(ext: Extension): string {
  return ext.kind === 'unknown' ? ext.oid : KIND_OID[ext.kind];
}

function uriName(u: string): Buffer {
  return encodeGeneralName({ type: 'uri', value: u });
}

/** The DER of the extnValue contents (what goes inside the OCTET STRING). */
export function encodeExtensionValue(ext: Extension): Buffer {
  switch (ext.kind) {
    case 'basicConstraints': {
      // §4.2.1.9; cA DEFAULT FALSE is omitted when false (X.690 §11.5)
      const parts: Buffer[] = [];
      if (ext.ca) parts.push(boolean(true));
      if (ext.pathLen !== undefined) parts.push(integer(ext.pathLen));
      return sequence(...parts);
    }
    case 'keyUsage':
      return namedBitString(ext.usages.map((u) => KEY_USAGES.indexOf(u)));
    case 'extKeyUsage':
      return sequenceOf(ext.purposes.map((p) => oid(p)));
    case 'subjectAltName':
      return sequenceOf(ext.names.map((n) => encodeGeneralName(n, 'san')));
    case 'subjectKeyIdentifier':
      return octetString(ext.keyId);
    case 'authorityKeyIdentifier':
      // §4.2.1.1: keyIdentifier [0] IMPLICIT KeyIdentifier
      return sequence(...(ext.keyId ? [contextPrimitive(0, ext.keyId)] : []));
    case 'crlDistributionPoints':
      // §4.2.1.13: DistributionPoint { distributionPoint [0] { fullName [0] GeneralNames } }
      return sequenceOf(
        ext.uris.map((u) => sequence(contextConstructed(0, [contextConstructed(0, [uriName(u)])]))),
      );
    case 'authorityInfoAccess':
      // §4.2.2.1: AccessDescription { accessMethod, accessLocation }
      return sequenceOf([
        ...ext.ocsp.map((u) => sequence(oid(OID.accessOcsp), uriName(u))),
        ...ext.caIssuers.map((u) => sequence(oid(OID.accessCaIssuers), uriName(u))),
      ]);
    case 'nameConstraints': {
      // §4.2.1.10: GeneralSubtree { base, minimum [0] DEFAULT 0, maximum [1] } — min/max never written
      const subtrees = (names: readonly GeneralName[]): Buffer[] =>
        names.map((n) => sequence(encodeGeneralName(n, 'constraint')));
      const parts: Buffer[] = [];
      if (ext.permitted.length > 0) parts.push(contextConstructed(0, subtrees(ext.permitted)));
      if (ext.excluded.length > 0) parts.push(contextConstructed(1, subtrees(ext.excluded)));
      if (parts.length === 0)
        throw new ValidationError(
          'INVALID_ARGUMENT',
          'name constraints need a permitted or excluded subtree',
        );
      return sequence(...parts);
    }
    case 'ocspNoCheck':
      return nul();
    case 'unknown':
      return ext.value;
  }
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } (§4.1). */
export function encodeExtension(ext: Extension): Buffer {
  const value = octetString(encodeExtensionValue(ext));
  return ext.critical
    ? sequence(oid(extensionOid(ext)), boolean(true), value)
    : sequence(oid(extensionOid(ext)), value);
}

export function encodeExtensions(exts: readonly Extension[]): Buffer {
  return sequenceOf(exts.map(encodeExtension));
}

function generalNames(el: DerElement, context: 'san' | 'constraint'): GeneralName[] {
  return el.children().map((c) => decodeGeneralName(c, context));
}

function uriOf(el: DerElement, label: string): string {
  const n = decodeGeneralName(el);
  if (n.type !== 'uri') el.fail(`${label}: only URI locations are supported`);
  return n.value;
}

/** Decodes one extension's value; types keywright does not model come back as `unknown`. */
export function decodeExtension(extnId: string, critical: boolean, value: Buffer): Extension {
  const what = `extension ${extnId}`;
  const el = (): DerElement => parseDer(value, what);
  switch (extnId) {
    case OID.basicConstraints: {
      const r = el().expect(TAG.SEQUENCE, 'BasicConstraints').reader();
      const caEl = r.optional(TAG.BOOLEAN);
      const ca = caEl ? readBoolean(caEl, 'cA') : false;
      if (caEl && !ca) caEl.fail('cA: FALSE is the default and must be omitted in DER');
      const pl = r.optional(TAG.INTEGER);
      r.end('BasicConstraints');
      return {
        kind: 'basicConstraints',
        critical,
        ca,
        ...(pl ? { pathLen: readSmallInt(pl, 'pathLenConstraint') } : {}),
      };
    }
    case OID.keyUsage:
      return {
        kind: 'keyUsage',
        critical,
        usages: readNamedBits(el(), 'KeyUsage')
          .filter((b) => b < KEY_USAGES.length)
          .map((b) => KEY_USAGES[b]!),
      };
    case OID.extKeyUsage:
      return {
        kind: 'extKeyUsage',
        critical,
        purposes: el()
          .children()
          .map((c) => readOid(c, 'KeyPurposeId')),
      };
    case OID.subjectAltName:
      return {
        kind: 'subjectAltName',
        critical,
        names: generalNames(el().expect(TAG.SEQUENCE, 'GeneralNames'), 'san'),
      };
    case OID.subjectKeyIdentifier:
      return { kind: 'subjectKeyIdentifier', critical, keyId: readOctetString(el(), 'KeyIdentifier') };
    case OID.authorityKeyIdentifier: {
      const r = el().expect(TAG.SEQUENCE, 'AuthorityKeyIdentifier').reader();
      const kid = r.optional(0x80);
      return { kind: 'authorityKeyIdentifier', critical, ...(kid ? { keyId: kid.content } : {}) };
    }
    case OID.crlDistributionPoints: {
      const uris: string[] = [];
      for (const dp of el().expect(TAG.SEQUENCE, 'CRLDistributionPoints').children()) {
        const name = dp.expect(TAG.SEQUENCE, 'DistributionPoint').reader().optional(0xa0);
        const full = name?.reader().optional(0xa0);
        if (full) for (const g of full.children()) uris.push(uriOf(g, 'distributionPoint'));
      }
      return { kind: 'crlDistributionPoints', critical, uris };
    }
    case OID.authorityInfoAccess: {
      const ocsp: string[] = [];
      const caIssuers: string[] = [];
      for (const ad of el().expect(TAG.SEQUENCE, 'AuthorityInfoAccessSyntax').children()) {
        const r = ad.expect(TAG.SEQUENCE, 'AccessDescription').reader();
        const method = readOid(r.next('accessMethod', TAG.OID));
        const loc = r.next('accessLocation');
        if (method === OID.accessOcsp) ocsp.push(uriOf(loc, 'OCSP'));
        else if (method === OID.accessCaIssuers) caIssuers.push(uriOf(loc, 'caIssuers'));
      }
      return { kind: 'authorityInfoAccess', critical, ocsp, caIssuers };
    }
    case OID.nameConstraints: {
      const r = el().expect(TAG.SEQUENCE, 'NameConstraints').reader();
      const subtrees = (tree: DerElement | undefined): GeneralName[] =>
        (tree?.children() ?? []).map((st) => {
          const sr = st.expect(TAG.SEQUENCE, 'GeneralSubtree').reader();
          const base = decodeGeneralName(sr.next('base'), 'constraint');
          if (sr.optional(0x80) || sr.optional(0x81))
            st.fail('GeneralSubtree: minimum/maximum are not supported');
          return base;
        });
      const permitted = subtrees(r.optional(0xa0));
      const excluded = subtrees(r.optional(0xa1));
      r.end('NameConstraints');
      return { kind: 'nameConstraints', critical, permitted, excluded };
    }
    case OID.ocspNoCheck:
      return { kind: 'ocspNoCheck', critical };
    default:
      return { kind: 'unknown', oid: extnId, critical, value };
  }
}

/** Reads `Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension`. */
export function decodeExtensions(el: DerElement): Extension[] {
  return el
    .expect(TAG.SEQUENCE, 'Extensions')
    .children()
    .map((e) => {
      const r = e.expect(TAG.SEQUENCE, 'Extension').reader();
      const id = readOid(r.next('extnID', TAG.OID));
      const critEl = r.optional(TAG.BOOLEAN);
      const critical = critEl ? readBoolean(critEl, 'critical') : false;
      const value = readOctetString(r.next('extnValue', TAG.OCTET_STRING), 'extnValue');
      r.end('Extension');
      return decodeExtension(id, critical, value);
    });
}

/** The first extension of a kind, typed. */
export function findExtension<K extends ExtensionKind>(
  exts: readonly Extension[],
  kind: K,
): ExtensionOf<K> | undefined {
  return exts.find((e): e is ExtensionOf<K> => e.kind === kind);
}
