import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryStore } from '../../../src/store/memory/index.js';
import { FakeClock } from '../../../src/core/clock.js';
import { silentLogger } from '../../../src/core/logger.js';
import { SoftwareSealer } from '../../../src/keys/software/sealer.js';
import { createKeyRing } from '../../../src/keys/software/key-ring.js';
import { CertificateService } from '../../../src/lifecycle/certificate-service.js';
import { VERSIONS_COLLECTION, type VersionRecord } from '../../../src/lifecycle/records.js';
import { normaliseSerial } from '../../../src/pki/certificate.js';

test('serials are found in any spelling: leading zero nibble kept, colons and case ignored', async () => {
  const store = createMemoryStore();
  const certs = new CertificateService({
    store,
    sealer: new SoftwareSealer(createKeyRing(Buffer.alloc(32, 7))),
    audit: { append: async () => ({}) as never },
    clock: new FakeClock(),
    logger: silentLogger,
    resolveIssuer: () => {
      throw new Error('unused');
    },
  });
  const version = {
    id: 'web@1',
    certificate: 'web',
    version: 1,
    serialHex: '0d65aa',
  } as unknown as VersionRecord;
  await store.tx((tx) => tx.collection<VersionRecord>(VERSIONS_COLLECTION).insert(version));
  for (const spelling of ['0d65aa', 'd65aa', '0D:65:AA', '000d65aa']) {
    assert.equal(certs.findBySerial(spelling)?.id, 'web@1', spelling);
  }
  assert.equal(certs.findBySerial('d65ab'), undefined);
  assert.equal(normaliseSerial('00'), '00');
  assert.equal(normaliseSerial('0'), '00');
});
