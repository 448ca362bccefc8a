/**
 * Distinguished names (RFC 5280 §4.1.2.4). keywright writes one attribute per RDN, UTF8String for text
 * attributes (required for new certificates since RFC 3280), PrintableString where X.520 asks for it
 * (countryName, serialNumber) and IA5String for emailAddress and domainComponent. Issuer names are never
 * rebuilt: they are copied byte for byte from the issuer certificate, which is what chain building compares.
 */
import { ValidationError } from '../core/errors.js';
import { ia5String, oid, printableString, sequenceOf, setOf, sequence, utf8String } from './der.js';
import type { DerElement } from './der-reader.js';
import { parseDer, readOid, readString } from './der-reader.js';
import { OID } from './oids.js';
import { TAG } from './der.js';

export interface NameInput {
  readonly commonName?: string;
  readonly organization?: string | readonly string[];
  readonly organizationalUnit?: string | readonly string[];
  readonly country?: string;
  readonly state?: string;
  readonly locality?: string;
  readonly serialNumber?: string;
  readonly emailAddress?: string;
  /** Most significant first: ['com', 'example'] for DC=com, DC=example. */
  readonly domainComponents?: readonly string[];
}

export interface NameAttribute {
  readonly oid: string;
  /** Short name (CN, O, OU …) or the dotted OID for unknown types. */
  readonly type: string;
  readonly value: string;
}

export interface ParsedName {
  /** The Name exactly as encoded. */
  readonly der: Buffer;
  /** One entry per RDN, each with its attributes (almost always exactly one). */
  readonly rdns: readonly (readonly NameAttribute[])[];
}

type Encoding = 'utf8' | 'printable' | 'ia5';
interface AttrSpec {
  readonly oid: string;
  readonly type: string;
  readonly max: number;
  readonly enc: Encoding;
}

// Upper bounds from RFC 5280 Appendix A.1 (ub-common-name 64 etc.).
const SPECS = {
  domainComponents: { oid: OID.domainComponent, type: 'DC', max: 63, enc: 'ia5' },
  country: { oid: OID.countryName, type: 'C', max: 2, enc: 'printable' },
  state: { oid: OID.stateOrProvinceName, type: 'ST', max: 128, enc: 'utf8' },
  locality: { oid: OID.localityName, type: 'L', max: 128, enc: 'utf8' },
  organization: { oid: OID.organizationName, type: 'O', max: 64, enc: 'utf8' },
  organizationalUnit: { oid: OID.organizationalUnitName, type: 'OU', max: 64, enc: 'utf8' },
  commonName: { oid: OID.commonName, type: 'CN', max: 64, enc: 'utf8' },
  serialNumber: { oid: OID.serialNumber, type: 'serialNumber', max: 64, enc: 'printable' },
  emailAddress: { oid: OID.emailAddress, type: 'emailAddress', max: 255, enc: 'ia5' },
} as const satisfies Record<keyof NameInput, AttrSpec>;

const SHORT_NAMES: ReadonlyMap<string, string> = new Map([
  ...Object.values(SPECS).map((s) => [s.oid, s.type] as const),
  [OID.surname, 'SN'],
  [OID.givenName, 'GN'],
  [OID.streetAddress, 'street'],
  [OID.userId, 'UID'],
]);

/** RFC 5280 §4.1.2.4: the bound on commonName, also the limit for copying a SAN into CN. */
export const MAX_COMMON_NAME = 64;

function attribute(spec: AttrSpec, value: string, field: string): Buffer {
  if (value.length === 0 || [...value].length > spec.max) {
    throw new ValidationError('INVALID_ARGUMENT', `subject.${field} must be 1 to ${spec.max} characters`, {
      details: { field: `subject.${field}` },
    });
  }
  if (spec.enc === 'printable' && spec.type === 'C' && !/^[A-Z]{2}$/.test(value)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      'subject.country must be a two-letter ISO 3166 code such as DE',
      {
        details: { field: 'subject.country' },
      },
    );
  }
  let encoded: Buffer;
  try {
    encoded =
      spec.enc === 'utf8'
        ? utf8String(value)
        : spec.enc === 'printable'
          ? printableString(value)
          : ia5String(value);
  } catch (cause) {
    throw new ValidationError('INVALID_ARGUMENT', `subject.${field} has characters its type cannot hold`, {
      cause,
      details: { field: `subject.${field}` },
    });
  }
  return setOf([sequence(oid(spec.oid), encoded)]);
}

function asList(v: string | readonly string[] | undefined): readonly string[] {
  return v === undefined ? [] : typeof v === 'string' ? [v] : v;
}

/** Encodes a subject name; the attribute order is fixed (DC, C, ST, L, O, OU, CN, serialNumber, emailAddress). */
export function encodeName(input: NameInput): Buffer {
  return buildName(input).der;
}

const SPEC_KEYS = Object.keys(SPECS) as (keyof NameInput)[];

/** Encodes a subject name and returns it in parsed form too, without parsing it back. */
export function buildName(input: NameInput): ParsedName {
  const encoded: Buffer[] = [];
  const rdns: NameAttribute[][] = [];
  for (const key of SPEC_KEYS) {
    const spec = SPECS[key];
    for (const value of asList(input[key])) {
      encoded.push(attribute(spec, value, key));
      rdns.push([{ oid: spec.oid, type: spec.type, value }]);
    }
  }
  return { der: sequenceOf(encoded), rdns };
}

/** The empty Name (SEQUENCE {}), used when a certificate identifies its subject only by SANs. */
export const EMPTY_NAME: Buffer = sequenceOf([]);

export function parseNameElement(el: DerElement): ParsedName {
  el.expect(TAG.SEQUENCE, 'Name');
  const rdns = el.children().map((rdn) => {
    rdn.expect(TAG.SET, 'RelativeDistinguishedName');
    const attrs = rdn.children();
    if (attrs.length === 0) rdn.fail('RelativeDistinguishedName: empty');
    return attrs.map((atv) => {
      const r = atv.reader();
      const o = readOid(r.next('AttributeType', TAG.OID), 'AttributeType');
      const valueEl = r.next('AttributeValue');
      r.end('AttributeTypeAndValue');
      return { oid: o, type: SHORT_NAMES.get(o) ?? o, value: readString(valueEl, `attribute ${o}`) };
    });
  });
  return { der: el.raw, rdns };
}

export function parseName(der: Uint8Array): ParsedName {
  return parseNameElement(parseDer(der, 'Name'));
}

/** All values of one attribute type, in order. */
export function nameValues(name: ParsedName, oidValue: string): string[] {
  return name.rdns.flatMap((rdn) => rdn.filter((a) => a.oid === oidValue).map((a) => a.value));
}

/** The last CN, the one most software shows. */
export function commonNameOf(name: ParsedName): string | undefined {
  return nameValues(name, OID.commonName).at(-1);
}

/** A one-line display form in encoding order, e.g. "O=Example, CN=web.internal" (for humans, not matching). */
export function formatName(name: ParsedName): string {
  const esc = (v: string): string => v.replace(/([,+"\\<>;=])/g, '\\$1');
  return name.rdns.map((rdn) => rdn.map((a) => `${a.type}=${esc(a.value)}`).join('+')).join(', ');
}
