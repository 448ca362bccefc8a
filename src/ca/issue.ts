/**
 * End-entity certificates. A request brings a public key (from a CSR or a key keywright made) and the
 * names wanted; the profile decides which names are allowed and supplies everything else (key usage,
 * EKU, lifetime bounds). Every leaf carries SKI, AKI, BasicConstraints CA:FALSE, KeyUsage, EKU, SAN and,
 * when URLs are configured, AIA and a CRL distribution point; it is linted before it is signed.
 */
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { KeyInfo } from '../pki/algorithms.js';
import { spkiOf } from '../pki/algorithms.js';
import type { TbsCertificate } from '../pki/certificate.js';
import type { ParsedCsr } from '../pki/csr.js';
import { parseCsr } from '../pki/csr.js';
import type { Extension, KeyUsage } from '../pki/extensions.js';
import { EXT_KEY_USAGES } from '../pki/extensions.js';
import type { GeneralName } from '../pki/general-name.js';
import { formatGeneralName } from '../pki/general-name.js';
import type { NameInput } from '../pki/name.js';
import { buildName, MAX_COMMON_NAME } from '../pki/name.js';
import { parseIp } from '../pki/ip.js';
import type { CaIssuer, IssuerContext } from './issuer-context.js';
import { issuerContext } from './issuer-context.js';
import { lintIssuerOf } from './lint.js';
import type { PolicyOptions, PolicyResult, Profile } from './profiles.js';
import { applyProfile, normaliseName } from './profiles.js';
import { dnsNameProblem } from './names.js';
import type { RandomSource } from './serial.js';
import type { IssuedCertificate, IssueUrls } from './sign.js';
import { computeValidity, issuedTbs, lintAndSign, revocationPointers } from './sign.js';

export interface LeafRequest {
  readonly issuer: CaIssuer | IssuerContext;
  readonly subjectPublicKey: KeyObject;
  /** Subject attributes; CN defaults to the first DNS or IP SAN when it fits in 64 characters. */
  readonly subject?: NameInput;
  readonly sans: readonly (string | GeneralName)[];
  readonly profile: Profile;
  /** Requested lifetime; the profile's default when absent, refused when over its maximum. */
  readonly lifetimeMs?: number;
  readonly clock: Clock;
  /** A fixed serial (magnitude bytes or hex); random 128-bit by default. */
  readonly serial?: Uint8Array | string;
  readonly random?: RandomSource;
  readonly urls?: IssueUrls;
  readonly policy?: PolicyOptions;
}

/** RFC 5280 §4.2.1.3 by key type: ECDSA and Ed25519 sign; RSA may also carry TLS 1.2 key transport. */
function leafKeyUsages(profile: Profile, key: KeyInfo): KeyUsage[] {
  const wanted: readonly KeyUsage[] =
    profile.keyUsages ??
    (key.family === 'rsa' && profile.extKeyUsages.includes('serverAuth')
      ? ['digitalSignature', 'keyEncipherment']
      : ['digitalSignature']);
  return wanted.filter((u) => {
    if (u === 'keyCertSign' || u === 'cRLSign') return false;
    if (u === 'keyEncipherment' || u === 'dataEncipherment') return key.family === 'rsa';
    if (u === 'keyAgreement' || u === 'encipherOnly' || u === 'decipherOnly') return key.family === 'ec';
    return true;
  });
}

function defaultCommonName(names: readonly GeneralName[]): string | undefined {
  const first = names.find((n) => n.type === 'dns' || n.type === 'ip');
  return first && 'value' in first && first.value.length <= MAX_COMMON_NAME ? first.value : undefined;
}

export interface PreparedLeaf {
  readonly tbs: TbsCertificate;
  readonly issuer: IssuerContext;
  readonly policy: PolicyResult;
}

/**
 * Applies the profile and assembles the TBSCertificate, without lint or signature. The seam tests use to
 * alter a TBS and show lint refusing it; buildLeafCertificate = prepareLeaf + lint + sign.
 */
