/**
 * Lint before signing, as Let's Encrypt's Boulder runs zlint on every to-be-signed certificate: a set of
 * RFC 5280 and CA/Browser Forum Baseline Requirements rules checked against the exact TBS model that will
 * be encoded. The first failing rule refuses issuance (LINT_FAILED, details.rule); nothing is signed.
 */
import { CaError } from '../core/errors.js';
import type { KeyInfo, SignatureAlgorithm } from '../pki/algorithms.js';
import { describeKey, signatureAlgorithmFor, spkiOf } from '../pki/algorithms.js';
import type { TbsCertificate } from '../pki/certificate.js';
import type { Extension, ExtensionKind, ExtensionOf, KeyUsage } from '../pki/extensions.js';
import { EXT_KEY_USAGES, extensionOid } from '../pki/extensions.js';
import type { GeneralName } from '../pki/general-name.js';
import { formatGeneralName } from '../pki/general-name.js';
import { commonNameOf, MAX_COMMON_NAME } from '../pki/name.js';
import type { ParsedName } from '../pki/name.js';
import type { IssuerContext } from './issuer-context.js';
import type { ConstraintSet } from './names.js';
import { canonicalIp, constraintViolation, dnsNameProblem, emailProblem, uriProblem } from './names.js';

/** `leaf`: an end-entity certificate with SANs; `ocsp-signer`: a delegated OCSP responder (no SANs). */
export type CertificateKind = 'leaf' | 'ca' | 'ocsp-signer';

/** What lint needs to know about the issuer; for a self-signed root it is the root itself. */
export interface LintIssuer {
  readonly subject: ParsedName;
  readonly keyId: Buffer;
  readonly algorithm: SignatureAlgorithm;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly keyCertSign: boolean;
  readonly pathLen: number | undefined;
  readonly nameConstraints: ConstraintSet | undefined;
  readonly selfSigned: boolean;
}

export function lintIssuerOf(ctx: IssuerContext): LintIssuer {
  return {
    subject: ctx.certificate.subject,
    keyId: ctx.keyId,
    algorithm: ctx.algorithm,
    notBefore: ctx.certificate.notBefore,
    notAfter: ctx.certificate.notAfter,
    isCa: ctx.isCa,
    keyCertSign: ctx.keyCertSign,
    pathLen: ctx.pathLen,
    nameConstraints: ctx.nameConstraints,
    selfSigned: false,
  };
}

/** A self-signed certificate is its own issuer: its subject, key, validity and CA flag. */
export function selfIssuerOf(tbs: TbsCertificate): LintIssuer {
  const bc = tbs.extensions.find((e): e is ExtensionOf<'basicConstraints'> => e.kind === 'basicConstraints');
  const ku = tbs.extensions.find((e): e is ExtensionOf<'keyUsage'> => e.kind === 'keyUsage');
  return {
    subject: tbs.subject,
    keyId: spkiOf(tbs.subjectPublicKey).keyId,
    algorithm: signatureAlgorithmFor(tbs.subjectPublicKey),
    notBefore: tbs.notBefore,
    notAfter: tbs.notAfter,
    isCa: bc?.ca === true,
    keyCertSign: ku ? ku.usages.includes('keyCertSign') : true,
    pathLen: undefined,
    nameConstraints: undefined,
    selfSigned: true,
  };
}

interface Subject {
  readonly tbs: TbsCertificate;
  readonly kind: CertificateKind;
  readonly issuer: LintIssuer;
  readonly key: KeyInfo;
  readonly sans: readonly GeneralName[];
  /** The subject's CN (the last one), if any. */
  readonly cn: string | undefined;
  readonly ext: <K extends ExtensionKind>(kind: K) => ExtensionOf<K> | undefined;
}

interface Rule {
  readonly name: string;
  /** The source of the rule, e.g. "RFC 5280 §4.1.2.2". */
  readonly source: string;
  readonly description: string;
  /** A problem description, or undefined when the certificate passes. */
  check(s: Subject): string | undefined;
}

