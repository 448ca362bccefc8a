/**
 * CA benchmark: for each CA key type, the raw `crypto.sign` rate of that key beside, in the same process
 * and run, the rates of
 *   - leaf      — a leaf from a public key: policy, lint, DER encode, sign (the signing core);
 *   - csr       — a CSR signed by the core: parse, verify its signature, policy, lint, sign;
 *   - sign API  — CaService.sign, what POST /v1/cas/{ca}/sign runs: the above plus the ledger commit;
 *   - issue     — CertificateService.create, what `cert issue` runs: a new P-256 key, its CSR, the
 *                 signature, the key sealed (AES-256-GCM), version and blobs committed;
 * and the build + sign time of a CRL with 100 000 entries. Method (perf-anchors §2): one warm-up
 * sample, then the median of N samples; sequential, one core. The store is the in-memory one (same
 * staging and commit code as lowdb, no disk) and the audit log a stub, so disk fsyncs are left out:
 * the store and audit benchmarks measure those.
 */
import { randomBytes, sign } from 'node:crypto';
import { generateKeyPairSync } from '../test/helpers/keys.js';
import { systemClock } from '../src/core/clock.js';
import { silentLogger } from '../src/core/logger.js';
import type { CertKeyType } from '../src/pki/key-spec.js';
import { buildCsr } from '../src/pki/csr.js';
import { parseCertificate } from '../src/pki/certificate.js';
import type { CrlEntry } from '../src/ca/crl.js';
import { buildCrl } from '../src/ca/crl.js';
import { createRoot } from '../src/ca/hierarchy.js';
import { ensureCaHierarchy, getCa } from '../src/ca/authority.js';
import { buildLeafCertificate, buildLeafFromCsr } from '../src/ca/issue.js';
import { BUILTIN_PROFILES } from '../src/ca/profiles.js';
import { CaService } from '../src/ca/service.js';
import { createKeyRing } from '../src/keys/software/key-ring.js';
import { SoftwareSealer } from '../src/keys/software/sealer.js';
import { IssuerRegistry } from '../src/issuer/registry.js';
import type { OpContext } from '../src/issuer/port.js';
import type { AuditEntry, AuditInput } from '../src/audit/entry.js';
import { createMemoryStore } from '../src/store/memory/index.js';
import { CertificateService } from '../src/lifecycle/certificate-service.js';
import type { BenchOptions, BenchResult } from './run.js';
import { spread, type Spread } from './stats.js';

const DAY = 86_400_000;
const SANS = ['svc.internal.example', 'svc', '10.1.2.3'];
const CRL_ENTRIES = 100_000;

interface Plan {
  readonly samples: number;
  readonly sampleMs: number;
  readonly crlRuns: number;
}
const FULL: Plan = { samples: 5, sampleMs: 1000, crlRuns: 7 };
const QUICK: Plan = { samples: 1, sampleMs: 250, crlRuns: 1 };

/** Operations per second of a synchronous call: N samples after one warm-up. */
function rate(plan: Plan, fn: () => void): Spread {
  const sample = (): number => {
    let n = 0;
    const start = performance.now();
    const end = start + plan.sampleMs;
    while (performance.now() < end) {
      for (let i = 0; i < 8; i++) fn();
      n += 8;
    }
    return (n * 1000) / (performance.now() - start);
  };
  sample();
  return spread(Array.from({ length: plan.samples }, sample));
}

/** The same for an async call, awaited one at a time (one request after another). */
async function rateAsync(plan: Plan, fn: () => Promise<unknown>): Promise<Spread> {
  const sample = async (): Promise<number> => {
    let n = 0;
    const start = performance.now();
    const end = start + plan.sampleMs;
    while (performance.now() < end) {
      await fn();
      n++;
    }
    return (n * 1000) / (performance.now() - start);
  };
  await sample();
  const out: number[] = [];
  for (let i = 0; i < plan.samples; i++) out.push(await sample());
  return spread(out);
}

const auditStub = {
  append: (input: AuditInput): Promise<AuditEntry> =>
    Promise.resolve({ ...input, seq: 0, time: '', prev: '', hash: '' }),
};

interface Row {
  readonly caKey: CertKeyType;
  readonly hash: string | null;
  readonly raw: Spread;
  readonly leaf: Spread;
  readonly csr: Spread;
  readonly signApi: Spread;
  readonly issue: Spread;
}

const CA_TYPES: ReadonlyArray<[CertKeyType, string | null]> = [
  ['ec-p256', 'sha256'],
  ['ec-p384', 'sha384'],
  ['ed25519', null],
  ['rsa-2048', 'sha256'],
];

