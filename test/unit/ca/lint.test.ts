/**
 * One case per lint rule: a to-be-signed certificate built through the test seam (prepareLeaf /
 * prepareIntermediate give a clean TBS; each case alters it the way the rule forbids). A last test checks
 * that every rule in LINT_RULES has its case here.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes } from 'node:crypto';
import { generateKeyPairSync } from '../../helpers/keys.js';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { prepareIntermediate } from '../../../src/ca/hierarchy.js';
import { buildLeafCertificate, prepareLeaf } from '../../../src/ca/issue.js';
import type { CertificateKind, LintIssuer } from '../../../src/ca/lint.js';
import { assertLintClean, LINT_RULES, lintCertificate, lintIssuerOf } from '../../../src/ca/lint.js';
import { BUILTIN_PROFILES } from '../../../src/ca/profiles.js';
import { SIGNATURE_ALGORITHMS } from '../../../src/pki/algorithms.js';
import type { TbsCertificate } from '../../../src/pki/certificate.js';
import { oid, sequence, sequenceOf, setOf, utf8String } from '../../../src/pki/der.js';
import type { Extension, ExtensionKind } from '../../../src/pki/extensions.js';
import { EXT_KEY_USAGES } from '../../../src/pki/extensions.js';
import { EMPTY_NAME, encodeName, parseName } from '../../../src/pki/name.js';
import { OID } from '../../../src/pki/oids.js';
import { buildHierarchy, DAY, ecKey } from '../../fixtures/pki-ca.js';

const clock = new FakeClock(Date.UTC(2026, 2, 1, 9, 30, 0));
const h = buildHierarchy(clock, { nameConstraints: { permitted: ['DNS:internal', 'IP:10.0.0.0/8'] } });
const leafKey = ecKey();

function leaf(): { tbs: TbsCertificate; issuer: LintIssuer } {
  const { tbs, issuer } = prepareLeaf({
    issuer: h.issuer,
    subjectPublicKey: leafKey.publicKey,
    sans: ['web.internal', '10.0.0.5'],
    profile: BUILTIN_PROFILES.server,
    clock,
    urls: { crl: 'http://ca.internal/crl/default.crl' },
  });
  return { tbs, issuer: lintIssuerOf(issuer) };
}

function subCa(): { tbs: TbsCertificate; issuer: LintIssuer } {
  const { tbs, issuer } = prepareIntermediate({
    issuer: h.rootIssuer,
    subjectPublicKey: ecKey().publicKey,
    subject: { commonName: 'Sub CA' },
    lifetimeMs: 365 * DAY,
    clock,
    nameConstraints: { permitted: ['DNS:internal'] },
  });
  return { tbs, issuer: lintIssuerOf(issuer) };
}

/** Replaces (or with `undefined` removes) the extension of a kind. */
function setExt(tbs: TbsCertificate, kind: ExtensionKind, ext: Extension | undefined): TbsCertificate {
  const rest = tbs.extensions.filter((e) => e.kind !== kind);
  return { ...tbs, extensions: ext ? [...rest, ext] : rest };
}

function ext<K extends ExtensionKind>(tbs: TbsCertificate, kind: K): Extract<Extension, { kind: K }> {
  return tbs.extensions.find((e) => e.kind === kind) as Extract<Extension, { kind: K }>;
}

interface Case {
  kind?: CertificateKind;
  base?: () => { tbs: TbsCertificate; issuer: LintIssuer };
  mutate: (tbs: TbsCertificate, issuer: LintIssuer) => { tbs?: TbsCertificate; issuer?: LintIssuer };
}

const rsaEvenExponent = (() => {
  const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
  return createPublicKey({ key: { ...jwk, e: Buffer.from([1, 0, 0]).toString('base64url') }, format: 'jwk' });
})();

