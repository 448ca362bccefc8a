/** Certificates for deploy tests: a throwaway root and leaves under it, made with keywright's own CA code. */
import { createRoot } from '../../../src/ca/hierarchy.js';
import { buildLeafCertificate } from '../../../src/ca/issue.js';
import { BUILTIN_PROFILES } from '../../../src/ca/profiles.js';
import { systemClock } from '../../../src/core/clock.js';
import { makeArtifact, type DeployArtifact } from '../../../src/deploy/port.js';
import { generateKeyPair } from '../../../src/keys/generate.js';

const DAY = 86_400_000;

export interface TestCa {
  readonly rootPem: string;
  leaf(sans: readonly string[], version: number, name?: string): Promise<DeployArtifact>;
}

export async function testCa(): Promise<TestCa> {
  const rootKey = await generateKeyPair('ec-p256');
  const root = createRoot({
    key: rootKey.privateKey,
    subject: { commonName: 'Deploy Test Root' },
    lifetimeMs: 30 * DAY,
    clock: systemClock,
  });
  return {
    rootPem: root.pem,
    async leaf(sans, version, name = 'web') {
      const key = await generateKeyPair('ec-p256');
      const leaf = buildLeafCertificate({
        issuer: { certificate: root.der, key: rootKey.privateKey },
        subjectPublicKey: key.publicKey,
        sans,
        profile: BUILTIN_PROFILES.server,
        lifetimeMs: 7 * DAY,
        clock: systemClock,
      });
      return makeArtifact({
        certificate: name,
        version,
        issuer: 'ca:test',
        serialHex: leaf.serialHex,
        certificatePem: leaf.pem,
        chainPem: [root.pem],
        privateKey: key.privateKey,
        domains: sans,
        notBefore: leaf.notBefore,
        notAfter: leaf.notAfter,
      });
    },
  };
}