export function prepareLeaf(req: LeafRequest): PreparedLeaf {
  const issuer = issuerContext(req.issuer);
  const policy = applyProfile(
    req.profile,
    {
      sans: req.sans,
      publicKey: req.subjectPublicKey,
      ...(req.lifetimeMs !== undefined ? { lifetimeMs: req.lifetimeMs } : {}),
    },
    req.policy,
  );
  const { notBefore, notAfter } = computeValidity(
    req.clock,
    policy.lifetimeMs,
    [new Date(req.clock.nowMs() + req.profile.maxLifetimeMs), issuer.certificate.notAfter],
    issuer.certificate.notBefore,
  );

  const cn = req.subject?.commonName ?? defaultCommonName(policy.names);
  const subject = buildName({ ...req.subject, ...(cn !== undefined ? { commonName: cn } : {}) });

  const extensions: Extension[] = [
    { kind: 'keyUsage', critical: true, usages: leafKeyUsages(req.profile, policy.key) },
    {
      kind: 'extKeyUsage',
      critical: false,
      purposes: req.profile.extKeyUsages.map((e) => EXT_KEY_USAGES[e]),
    },
    { kind: 'basicConstraints', critical: true, ca: false },
    { kind: 'subjectKeyIdentifier', critical: false, keyId: spkiOf(req.subjectPublicKey).keyId },
    { kind: 'authorityKeyIdentifier', critical: false, keyId: issuer.keyId },
    // RFC 5280 §4.2.1.6: critical exactly when the subject is empty
    { kind: 'subjectAltName', critical: subject.rdns.length === 0, names: policy.names },
    ...revocationPointers(req.urls),
  ];

  const tbs = issuedTbs(issuer, {
    serial: req.serial,
    random: req.random,
    notBefore,
    notAfter,
    subject,
    subjectPublicKey: req.subjectPublicKey,
    extensions,
  });
  return { tbs, issuer, policy };
}

/** Builds, lints and signs an end-entity certificate; `names` are those the profile certified. */
export function buildLeafCertificate(
  req: LeafRequest,
): IssuedCertificate & { readonly names: readonly GeneralName[] } {
  const { tbs, issuer, policy } = prepareLeaf(req);
  return { ...lintAndSign(tbs, 'leaf', lintIssuerOf(issuer), issuer.key), names: policy.names };
}

/**
 * The names a CSR asks for: its SANs, plus its CN when that is a DNS name or IP not already listed
 * (the legacy way of asking). The profile then vets them; nothing else from the CSR is used.
 */
export function namesFromCsr(csr: ParsedCsr): GeneralName[] {
  const names = [...csr.requestedNames];
  const cn = csr.subject.rdns.flat().findLast((a) => a.type === 'CN')?.value;
  if (cn === undefined) return names;
  // a CN that is neither a host name nor an address ("Payments Service") asks for no name: ignore it
  const candidate: GeneralName | undefined = parseIp(cn)
    ? { type: 'ip', value: cn }
    : dnsNameProblem(cn, true) === undefined
      ? { type: 'dns', value: cn }
      : undefined;
  if (!candidate) return names;
  const key = formatGeneralName(normaliseName(candidate));
  if (!names.some((n) => formatGeneralName(normaliseName(n)) === key)) names.unshift(candidate);
  return names;
}

export interface CsrLeafRequest extends Omit<LeafRequest, 'subjectPublicKey' | 'sans'> {
  /** PEM or DER (≤ 64 KB), or an already parsed and verified CSR. */
  readonly csr: string | Uint8Array | ParsedCsr;
  /** Names to certify instead of those the CSR asks for. */
  readonly sans?: readonly (string | GeneralName)[];
}

/** Signs a CSR: its signature is verified (CSR_INVALID), its names vetted by the profile, its extensions ignored. */
export function buildLeafFromCsr(
  req: CsrLeafRequest,
): IssuedCertificate & { readonly names: readonly GeneralName[] } {
  const csr = typeof req.csr === 'string' || req.csr instanceof Uint8Array ? parseCsr(req.csr) : req.csr;
  return buildLeafCertificate({
    ...req,
    subjectPublicKey: csr.publicKey,
    sans: req.sans ?? namesFromCsr(csr),
  });
}