const CASES: Record<string, Case> = {
  serial_positive: {
    mutate: (t) => ({ tbs: { ...t, serialNumber: Buffer.from('8f' + 'ab'.repeat(15), 'hex') } }),
  },
  serial_der_minimal: {
    mutate: (t) => ({ tbs: { ...t, serialNumber: Buffer.from('0012' + 'ab'.repeat(14), 'hex') } }),
  },
  serial_max_20_bytes: {
    mutate: (t) => ({ tbs: { ...t, serialNumber: Buffer.from('7f' + 'ab'.repeat(20), 'hex') } }),
  },
  serial_entropy_64_bits: { mutate: (t) => ({ tbs: { ...t, serialNumber: Buffer.from('01', 'hex') } }) },
  issuer_is_ca: { mutate: (_t, i) => ({ issuer: { ...i, isCa: false } }) },
  issuer_name_matches: {
    mutate: (t) => ({ tbs: { ...t, issuer: parseName(encodeName({ commonName: 'Someone Else' })) } }),
  },
  issuer_path_length: { kind: 'ca', base: subCa, mutate: (_t, i) => ({ issuer: { ...i, pathLen: 0 } }) },
  signature_algorithm_matches_issuer: {
    mutate: (t) => ({ tbs: { ...t, signatureAlgorithm: SIGNATURE_ALGORITHMS['ecdsa-with-SHA384'] } }),
  },
  validity_whole_seconds: {
    mutate: (t) => ({ tbs: { ...t, notAfter: new Date(t.notAfter.getTime() - 500) } }),
  },
  validity_order: { mutate: (t) => ({ tbs: { ...t, notBefore: t.notAfter } }) },
  validity_within_issuer: {
    mutate: (t, i) => ({ tbs: { ...t, notAfter: new Date(i.notAfter.getTime() + DAY) } }),
  },
  key_type_allowed: {
    mutate: (t) => ({ tbs: { ...t, subjectPublicKey: generateKeyPairSync('x25519').publicKey } }),
  },
  key_rsa_size: {
    mutate: (t) => ({
      tbs: { ...t, subjectPublicKey: generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey },
    }),
  },
  key_rsa_exponent: { mutate: (t) => ({ tbs: { ...t, subjectPublicKey: rsaEvenExponent } }) },
  key_ec_curve: {
    mutate: (t) => ({
      tbs: { ...t, subjectPublicKey: generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey },
    }),
  },
  ext_no_duplicates: {
    mutate: (t) => ({ tbs: { ...t, extensions: [...t.extensions, ext(t, 'subjectKeyIdentifier')] } }),
  },
  ski_present: { mutate: (t) => ({ tbs: setExt(t, 'subjectKeyIdentifier', undefined) }) },
  aki_present: { mutate: (t) => ({ tbs: setExt(t, 'authorityKeyIdentifier', undefined) }) },
  aki_matches_issuer: {
    mutate: (t) => ({
      tbs: setExt(t, 'authorityKeyIdentifier', {
        kind: 'authorityKeyIdentifier',
        critical: false,
        keyId: randomBytes(20),
      }),
    }),
  },
  bc_present: { mutate: (t) => ({ tbs: setExt(t, 'basicConstraints', undefined) }) },
  bc_ca_critical: {
    kind: 'ca',
    base: subCa,
    mutate: (t) => ({
      tbs: setExt(t, 'basicConstraints', { kind: 'basicConstraints', critical: false, ca: true, pathLen: 0 }),
    }),
  },
  bc_ca_flag: {
    kind: 'ca',
    base: subCa,
    mutate: (t) => ({
      tbs: setExt(t, 'basicConstraints', { kind: 'basicConstraints', critical: true, ca: false }),
    }),
  },
  bc_leaf_not_ca: {
    mutate: (t) => ({
      tbs: setExt(t, 'basicConstraints', { kind: 'basicConstraints', critical: true, ca: true }),
    }),
  },
  bc_pathlen_only_ca: {
    mutate: (t) => ({
      tbs: setExt(t, 'basicConstraints', { kind: 'basicConstraints', critical: true, ca: false, pathLen: 0 }),
    }),
  },
  ku_present: {
    mutate: (t) => ({ tbs: setExt(t, 'keyUsage', { kind: 'keyUsage', critical: true, usages: [] }) }),
  },
  ku_ca_critical: {
    kind: 'ca',
    base: subCa,
    mutate: (t) => ({
      tbs: setExt(t, 'keyUsage', { kind: 'keyUsage', critical: false, usages: ['keyCertSign', 'cRLSign'] }),
    }),
  },
  ku_ca_cert_sign: {
    kind: 'ca',
    base: subCa,
    mutate: (t) => ({
      tbs: setExt(t, 'keyUsage', { kind: 'keyUsage', critical: true, usages: ['cRLSign'] }),
    }),
  },
  ku_leaf_no_cert_sign: {
    mutate: (t) => ({
      tbs: setExt(t, 'keyUsage', {
        kind: 'keyUsage',
        critical: true,
        usages: ['digitalSignature', 'keyCertSign'],
      }),
    }),
  },
  ku_matches_key_type: {
    mutate: (t) => ({
      tbs: setExt(t, 'keyUsage', {
        kind: 'keyUsage',
        critical: true,
        usages: ['digitalSignature', 'keyEncipherment'],
      }),
    }),
  },
  eku_leaf_present: { mutate: (t) => ({ tbs: setExt(t, 'extKeyUsage', undefined) }) },
  eku_consistent_with_ku: {
    mutate: (t) => ({
      tbs: setExt(t, 'keyUsage', { kind: 'keyUsage', critical: true, usages: ['contentCommitment'] }),
    }),
  },
  ca_subject_not_empty: {
    kind: 'ca',
    base: subCa,
    mutate: (t) => ({ tbs: { ...t, subject: parseName(EMPTY_NAME) } }),
  },
  san_present: { mutate: (t) => ({ tbs: setExt(t, 'subjectAltName', undefined) }) },
  san_critical_if_subject_empty: { mutate: (t) => ({ tbs: { ...t, subject: parseName(EMPTY_NAME) } }) },
  subject_cn_length: {
    mutate: (t) => ({
      // built by hand: encodeName itself refuses a 65-character CN
      tbs: {
        ...t,
        subject: parseName(sequenceOf([setOf([sequence(oid(OID.commonName), utf8String('a'.repeat(65)))])])),
      },
    }),
  },
  subject_cn_in_san: {
    mutate: (t) => ({ tbs: { ...t, subject: parseName(encodeName({ commonName: 'other.internal' })) } }),
  },
  dns_syntax: {
    mutate: (t) => ({
      tbs: setExt(t, 'subjectAltName', {
        kind: 'subjectAltName',
        critical: false,
        names: [{ type: 'dns', value: 'web_1.internal' }],
      }),
    }),
  },
  dns_wildcard_leftmost: {
    mutate: (t) => ({
      tbs: setExt(t, 'subjectAltName', {
        kind: 'subjectAltName',
        critical: false,
        names: [{ type: 'dns', value: 'web.*.internal' }],
      }),
    }),
  },
  ip_syntax: {
    mutate: (t) => ({
      tbs: setExt(t, 'subjectAltName', {
        kind: 'subjectAltName',
        critical: false,
        names: [{ type: 'ip', value: '10.0.0.256' }],
      }),
    }),
  },
  email_syntax: {
    mutate: (t) => ({
      tbs: setExt(t, 'subjectAltName', {
        kind: 'subjectAltName',
        critical: false,
        names: [{ type: 'email', value: 'ops.example.com' }],
      }),
    }),
  },
  uri_syntax: {
    mutate: (t) => ({
      tbs: setExt(t, 'subjectAltName', {
        kind: 'subjectAltName',
        critical: false,
        names: [{ type: 'uri', value: 'no scheme here' }],
      }),
    }),
  },
  distribution_uri_syntax: {
    mutate: (t) => ({
      tbs: setExt(t, 'crlDistributionPoints', {
        kind: 'crlDistributionPoints',
        critical: false,
        uris: ['ftp://ca.internal/x.crl'],
      }),
    }),
  },
  ocsp_signer_profile: { kind: 'ocsp-signer', mutate: () => ({}) },
  name_constraints_only_ca: {
    mutate: (t) => ({
      tbs: setExt(t, 'nameConstraints', {
        kind: 'nameConstraints',
        critical: true,
        permitted: [{ type: 'dns', value: 'internal' }],
        excluded: [],
      }),
    }),
  },
  name_constraints_critical: {
    kind: 'ca',
    base: subCa,
    mutate: (t) => ({ tbs: setExt(t, 'nameConstraints', { ...ext(t, 'nameConstraints'), critical: false }) }),
  },
  name_constraints: {
    mutate: (t) => ({
      tbs: {
        ...setExt(t, 'subjectAltName', {
          kind: 'subjectAltName',
          critical: false,
          names: [{ type: 'dns', value: 'web.example.com' }],
        }),
        subject: parseName(EMPTY_NAME),
      },
    }),
  },
};

