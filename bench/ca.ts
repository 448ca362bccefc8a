/**
 * CA signing throughput beside the raw signature rate of the same key in the same process, and CRL build
 * time at 100 000 entries. Method as in perf-anchors §2: one warm-up second, then the median of N
 * one-second samples (sync work on the main thread: one core).
 *
 *   node --import tsx bench/ca.ts [seconds=5]
 */
import type { KeyObject } from 'node:crypto';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { systemClock } from '../src/core/clock.js';
import type { CrlEntry } from '../src/ca/crl.js';
import { buildCrl } from '../src/ca/crl.js';
import { createIntermediate, createRoot } from '../src/ca/hierarchy.js';
import type { CaIssuer } from '../src/ca/issuer-context.js';
import { buildLeafCertificate, buildLeafFromCsr } from '../src/ca/issue.js';
import { BUILTIN_PROFILES } from '../src/ca/profiles.js';
import { buildCsr } from '../src/pki/csr.js';

const SAMPLES = Number(process.argv[2] ?? 5);
const DAY = 86_400_000;
const SANS = ['svc.internal.example', 'svc', '10.1.2.3'];

function rate(fn: () => void): { median: number; min: number; max: number } {
  const sample = (): number => {
    let n = 0;
    const end = performance.now() + 1000;
    while (performance.now() < end) {
      for (let i = 0; i < 16; i++) fn();
      n += 16;
    }
    return n;
  };
  sample(); // warm-up
  const s = Array.from({ length: SAMPLES }, sample).sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s.at(-1)! };
}

const fmt = (r: { median: number; min: number; max: number }): string =>
  `${r.median.toLocaleString('en')}/s (${r.min.toLocaleString('en')}–${r.max.toLocaleString('en')})`;

function ca(type: 'ec' | 'ec384' | 'ed25519' | 'rsa'): { issuer: CaIssuer; key: KeyObject } {
  const gen = () =>
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : type === 'ec384'
        ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
        : type === 'ed25519'
          ? generateKeyPairSync('ed25519')
          : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rk = gen();
  const ik = gen();
  const root = createRoot({
    key: rk.privateKey,
    subject: { commonName: 'bench root' },
    lifetimeMs: 3650 * DAY,
    clock: systemClock,
  });
  const inter = createIntermediate({
    issuer: { certificate: root.der, key: rk.privateKey },
    subjectPublicKey: ik.publicKey,
    subject: { commonName: 'bench intermediate' },
    lifetimeMs: 1825 * DAY,
    clock: systemClock,
  });
  return { issuer: { certificate: inter.der, key: ik.privateKey }, key: ik.privateKey };
}

const tbsLike = randomBytes(520);
const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const csrPem = buildCsr({
  subject: { commonName: SANS[0]! },
  sans: [{ type: 'dns', value: SANS[0]! }],
  privateKey: leafKey.privateKey,
});

console.log(`keywright CA bench — node ${process.version}, ${SAMPLES} × 1 s samples, median (min–max)\n`);
for (const [label, type, hash] of [
  ['ECDSA P-256', 'ec', 'sha256'],
  ['ECDSA P-384', 'ec384', 'sha384'],
  ['Ed25519', 'ed25519', null],
  ['RSA-2048', 'rsa', 'sha256'],
] as const) {
  const { issuer, key } = ca(type);
  const raw = rate(() => sign(hash, tbsLike, key));
  const leaf = rate(() =>
    buildLeafCertificate({
      issuer,
      subjectPublicKey: leafKey.publicKey,
      sans: SANS,
      profile: BUILTIN_PROFILES.server,
      clock: systemClock,
    }),
  );
  console.log(`${label} CA`);
  console.log(`  raw crypto.sign (520 B, cached KeyObject)   ${fmt(raw)}`);
  console.log(
    `  leaf from a public key (lint + sign)        ${fmt(leaf)}   ratio ${(leaf.median / raw.median).toFixed(2)}`,
  );
  if (type === 'ec') {
    const csr = rate(() =>
      buildLeafFromCsr({ issuer, csr: csrPem, profile: BUILTIN_PROFILES.server, clock: systemClock }),
    );
    console.log(
      `  sign a CSR (parse + verify + lint + sign)   ${fmt(csr)}   ratio ${(csr.median / raw.median).toFixed(2)}`,
    );
    const newcert = rate(() => {
      const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      buildLeafCertificate({
        issuer,
        subjectPublicKey: k.publicKey,
        sans: SANS,
        profile: BUILTIN_PROFILES.server,
        clock: systemClock,
      });
      k.privateKey.export({ type: 'pkcs8', format: 'pem' });
    });
    console.log(
      `  P-256 key + leaf + PKCS#8 export            ${fmt(newcert)}   ratio ${(newcert.median / raw.median).toFixed(2)}`,
    );
  }
  console.log('');
}

const { issuer } = ca('ec');
const entries: CrlEntry[] = Array.from({ length: 100_000 }, (_, i) => ({
  serialHex: randomBytes(16).toString('hex'),
  revokedAt: new Date(Date.UTC(2026, 0, 1) + i * 1000),
  ...(i % 4 === 0 ? { reason: 'keyCompromise' as const } : {}),
}));
const times: number[] = [];
let size = 0;
for (let i = 0; i < 7; i++) {
  const t0 = performance.now();
  const crl = buildCrl({ issuer, entries, crlNumber: i + 1, clock: systemClock, validityMs: DAY });
  times.push(performance.now() - t0);
  size = crl.der.length;
}
times.sort((a, b) => a - b);
console.log(
  `CRL with 100 000 entries (P-256 CA): ${(size / 1e6).toFixed(2)} MB, build+sign median ${times[3]!.toFixed(1)} ms (min ${times[0]!.toFixed(1)}, max ${times[6]!.toFixed(1)}) over 7 runs`,
);
