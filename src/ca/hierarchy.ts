/**
 * CA certificates: self-signed roots and intermediates (RFC 5280 §4.2.1.9, §4.2.1.3, §4.2.1.10). Both get
 * BasicConstraints CA:TRUE (critical), KeyUsage keyCertSign + cRLSign (critical) and an SKI; an
 * intermediate gets an AKI, a path length (0 by default: it issues leaves only) and optional name
 * constraints; each goes through the same lint as a leaf.
 */
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { signatureAlgorithmFor, spkiOf } from '../pki/algorithms.js';
import type { TbsCertificate } from '../pki/certificate.js';
import type { Extension } from '../pki/extensions.js';
import type { GeneralName } from '../pki/general-name.js';
import { parseSanText } from '../pki/general-name.js';
import { parseCidr } from '../pki/ip.js';
import type { NameInput } from '../pki/name.js';
import { buildName } from '../pki/name.js';
import type { CaIssuer, IssuerContext } from './issuer-context.js';
import { issuerContext } from './issuer-context.js';
import { lintIssuerOf, selfIssuerOf } from './lint.js';
import type { RandomSource } from './serial.js';
import { randomSerial, serialContent } from './serial.js';
import type { IssuedCertificate, IssueUrls } from './sign.js';
import { computeValidity, issuedTbs, lintAndSign, revocationPointers } from './sign.js';

interface CaCommon {
  readonly subject: NameInput;
  readonly lifetimeMs: number;
  readonly clock: Clock;
  readonly serial?: Uint8Array | string;
  readonly random?: RandomSource;
}

export interface RootRequest extends CaCommon {
  /** The root's private key; it signs its own certificate. */
  readonly key: KeyObject;
  /** Optional limit on the number of intermediates below the root. */
  readonly pathLen?: number;
}

export interface NameConstraintsInput {
  /** Subtrees as text: `DNS:svc.internal`, `IP:10.0.0.0/8`, `email:example.com`, `URI:.example.com`. */
  readonly permitted?: readonly (string | GeneralName)[];
  readonly excluded?: readonly (string | GeneralName)[];
}

export interface IntermediateRequest extends CaCommon {
  readonly issuer: CaIssuer | IssuerContext;
  readonly subjectPublicKey: KeyObject;
  /** 0 (default): issues end-entity certificates only. */
  readonly pathLen?: number;
  readonly nameConstraints?: NameConstraintsInput;
  readonly urls?: IssueUrls;
}

function caExtensions(publicKey: KeyObject, pathLen: number | undefined): Extension[] {
  return [
    { kind: 'basicConstraints', critical: true, ca: true, ...(pathLen !== undefined ? { pathLen } : {}) },
    { kind: 'keyUsage', critical: true, usages: ['keyCertSign', 'cRLSign'] },
    { kind: 'subjectKeyIdentifier', critical: false, keyId: spkiOf(publicKey).keyId },
  ];
}

/** A self-signed root CA certificate. RFC 5280 §4.2.1.1 lets a self-signed root omit AKI; it does. */
export function createRoot(req: RootRequest): IssuedCertificate {
  const subject = buildName(req.subject);
  const { notBefore, notAfter } = computeValidity(req.clock, req.lifetimeMs, []);
  const tbs: TbsCertificate = {
    serialNumber: req.serial !== undefined ? serialContent(req.serial) : randomSerial(req.random),
    signatureAlgorithm: signatureAlgorithmFor(req.key),
    issuer: subject,
    notBefore,
    notAfter,
    subject,
    subjectPublicKey: req.key,
    extensions: caExtensions(req.key, req.pathLen),
  };
  return lintAndSign(tbs, 'ca', selfIssuerOf(tbs), req.key);
}

function subtrees(list: readonly (string | GeneralName)[] | undefined): GeneralName[] {
  return (list ?? []).map((s): GeneralName => {
    if (typeof s !== 'string') return s;
    // a bare range such as 10.0.0.0/8 is an IP subtree; parseSanText would read it as a DNS name
    return parseCidr(s) ? { type: 'ip', value: s } : parseSanText(s);
  });
}

/** Prepares an intermediate's TBS without lint or signature (the seam tests use); see createIntermediate. */
export function prepareIntermediate(req: IntermediateRequest): {
  tbs: TbsCertificate;
  issuer: IssuerContext;
} {
  const issuer = issuerContext(req.issuer);
  const subject = buildName(req.subject);
  const { notBefore, notAfter } = computeValidity(
    req.clock,
    req.lifetimeMs,
    [issuer.certificate.notAfter],
    issuer.certificate.notBefore,
  );
  const extensions: Extension[] = [
    ...caExtensions(req.subjectPublicKey, req.pathLen ?? 0),
    { kind: 'authorityKeyIdentifier', critical: false, keyId: issuer.keyId },
  ];
  const permitted = subtrees(req.nameConstraints?.permitted);
  const excluded = subtrees(req.nameConstraints?.excluded);
  if (permitted.length > 0 || excluded.length > 0) {
    extensions.push({ kind: 'nameConstraints', critical: true, permitted, excluded });
  }
  extensions.push(...revocationPointers(req.urls));
  const tbs = issuedTbs(issuer, {
    serial: req.serial,
    random: req.random,
    notBefore,
    notAfter,
    subject,
    subjectPublicKey: req.subjectPublicKey,
    extensions,
  });
  return { tbs, issuer };
}

/** An intermediate CA certificate signed by `issuer`; validity capped by the issuer's. */
export function createIntermediate(req: IntermediateRequest): IssuedCertificate {
  const { tbs, issuer } = prepareIntermediate(req);
  return lintAndSign(tbs, 'ca', lintIssuerOf(issuer), issuer.key);
}
