/**
 * What signing under a CA needs, derived once from its certificate and key and cached per certificate
 * object: the issuer name to copy, the key identifier for AKI, the signature algorithm, validity, path
 * length and name constraints. Deriving it costs a certificate parse and a key comparison; issuing a
 * leaf with a cached context costs neither.
 */
import type { KeyObject } from 'node:crypto';
import { KeyError } from '../core/errors.js';
import type { SignatureAlgorithm } from '../pki/algorithms.js';
import { keysMatch, signatureAlgorithmFor } from '../pki/algorithms.js';
import type { ParsedCertificate } from '../pki/certificate.js';
import { parseCertificate } from '../pki/certificate.js';
import type { ExtensionOf } from '../pki/extensions.js';
import { findExtension } from '../pki/extensions.js';
import { createHash } from 'node:crypto';

/** A CA as callers hand it over: its certificate (DER or parsed) and its private key. */
export interface CaIssuer {
  readonly certificate: Uint8Array | ParsedCertificate;
  readonly key: KeyObject;
}

export interface IssuerContext {
  readonly certificate: ParsedCertificate;
  readonly key: KeyObject;
  readonly algorithm: SignatureAlgorithm;
  /** The issuer's SKI as its certificate states it (RFC 5280 §4.2.1.1: AKI must match it), else computed. */
  readonly keyId: Buffer;
  readonly isCa: boolean;
  /** Whether KeyUsage allows keyCertSign (true when KeyUsage is absent). */
  readonly keyCertSign: boolean;
  readonly crlSign: boolean;
  readonly pathLen: number | undefined;
  readonly nameConstraints: ExtensionOf<'nameConstraints'> | undefined;
}

const cache = new WeakMap<object, IssuerContext>();

/** The context for a CA; throws KEY_INVALID when the key is not the certificate's. */
export function issuerContext(issuer: CaIssuer | IssuerContext): IssuerContext {
  if ('algorithm' in issuer) return issuer;
  const cached = cache.get(issuer.certificate);
  if (cached && cached.key === issuer.key) return cached;
  const certificate =
    issuer.certificate instanceof Uint8Array
      ? parseCertificate(issuer.certificate, 'issuer certificate')
      : issuer.certificate;
  if (!keysMatch(issuer.key, certificate.publicKey)) {
    throw new KeyError('KEY_INVALID', 'the CA key does not belong to the CA certificate', {
      details: { serial: certificate.serialHex },
    });
  }
  const ski = findExtension(certificate.extensions, 'subjectKeyIdentifier');
  const bc = findExtension(certificate.extensions, 'basicConstraints');
  const ku = findExtension(certificate.extensions, 'keyUsage');
  const ctx: IssuerContext = {
    certificate,
    key: issuer.key,
    algorithm: signatureAlgorithmFor(issuer.key),
    keyId: ski?.keyId ?? createHash('sha1').update(certificate.keyBits).digest(),
    isCa: bc?.ca === true,
    keyCertSign: ku ? ku.usages.includes('keyCertSign') : true,
    crlSign: ku ? ku.usages.includes('cRLSign') : true,
    pathLen: bc?.pathLen,
    nameConstraints: findExtension(certificate.extensions, 'nameConstraints'),
  };
  cache.set(issuer.certificate, ctx);
  return ctx;
}