describe('lint: the clean baselines pass', () => {
  test('a prepared leaf and a prepared intermediate have no findings', () => {
    const l = leaf();
    assert.deepEqual(lintCertificate(l.tbs, 'leaf', l.issuer), []);
    const c = subCa();
    assert.deepEqual(lintCertificate(c.tbs, 'ca', c.issuer), []);
  });
});

describe('lint: each rule refuses a certificate that breaks it', () => {
  for (const [rule, c] of Object.entries(CASES)) {
    test(rule, () => {
      const base = (c.base ?? leaf)();
      const changed = c.mutate(base.tbs, base.issuer);
      const tbs = changed.tbs ?? base.tbs;
      const issuer = changed.issuer ?? base.issuer;
      const kind = c.kind ?? 'leaf';
      const findings = lintCertificate(tbs, kind, issuer);
      assert.ok(
        findings.some((f) => f.rule === rule),
        `expected ${rule} among ${JSON.stringify(findings)}`,
      );
      assert.throws(
        () => assertLintClean(tbs, kind, issuer),
        (e) => isAppError(e, 'LINT_FAILED') && typeof e.details.rule === 'string',
      );
    });
  }

  test('every rule in LINT_RULES has a case above', () => {
    assert.deepEqual(LINT_RULES.map((r) => r.name).sort(), Object.keys(CASES).sort());
  });
});