const serialMagnitude = (serial: Buffer): Buffer =>
  serial.length > 1 && serial[0] === 0 ? serial.subarray(1) : serial;

function bitLength(magnitude: Buffer): number {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  if (i === magnitude.length) return 0;
  return (magnitude.length - i - 1) * 8 + (32 - Math.clz32(magnitude[i]!));
}

const has = (ku: ExtensionOf<'keyUsage'> | undefined, u: KeyUsage): boolean =>
  ku?.usages.includes(u) === true;

function sanMatchesCn(cn: string, sans: readonly GeneralName[]): boolean {
  const ip = canonicalIp(cn);
  return sans.some(
    (n) =>
      (n.type === 'dns' && n.value.toLowerCase() === cn.toLowerCase()) ||
      (n.type === 'ip' && ip !== undefined && n.value === ip),
  );
}

/** Every rule, in the order they run. docs/ca.md lists them; each has a unit test that breaks it. */
export const LINT_RULES: readonly Rule[] = [
  // --- serial number
  {
    name: 'serial_positive',
    source: 'RFC 5280 §4.1.2.2',
    description: 'the serial number is a positive integer',
    check: ({ tbs }) => {
      const negative = ((tbs.serialNumber[0] ?? 0x80) & 0x80) !== 0;
      return negative || bitLength(tbs.serialNumber) === 0
        ? 'the serial number is zero or negative'
        : undefined;
    },
  },
  {
    name: 'serial_der_minimal',
    source: 'X.690 §8.3.2',
    description: 'the serial number is encoded in the fewest octets',
    check: ({ tbs }) =>
      tbs.serialNumber.length > 1 && tbs.serialNumber[0] === 0 && ((tbs.serialNumber[1] ?? 0) & 0x80) === 0
        ? 'the serial has a redundant leading zero octet'
        : undefined,
  },
  {
    name: 'serial_max_20_bytes',
    source: 'RFC 5280 §4.1.2.2',
    description: 'the serial number is at most 20 octets',
    check: ({ tbs }) =>
      tbs.serialNumber.length > 20 ? `the serial is ${tbs.serialNumber.length} octets long` : undefined,
  },
  {
    name: 'serial_entropy_64_bits',
    source: 'CA/B BR §7.1',
    description: 'the serial number has at least 64 significant bits (keywright draws 128 random bits)',
    check: ({ tbs }) => {
      const bits = bitLength(serialMagnitude(tbs.serialNumber));
      return bits < 64 ? `the serial has only ${bits} significant bits` : undefined;
    },
  },
  // --- issuer linkage
  {
    name: 'issuer_is_ca',
    source: 'RFC 5280 §4.2.1.9, §4.2.1.3',
    description: 'the issuer is a CA whose key usage allows keyCertSign',
    check: ({ issuer }) =>
      !issuer.isCa || !issuer.keyCertSign
        ? 'the issuing certificate is not a CA allowed to sign certificates'
        : undefined,
  },
  {
    name: 'issuer_name_matches',
    source: 'RFC 5280 §4.1.2.4, §6.1',
    description: "the issuer field is the issuer's subject, byte for byte",
    check: ({ tbs, issuer }) =>
      tbs.issuer.der.equals(issuer.subject.der)
        ? undefined
        : "the issuer field differs from the issuer certificate's subject",
  },
  {
    name: 'issuer_path_length',
    source: 'RFC 5280 §4.2.1.9',
    description: "a subordinate CA fits under the issuer's path length constraint",
    check: ({ kind, issuer, ext }) => {
      if (kind !== 'ca' || issuer.selfSigned || issuer.pathLen === undefined) return undefined;
      if (issuer.pathLen === 0) return 'the issuer has pathLen 0 and cannot issue CA certificates';
      const pl = ext('basicConstraints')?.pathLen;
      return pl === undefined || pl >= issuer.pathLen
        ? `the new CA needs a pathLen below the issuer's ${issuer.pathLen}`
        : undefined;
    },
  },
  {
    name: 'signature_algorithm_matches_issuer',
    source: 'RFC 5280 §4.1.2.3',
    description: "the signature algorithm is the one the issuer's key signs with",
    check: ({ tbs, issuer }) =>
      tbs.signatureAlgorithm.name === issuer.algorithm.name
        ? undefined
        : `the TBS names ${tbs.signatureAlgorithm.name}, the issuer key signs ${issuer.algorithm.name}`,
  },
  // --- validity
  {
    name: 'validity_whole_seconds',
    source: 'RFC 5280 §4.1.2.5',
    description: 'notBefore and notAfter have no fractional seconds (what is linted is what is encoded)',
    check: ({ tbs }) =>
      tbs.notBefore.getTime() % 1000 !== 0 || tbs.notAfter.getTime() % 1000 !== 0
        ? 'a validity time has milliseconds'
        : undefined,
  },
  {
    name: 'validity_order',
    source: 'RFC 5280 §4.1.2.5',
    description: 'notBefore is before notAfter',
    check: ({ tbs }) =>
      tbs.notBefore.getTime() < tbs.notAfter.getTime() ? undefined : 'notBefore is not before notAfter',
  },
  {
    name: 'validity_within_issuer',
    source: 'RFC 5280 §6.1.3; CA/B BR §7.1.2',
    description: "the validity lies inside the issuer's",
    check: ({ tbs, issuer }) =>
      tbs.notBefore < issuer.notBefore || tbs.notAfter > issuer.notAfter
        ? "the validity extends outside the issuer certificate's"
        : undefined,
  },
  // --- subject key
  {
    name: 'key_type_allowed',
    source: 'CA/B BR §6.1.5',
    description: 'the subject key is ECDSA, RSA or Ed25519',
    check: ({ key }) =>
      key.family === 'ec' || key.family === 'rsa' || key.family === 'ed25519'
        ? undefined
        : `a ${key.label} key cannot be certified`,
  },
  {
    name: 'key_rsa_size',
    source: 'CA/B BR §6.1.5',
    description: 'RSA moduli are at least 2048 bits and a multiple of 8',
    check: ({ key }) =>
      key.family === 'rsa' && ((key.bits ?? 0) < 2048 || (key.bits ?? 0) % 8 !== 0)
        ? `an RSA modulus of ${key.bits} bits`
        : undefined,
  },
  {
    name: 'key_rsa_exponent',
    source: 'CA/B BR §6.1.6',
    description: 'the RSA public exponent is odd and at least 3',
    check: ({ key }) =>
      key.family === 'rsa' &&
      key.publicExponent !== undefined &&
      (key.publicExponent < 3n || key.publicExponent % 2n === 0n)
        ? `the RSA public exponent ${key.publicExponent} is not an odd number ≥ 3`
        : undefined,
  },
  {
    name: 'key_ec_curve',
    source: 'CA/B BR §6.1.5; RFC 5480',
    description: 'EC keys are on P-256 or P-384',
    check: ({ key }) =>
      key.family === 'ec' && key.curve !== 'P-256' && key.curve !== 'P-384'
        ? `curve ${key.curve} is not allowed`
        : undefined,
  },
  // --- extensions in general
  {
    name: 'ext_no_duplicates',
    source: 'RFC 5280 §4.2',
    description: 'no extension appears twice',
    check: ({ tbs }) => {
      const seen = new Set<string>();
      for (const e of tbs.extensions) {
        const id = extensionOid(e);
        if (seen.has(id)) return `extension ${id} appears twice`;
        seen.add(id);
      }
      return undefined;
    },
  },
  {
    name: 'ski_present',
    source: 'RFC 5280 §4.2.1.2',
    description:
      'a subject key identifier is present (required on CAs; keywright puts it on every certificate)',
    check: ({ ext }) => (ext('subjectKeyIdentifier') ? undefined : 'no subject key identifier'),
  },
  {
    name: 'aki_present',
    source: 'RFC 5280 §4.2.1.1',
    description: 'a certificate not self-signed carries an authority key identifier with a keyIdentifier',
    check: ({ issuer, ext }) =>
      issuer.selfSigned || ext('authorityKeyIdentifier')?.keyId ? undefined : 'no authority key identifier',
  },
  {
    name: 'aki_matches_issuer',
    source: 'RFC 5280 §4.2.1.1',
    description: "the authority key identifier equals the issuer's subject key identifier",
    check: ({ issuer, ext }) => {
      const kid = ext('authorityKeyIdentifier')?.keyId;
      return kid && !kid.equals(issuer.keyId)
        ? "the authority key identifier is not the issuer's key identifier"
        : undefined;
    },
  },
  // --- basic constraints
  {
    name: 'bc_present',
    source: 'RFC 5280 §4.2.1.9',
    description: 'basic constraints are present (keywright states CA:TRUE or CA:FALSE on every certificate)',
    check: ({ ext }) => (ext('basicConstraints') ? undefined : 'no basic constraints'),
  },
  {
    name: 'bc_ca_critical',
    source: 'RFC 5280 §4.2.1.9',
    description: 'a CA certificate marks basic constraints critical',
    check: ({ kind, ext }) =>
      kind === 'ca' && ext('basicConstraints')?.critical !== true
        ? 'CA basic constraints are not critical'
        : undefined,
  },
  {
    name: 'bc_ca_flag',
    source: 'RFC 5280 §4.2.1.9',
    description: 'a CA certificate asserts CA:TRUE',
    check: ({ kind, ext }) =>
      kind === 'ca' && ext('basicConstraints')?.ca !== true ? 'a CA certificate without CA:TRUE' : undefined,
  },
  {
    name: 'bc_leaf_not_ca',
    source: 'RFC 5280 §4.2.1.9',
    description: 'an end-entity certificate does not assert CA:TRUE',
    check: ({ kind, ext }) =>
      kind !== 'ca' && ext('basicConstraints')?.ca === true ? 'a leaf asserts CA:TRUE' : undefined,
  },
  {
    name: 'bc_pathlen_only_ca',
    source: 'RFC 5280 §4.2.1.9',
    description: 'pathLenConstraint appears only with CA:TRUE',
    check: ({ ext }) => {
      const bc = ext('basicConstraints');
      return bc?.pathLen !== undefined && !bc.ca ? 'pathLenConstraint without CA:TRUE' : undefined;
    },
  },
  // --- key usage
  {
    name: 'ku_present',
    source: 'RFC 5280 §4.2.1.3',
    description: 'key usage is present with at least one bit',
    check: ({ ext }) => ((ext('keyUsage')?.usages.length ?? 0) > 0 ? undefined : 'no key usage bits'),
  },
  {
    name: 'ku_ca_critical',
    source: 'RFC 5280 §4.2.1.3; CA/B BR §7.1.2.10.7',
    description: 'a CA certificate marks key usage critical',
    check: ({ kind, ext }) =>
      kind === 'ca' && ext('keyUsage')?.critical !== true ? 'CA key usage is not critical' : undefined,
  },
  {
    name: 'ku_ca_cert_sign',
    source: 'RFC 5280 §4.2.1.3',
    description: 'a CA certificate allows keyCertSign',
    check: ({ kind, ext }) =>
      kind === 'ca' && !has(ext('keyUsage'), 'keyCertSign')
        ? 'a CA certificate without keyCertSign'
        : undefined,
  },
  {
    name: 'ku_leaf_no_cert_sign',
    source: 'RFC 5280 §4.2.1.3',
    description: 'an end-entity certificate allows neither keyCertSign nor cRLSign',
    check: ({ kind, ext }) => {
      const ku = ext('keyUsage');
      return kind !== 'ca' && (has(ku, 'keyCertSign') || has(ku, 'cRLSign'))
        ? 'a leaf with keyCertSign or cRLSign'
        : undefined;
    },
  },
  {
    name: 'ku_matches_key_type',
    source: 'RFC 5480 §3; RFC 8410 §5; RFC 4055 §1.2',
    description:
      'key usage bits fit the key: no encipherment for EC or Ed25519, no key agreement for RSA or Ed25519',
    check: ({ key, ext }) => {
      const ku = ext('keyUsage');
      if (!ku) return undefined;
      if (key.family !== 'rsa' && (has(ku, 'keyEncipherment') || has(ku, 'dataEncipherment')))
        return `keyEncipherment or dataEncipherment on a ${key.family} key`;
      if (
        key.family !== 'ec' &&
        (has(ku, 'keyAgreement') || has(ku, 'encipherOnly') || has(ku, 'decipherOnly'))
      )
        return `keyAgreement on a ${key.family} key`;
      if ((has(ku, 'encipherOnly') || has(ku, 'decipherOnly')) && !has(ku, 'keyAgreement'))
        return 'encipherOnly/decipherOnly without keyAgreement';
      return undefined;
    },
  },
  // --- extended key usage
  {
    name: 'eku_leaf_present',
    source: 'CA/B BR §7.1.2.7.10',
    description: 'an end-entity certificate states its extended key usage',
    check: ({ kind, ext }) =>
      kind !== 'ca' && (ext('extKeyUsage')?.purposes.length ?? 0) === 0
        ? 'a leaf without extended key usage'
        : undefined,
  },
  {
    name: 'eku_consistent_with_ku',
    source: 'RFC 5280 §4.2.1.12',
    description:
      'each key purpose has a key usage bit it needs (serverAuth/clientAuth/ocspSigning need digitalSignature, or keyEncipherment/keyAgreement)',
    check: ({ ext }) => {
      const ku = ext('keyUsage');
      const eku = ext('extKeyUsage');
      if (!ku || !eku) return undefined;
      for (const p of eku.purposes) {
        if (
          p === EXT_KEY_USAGES.serverAuth &&
          !(has(ku, 'digitalSignature') || has(ku, 'keyEncipherment') || has(ku, 'keyAgreement'))
        )
          return 'serverAuth without a usable key usage';
        if (p === EXT_KEY_USAGES.clientAuth && !(has(ku, 'digitalSignature') || has(ku, 'keyAgreement')))
          return 'clientAuth without digitalSignature or keyAgreement';
        if (
          p === EXT_KEY_USAGES.ocspSigning &&
          !(has(ku, 'digitalSignature') || has(ku, 'contentCommitment'))
        )
          return 'OCSPSigning without digitalSignature';
      }
      return undefined;
    },
  },
  // --- subject and names
  {
    name: 'ca_subject_not_empty',
    source: 'RFC 5280 §4.1.2.6',
    description: 'a CA certificate has a non-empty subject',
    check: ({ kind, tbs }) =>
      kind === 'ca' && tbs.subject.rdns.length === 0 ? 'a CA with an empty subject' : undefined,
  },
  {
    name: 'san_present',
    source: 'CA/B BR §7.1.2.7.12; RFC 5280 §4.2.1.6',
    description: 'an end-entity certificate has a subject alternative name extension with at least one name',
    check: ({ kind, sans }) =>
      kind === 'leaf' && sans.length === 0 ? 'a leaf without subject alternative names' : undefined,
  },
  {
    name: 'san_critical_if_subject_empty',
    source: 'RFC 5280 §4.2.1.6',
    description: 'the SAN extension is critical when the subject is empty, and not critical otherwise',
    check: ({ tbs, ext }) => {
      const san = ext('subjectAltName');
      if (!san) return undefined;
      const empty = tbs.subject.rdns.length === 0;
      if (empty && !san.critical) return 'empty subject with a non-critical SAN';
      if (!empty && san.critical) return 'a critical SAN beside a non-empty subject';
      return undefined;
    },
  },
  {
    name: 'subject_cn_length',
    source: 'RFC 5280 Appendix A.1 (ub-common-name)',
    description: 'the common name is at most 64 characters',
    check: ({ cn }) => {
      return cn !== undefined && [...cn].length > MAX_COMMON_NAME
        ? `the common name is ${[...cn].length} characters`
        : undefined;
    },
  },
  {
    name: 'subject_cn_in_san',
    source: 'CA/B BR §7.1.4.3',
    description: 'a leaf common name, if any, is one of its DNS or IP SANs',
    check: ({ kind, cn, sans }) => {
      if (kind !== 'leaf') return undefined;
      return cn !== undefined && !sanMatchesCn(cn, sans)
        ? `the common name "${cn}" is not among the SANs`
        : undefined;
    },
  },
  {
    name: 'dns_syntax',
    source: 'RFC 5280 §4.2.1.6; RFC 1034 §3.5',
    description:
      'DNS names are letters, digits and hyphens; labels 1–63, names ≤ 253, no trailing dot, no underscore',
    check: ({ sans }) => {
      for (const n of sans) {
        if (n.type !== 'dns') continue;
        const problem = dnsNameProblem(n.value, true);
        if (problem && !problem.startsWith('has a wildcard')) return `${formatGeneralName(n)} ${problem}`;
      }
      return undefined;
    },
  },
  {
    name: 'dns_wildcard_leftmost',
    source: 'CA/B BR §7.1.2.7.12',
    description: 'a wildcard is only the whole leftmost label, with at least one label after it',
    check: ({ sans }) => {
      for (const n of sans) {
        if (n.type !== 'dns' || !n.value.includes('*')) continue;
        const labels = n.value.split('.');
        if (labels[0] !== '*' || labels.length < 2 || labels.slice(1).some((l) => l.includes('*')))
          return `${formatGeneralName(n)} has a misplaced wildcard`;
      }
      return undefined;
    },
  },
  {
    name: 'ip_syntax',
    source: 'RFC 5280 §4.2.1.6',
    description: 'IP SANs are IPv4 or IPv6 addresses in canonical form',
    check: ({ sans }) => {
      for (const n of sans)
        if (n.type === 'ip' && canonicalIp(n.value) !== n.value)
          return `${formatGeneralName(n)} is not a canonical IP address`;
      return undefined;
    },
  },
  {
    name: 'email_syntax',
    source: 'RFC 5280 §4.2.1.6; RFC 5321 §4.1.2',
    description: 'email SANs are local@domain mailboxes',
    check: ({ sans }) => {
      for (const n of sans) {
        const problem = n.type === 'email' ? emailProblem(n.value) : undefined;
        if (problem) return `${formatGeneralName(n)} ${problem}`;
      }
      return undefined;
    },
  },
  {
    name: 'uri_syntax',
    source: 'RFC 5280 §4.2.1.6; RFC 3986',
    description: 'URI SANs are absolute URIs',
    check: ({ sans }) => {
      for (const n of sans) {
        const problem = n.type === 'uri' ? uriProblem(n.value) : undefined;
        if (problem) return `${formatGeneralName(n)} ${problem}`;
      }
      return undefined;
    },
  },
  {
    name: 'distribution_uri_syntax',
    source: 'RFC 5280 §4.2.1.13, §4.2.2.1',
    description: 'CRL distribution point and AIA locations are http, https or ldap URLs',
    check: ({ ext }) => {
      const aia = ext('authorityInfoAccess');
      for (const u of [
        ...(ext('crlDistributionPoints')?.uris ?? []),
        ...(aia?.ocsp ?? []),
        ...(aia?.caIssuers ?? []),
      ]) {
        if (uriProblem(u) || !/^(https?|ldap):\/\//i.test(u)) return `"${u}" is not an http(s) or ldap URL`;
      }
      return undefined;
    },
  },
  {
    name: 'ocsp_signer_profile',
    source: 'RFC 6960 §4.2.2.2, §4.2.2.2.1',
    description: 'a delegated OCSP signer has exactly the OCSPSigning purpose and id-pkix-ocsp-nocheck',
    check: ({ kind, ext }) => {
      if (kind !== 'ocsp-signer') return undefined;
      const purposes = ext('extKeyUsage')?.purposes ?? [];
      if (purposes.length !== 1 || purposes[0] !== EXT_KEY_USAGES.ocspSigning)
        return 'the OCSP signer must have only the OCSPSigning purpose';
      return ext('ocspNoCheck') ? undefined : 'the OCSP signer lacks id-pkix-ocsp-nocheck';
    },
  },
  // --- name constraints
  {
    name: 'name_constraints_only_ca',
    source: 'RFC 5280 §4.2.1.10',
    description: 'name constraints appear only in CA certificates',
    check: ({ kind, ext }) =>
      kind !== 'ca' && ext('nameConstraints') ? 'a leaf with name constraints' : undefined,
  },
  {
    name: 'name_constraints_critical',
    source: 'RFC 5280 §4.2.1.10',
    description: 'name constraints are marked critical',
    check: ({ ext }) => {
      const nc = ext('nameConstraints');
      return nc && !nc.critical ? 'name constraints are not critical' : undefined;
    },
  },
  {
    name: 'name_constraints',
    source: 'RFC 5280 §4.2.1.10, §6.1.3',
    description: "every SAN lies within the issuer's permitted subtrees and outside its excluded ones",
    check: ({ issuer, sans }) => {
      if (!issuer.nameConstraints) return undefined;
      const { permitted, excluded } = issuer.nameConstraints;
      const unchecked = [...permitted, ...excluded].find((b) => b.type === 'dirName' || b.type === 'other');
      // fail closed: a constraint keywright cannot evaluate might be one this certificate breaks
      if (unchecked) return `the issuer has ${unchecked.type} name constraints, which keywright cannot check`;
      for (const n of sans) {
        const why = constraintViolation(n, issuer.nameConstraints);
        if (why) return `${formatGeneralName(n)} breaks the issuer's name constraints: ${why}`;
      }
      return undefined;
    },
  },
];

export interface LintFinding {
  readonly rule: string;
  readonly message: string;
}

/** Runs every rule; returns the failures (empty when the certificate may be signed). */
export function lintCertificate(
  tbs: TbsCertificate,
  kind: CertificateKind,
  issuer: LintIssuer,
): LintFinding[] {
  const byKind = new Map<ExtensionKind, Extension>();
  for (const e of tbs.extensions) if (!byKind.has(e.kind)) byKind.set(e.kind, e);
  const subject: Subject = {
    tbs,
    kind,
    issuer,
    key: describeKey(tbs.subjectPublicKey),
    sans: (byKind.get('subjectAltName') as ExtensionOf<'subjectAltName'> | undefined)?.names ?? [],
    cn: commonNameOf(tbs.subject),
    ext: <K extends ExtensionKind>(k: K) => byKind.get(k) as ExtensionOf<K> | undefined,
  };
  const findings: LintFinding[] = [];
  for (const rule of LINT_RULES) {
    const message = rule.check(subject);
    if (message !== undefined) findings.push({ rule: rule.name, message });
  }
  return findings;
}

/** Throws LINT_FAILED naming the first failing rule (all findings in details) unless the TBS is clean. */
export function assertLintClean(tbs: TbsCertificate, kind: CertificateKind, issuer: LintIssuer): void {
  const findings = lintCertificate(tbs, kind, issuer);
  const first = findings[0];
  if (!first) return;
  throw new CaError('LINT_FAILED', `lint ${first.rule}: ${first.message}; nothing was signed`, {
    details: { rule: first.rule, findings },
  });
}