async function measureCa(plan: Plan, caKey: CertKeyType, hash: string | null): Promise<Row> {
  const store = createMemoryStore();
  const sealer = new SoftwareSealer(createKeyRing(randomBytes(32)));
  await ensureCaHierarchy({
    store,
    sealer,
    audit: auditStub,
    clock: systemClock,
    actor: 'bench',
    config: {
      root: { name: 'root', key: caKey, lifetime: 3650 * DAY },
      intermediate: { name: 'default', key: caKey, lifetime: 1825 * DAY },
    },
  });
  const registry = new IssuerRegistry();
  const cas = new CaService({
    store,
    sealer,
    audit: auditStub,
    clock: systemClock,
    logger: silentLogger,
    registry,
    crlValidityMs: 7 * DAY,
    crlOfflineValidityMs: 365 * DAY,
    ocspValidityMs: 3_600_000,
  });
  const { key } = await cas.issuer('default').signer();
  const issuer = { certificate: parseCertificate(getCa(store, 'default').certificatePem), key };
  const certs = new CertificateService({
    store,
    sealer,
    audit: auditStub,
    clock: systemClock,
    logger: silentLogger,
    resolveIssuer: (ref) => registry.resolve(ref),
  });
  const ctx: OpContext = { clock: systemClock, logger: silentLogger, actor: 'bench' };

  const tbsLike = randomBytes(520);
  const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const csrDer = buildCsr({
    subject: { commonName: SANS[0]! },
    sans: SANS.map((s) =>
      /^\d/.test(s) ? { type: 'ip' as const, value: s } : { type: 'dns' as const, value: s },
    ),
    privateKey: leafKey.privateKey,
  });
  const raw = rate(plan, () => sign(hash, tbsLike, key));
  const leaf = rate(plan, () =>
    buildLeafCertificate({
      issuer,
      subjectPublicKey: leafKey.publicKey,
      sans: SANS,
      profile: BUILTIN_PROFILES.server,
      clock: systemClock,
    }),
  );
  const csr = rate(plan, () =>
    buildLeafFromCsr({ issuer, csr: csrDer, profile: BUILTIN_PROFILES.server, clock: systemClock }),
  );
  const signApi = await rateAsync(plan, () => cas.sign('default', { csr: csrDer }, ctx));
  let n = 0;
  const issue = await rateAsync(plan, () =>
    certs.create(
      `c${n++}`,
      { issuer: 'ca:default', sans: SANS, keyType: 'ec-p256', lifetimeMs: 90 * DAY, keyRotation: 'always' },
      { source: 'api' },
      ctx,
    ),
  );
  return { caKey, hash, raw, leaf, csr, signApi, issue };
}

function measureCrl(plan: Plan): { entries: number; bytes: number; ms: Spread } {
  // the CRL's cost does not depend on the hierarchy: a self-signed P-256 CA signs it
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const root = {
    certificate: createRoot({
      key: privateKey,
      subject: { commonName: 'bench CRL CA' },
      lifetimeMs: 3650 * DAY,
      clock: systemClock,
    }).der,
    key: privateKey,
  };
  const entries: CrlEntry[] = Array.from({ length: CRL_ENTRIES }, (_, i) => ({
    serialHex: randomBytes(16).toString('hex'),
    revokedAt: new Date(Date.UTC(2026, 0, 1) + i * 1000),
    ...(i % 4 === 0 ? { reason: 'keyCompromise' as const } : {}),
  }));
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < plan.crlRuns; i++) {
    const t0 = performance.now();
    const crl = buildCrl({ issuer: root, entries, crlNumber: i + 1, clock: systemClock, validityMs: DAY });
    times.push(performance.now() - t0);
    bytes = crl.der.length;
  }
  return { entries: CRL_ENTRIES, bytes, ms: spread(times) };
}

const fmtRate = (s: Spread, runs: number): string =>
  runs === 1
    ? `${Math.round(s.median).toLocaleString('en')}/s`
    : `${Math.round(s.median).toLocaleString('en')}/s (${Math.round(s.min).toLocaleString('en')}–${Math.round(s.max).toLocaleString('en')})`;
const ratio = (a: Spread, raw: Spread): string => (a.median / raw.median).toFixed(2);

function render(rows: readonly Row[], crl: ReturnType<typeof measureCrl>, plan: Plan): string {
  const header = [
    'CA key',
    'raw sign',
    'leaf',
    '×raw',
    'csr',
    '×raw',
    'sign API',
    '×raw',
    'issue key+cert',
    '×raw',
  ];
  const body = rows.map((r) => [
    r.caKey,
    fmtRate(r.raw, plan.samples),
    ...[r.leaf, r.csr, r.signApi, r.issue].flatMap((s) => [fmtRate(s, plan.samples), ratio(s, r.raw)]),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
    '',
    `CRL with ${crl.entries.toLocaleString('en')} entries (P-256 CA): ${(crl.bytes / 1e6).toFixed(2)} MB, build + sign median ${crl.ms.median.toFixed(0)} ms (${crl.ms.min.toFixed(0)}–${crl.ms.max.toFixed(0)}) over ${plan.crlRuns} runs`,
    `median (min–max) of ${plan.samples} × ${plan.sampleMs} ms samples after a warm-up, one core; leaf = policy + lint + encode + sign;`,
    'csr = parse + verify + policy + lint + sign; sign API = CaService.sign (+ ledger commit); issue = CertificateService.create',
    '(new P-256 key, CSR, sign, seal, commit); memory store and audit stub: no disk fsync in these figures',
  ].join('\n');
}

export async function caBench(options: BenchOptions): Promise<BenchResult> {
  const plan = options.quick ? QUICK : FULL;
  const rows: Row[] = [];
  for (const [type, hash] of CA_TYPES) rows.push(await measureCa(plan, type, hash));
  const crl = measureCrl(plan);
  return {
    table: render(rows, crl, plan),
    json: {
      plan,
      rows: rows.map((r) => ({
        ...r,
        ratios: {
          leaf: r.leaf.median / r.raw.median,
          csr: r.csr.median / r.raw.median,
          signApi: r.signApi.median / r.raw.median,
          issue: r.issue.median / r.raw.median,
        },
      })),
      crl: { entries: crl.entries, bytes: crl.bytes, ms: crl.ms },
    },
  };
}