test('a failing lint means nothing is signed: the issuing path throws LINT_FAILED naming the rule', () => {
  // name constraints on the intermediate permit only DNS:internal; the profile would allow example.com
  assert.throws(
    () =>
      buildLeafCertificate({
        issuer: h.issuer,
        subjectPublicKey: leafKey.publicKey,
        sans: ['web.example.com'],
        profile: BUILTIN_PROFILES.server,
        clock,
      }),
    (e) =>
      isAppError(e, 'LINT_FAILED') &&
      e.details.rule === 'name_constraints' &&
      /DNS:web\.example\.com/.test(e.message),
  );
});

test('OCSP signer purpose is accepted when exact', () => {
  const base = leaf();
  const tbs = setExt(
    setExt(
      setExt(base.tbs, 'extKeyUsage', {
        kind: 'extKeyUsage',
        critical: false,
        purposes: [EXT_KEY_USAGES.ocspSigning],
      }),
      'ocspNoCheck',
      {
        kind: 'ocspNoCheck',
        critical: false,
      },
    ),
    'subjectAltName',
    undefined,
  );
  assert.deepEqual(
    lintCertificate(
      { ...tbs, subject: parseName(encodeName({ commonName: 'OCSP' })) },
      'ocsp-signer',
      base.issuer,
    ),
    [],
  );
});

test('name constraints keywright cannot evaluate (directoryName) refuse issuance rather than being ignored', () => {
  const base = leaf();
  const issuer: LintIssuer = {
    ...base.issuer,
    nameConstraints: {
      permitted: [{ type: 'dirName', value: 'O=Example', der: encodeName({ organization: 'Example' }) }],
      excluded: [],
    },
  };
  assert.ok(lintCertificate(base.tbs, 'leaf', issuer).some((f) => f.rule === 'name_constraints'));
});
