import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createPublicKey, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAppError } from '../../../src/core/errors.js';
import type { SealContext, SealedBlob } from '../../../src/keys/port.js';
import { canRewrap } from '../../../src/keys/port.js';
import { createKeyRing, kekIdOf } from '../../../src/keys/software/key-ring.js';
import { SoftwareSealer } from '../../../src/keys/software/sealer.js';
import { generateKeyPair } from '../../../src/keys/generate.js';
import { sealPrivateKey, unsealPrivateKey, unsealPrivateKeyPem } from '../../../src/keys/sealed-key.js';

interface Fixture {
  kek: string;
  kekId: string;
  context: SealContext;
  plaintext: string;
  blob: SealedBlob;
}
const fixture = JSON.parse(
  await readFile(new URL('../../../test/fixtures/sealed-blob-v1.json', import.meta.url), 'utf8'),
) as Fixture;

const ctx: SealContext = { recordType: 'certificate-key', recordId: 'web-frontend/3' };
const secret = Buffer.from('PLAINTEXT-MARKER: pretend this is a private key');

function sealerWith(...keks: Buffer[]): SoftwareSealer {
  const [primary, ...others] = keks;
  return new SoftwareSealer(createKeyRing(Buffer.from(primary!), ...others.map((k) => Buffer.from(k))));
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<Error & { details: object }> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isAppError(err), `expected an AppError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    const text = err.message + JSON.stringify(err.details);
    assert.ok(!text.includes('PLAINTEXT-MARKER'), 'an error carries the plaintext');
    return err;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

/** Flips one bit of the decoded bytes of a base64 field. */
function flip(blob: SealedBlob, field: 'dek' | 'iv' | 'ct' | 'tag', index: number): SealedBlob {
  const bytes = Buffer.from(blob[field], 'base64');
  bytes[index % bytes.length]! ^= 0x01;
  return { ...blob, [field]: bytes.toString('base64') };
}

describe('frozen fixture test/fixtures/sealed-blob-v1.json', () => {
  test('opens with its KEK to its plaintext', async () => {
    const sealer = sealerWith(Buffer.from(fixture.kek, 'base64'));
    const plain = await sealer.unseal(fixture.blob, fixture.context);
    assert.equal(plain.toString('utf8'), fixture.plaintext);
  });

  test('pins the KEK id derivation', () => {
    assert.equal(kekIdOf(Buffer.from(fixture.kek, 'base64')), fixture.kekId);
    assert.equal(fixture.blob.kek, fixture.kekId);
  });

  test('has exactly the v1 fields', () => {
    assert.deepEqual(Object.keys(fixture.blob).sort(), ['alg', 'ct', 'dek', 'iv', 'kek', 'tag', 'v']);
    assert.equal(fixture.blob.v, 1);
    assert.equal(fixture.blob.alg, 'A256GCM');
  });

  test('opens with an independent reading of docs/storage.md', () => {
    // The format, re-implemented here from the documentation rather than from the sealer's code.
    const lp = (...parts: string[]): Buffer =>
      Buffer.concat(
        parts.flatMap((p) => {
          const b = Buffer.from(p, 'utf8');
          const n = Buffer.alloc(4);
          n.writeUInt32BE(b.length);
          return [n, b];
        }),
      );
    const label = 'keywright sealed blob v1 A256GCM';
    const open = (key: Buffer, iv: Buffer, ct: Buffer, tag: Buffer, aad: Buffer): Buffer => {
      const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
      d.setAAD(aad);
      d.setAuthTag(tag);
      return Buffer.concat([d.update(ct), d.final()]);
    };
    const wrapped = Buffer.from(fixture.blob.dek, 'base64');
    const dek = open(
      Buffer.from(fixture.kek, 'base64'),
      wrapped.subarray(0, 12),
      wrapped.subarray(12, 44),
      wrapped.subarray(44),
      lp(label, 'dek', fixture.blob.kek),
    );
    const plain = open(
      dek,
      Buffer.from(fixture.blob.iv, 'base64'),
      Buffer.from(fixture.blob.ct, 'base64'),
      Buffer.from(fixture.blob.tag, 'base64'),
      lp(label, 'payload', fixture.context.recordType, fixture.context.recordId),
    );
    assert.equal(plain.toString('utf8'), fixture.plaintext);
  });
});

describe('SoftwareSealer seal and unseal', () => {
  const kek = randomBytes(32);

  test('round-trips empty, small and large plaintexts', async () => {
    const sealer = sealerWith(kek);
    for (const size of [0, 1, 241, 1 << 20]) {
      const plain = randomBytes(size);
      const blob = await sealer.seal(plain, ctx);
      assert.equal(blob.kek, kekIdOf(kek));
      assert.deepEqual(await sealer.unseal(blob, ctx), plain);
    }
  });

  test('sealing the same plaintext twice gives different blobs', async () => {
    const sealer = sealerWith(kek);
    const a = await sealer.seal(secret, ctx);
    const b = await sealer.seal(secret, ctx);
    assert.notEqual(a.dek, b.dek);
    assert.notEqual(a.iv, b.iv);
    assert.notEqual(a.ct, b.ct);
    assert.deepEqual(await sealer.unseal(a, ctx), secret);
    assert.deepEqual(await sealer.unseal(b, ctx), secret);
  });

  test('the blob is JSON-safe and carries no plaintext', async () => {
    const blob = await sealerWith(kek).seal(secret, ctx);
    const json = JSON.stringify(blob);
    assert.deepEqual(JSON.parse(json), blob);
    assert.ok(!json.includes('PLAINTEXT') && !json.includes(secret.toString('base64').slice(0, 12)));
  });

  test('a different KEK cannot open it: SEAL_INTEGRITY naming the record', async () => {
    const blob = await sealerWith(kek).seal(secret, ctx);
    const err = await rejectsWith(sealerWith(randomBytes(32)).unseal(blob, ctx), 'SEAL_INTEGRITY');
    assert.match(err.message, /certificate-key "web-frontend\/3"/);
    assert.match(err.message, new RegExp(kekIdOf(kek)));
  });

  for (const field of ['dek', 'iv', 'ct', 'tag'] as const) {
    test(`a flipped bit anywhere in ${field} is SEAL_INTEGRITY`, async () => {
      const sealer = sealerWith(kek);
      const blob = await sealer.seal(secret, ctx);
      const length = Buffer.from(blob[field], 'base64').length;
      for (const index of [0, Math.floor(length / 2), length - 1]) {
        await rejectsWith(sealer.unseal(flip(blob, field, index), ctx), 'SEAL_INTEGRITY');
      }
    });
  }

  test('another KEK id in the kek field is SEAL_INTEGRITY', async () => {
    const other = randomBytes(32);
    const sealer = sealerWith(kek, other);
    const blob = await sealer.seal(secret, ctx);
    await rejectsWith(sealer.unseal({ ...blob, kek: kekIdOf(other) }, ctx), 'SEAL_INTEGRITY');
    await rejectsWith(sealer.unseal({ ...blob, kek: '0123456789abcdef' }, ctx), 'SEAL_INTEGRITY');
  });

  test('a blob presented under another record type or id is SEAL_INTEGRITY', async () => {
    const sealer = sealerWith(kek);
    const blob = await sealer.seal(secret, ctx);
    await rejectsWith(sealer.unseal(blob, { ...ctx, recordType: 'ca-key' }), 'SEAL_INTEGRITY');
    await rejectsWith(sealer.unseal(blob, { ...ctx, recordId: 'web-frontend/4' }), 'SEAL_INTEGRITY');
    await rejectsWith(
      sealer.unseal(blob, { recordType: ctx.recordId, recordId: ctx.recordType }),
      'SEAL_INTEGRITY',
    );
  });

  test('the context encoding is unambiguous: ("a","bc") is not ("ab","c")', async () => {
    const sealer = sealerWith(kek);
    const blob = await sealer.seal(secret, { recordType: 'a', recordId: 'bc' });
    await rejectsWith(sealer.unseal(blob, { recordType: 'ab', recordId: 'c' }), 'SEAL_INTEGRITY');
    assert.deepEqual(await sealer.unseal(blob, { recordType: 'a', recordId: 'bc' }), secret);
  });

  test('unknown version, unknown alg and malformed fields are SEAL_FORMAT', async () => {
    const sealer = sealerWith(kek);
    const blob = await sealer.seal(secret, ctx);
    const shorter = (field: 'dek' | 'iv' | 'tag'): string =>
      Buffer.from(blob[field], 'base64').subarray(1).toString('base64');
    const cases: unknown[] = [
      { ...blob, v: 2 },
      { ...blob, v: '1' },
      { ...blob, alg: 'A128GCM' },
      { ...blob, kek: 'not-a-kek-id' },
      { ...blob, kek: kekIdOf(kek).toUpperCase() },
      { ...blob, iv: '!!!!' },
      { ...blob, ct: `${blob.ct}\n` },
      { ...blob, iv: shorter('iv') },
      { ...blob, tag: shorter('tag') },
      { ...blob, tag: Buffer.from(blob.tag, 'base64').subarray(0, 12).toString('base64') },
      { ...blob, dek: shorter('dek') },
      { ...blob, tag: 'AAAAAAAAAAAAAAAAAAAAAB==' }, // non-canonical padding bits
      { ...blob, ct: undefined },
      null,
      'a string',
    ];
    for (const bad of cases) {
      await rejectsWith(sealer.unseal(bad as SealedBlob, ctx), 'SEAL_FORMAT');
    }
  });

  test('an empty record type or id is refused before sealing', async () => {
    const sealer = sealerWith(kek);
    await rejectsWith(sealer.seal(secret, { recordType: '', recordId: 'x' }), 'INVALID_ARGUMENT');
    await rejectsWith(sealer.seal(secret, { recordType: 'x', recordId: '' }), 'INVALID_ARGUMENT');
  });

  test('close() wipes the KEKs: every call fails with KEK_MISSING', async () => {
    const sealer = sealerWith(kek);
    const blob = await sealer.seal(secret, ctx);
    sealer.close();
    await rejectsWith(sealer.seal(secret, ctx), 'KEK_MISSING');
    await rejectsWith(sealer.unseal(blob, ctx), 'KEK_MISSING');
  });

  test('a ring whose primary is missing or whose id does not match its key is refused', () => {
    const ring = createKeyRing(Buffer.from(kek));
    assert.throws(
      () => new SoftwareSealer({ primaryId: '0000000000000000', keks: ring.keks }),
      (e: unknown) => isAppError(e, 'KEK_MISSING'),
    );
    const mislabelled = new Map([[kekIdOf(kek), randomBytes(32)]]);
    assert.throws(
      () => new SoftwareSealer({ primaryId: kekIdOf(kek), keks: mislabelled }),
      (e: unknown) => isAppError(e, 'KEK_INVALID'),
    );
  });
});

describe('SoftwareSealer rewrap', () => {
  const oldKek = randomBytes(32);
  const newKek = randomBytes(32);

  test('moves the data key to the primary KEK and leaves the payload alone', async () => {
    const blob = await sealerWith(oldKek).seal(secret, ctx);
    const rotating = sealerWith(newKek, oldKek);
    assert.ok(canRewrap(rotating));
    const moved = await rotating.rewrap(blob);
    assert.equal(moved.kek, kekIdOf(newKek));
    assert.notEqual(moved.dek, blob.dek);
    assert.deepEqual([moved.iv, moved.ct, moved.tag], [blob.iv, blob.ct, blob.tag]);
    assert.deepEqual(await sealerWith(newKek).unseal(moved, ctx), secret);
    await rejectsWith(sealerWith(oldKek).unseal(moved, ctx), 'SEAL_INTEGRITY');
  });

  test('a blob already under the primary KEK comes back as it is', async () => {
    const sealer = sealerWith(newKek, oldKek);
    const blob = await sealer.seal(secret, ctx);
    assert.equal(await sealer.rewrap(blob), blob);
  });

  test('an altered data key or an unknown KEK is SEAL_INTEGRITY; a malformed blob SEAL_FORMAT', async () => {
    const blob = await sealerWith(oldKek).seal(secret, ctx);
    const rotating = sealerWith(newKek, oldKek);
    await rejectsWith(rotating.rewrap(flip(blob, 'dek', 20)), 'SEAL_INTEGRITY');
    await rejectsWith(sealerWith(newKek).rewrap(blob), 'SEAL_INTEGRITY');
    await rejectsWith(rotating.rewrap({ ...blob, v: 2 } as unknown as SealedBlob), 'SEAL_FORMAT');
  });
});

describe('sealPrivateKey / unsealPrivateKey', () => {
  const sealer = sealerWith(randomBytes(32));

  for (const type of ['ec-p256', 'ed25519', 'x25519'] as const) {
    test(`${type} round-trips as PKCS#8`, async () => {
      const { privateKey, publicKey } = await generateKeyPair(type);
      const blob = await sealPrivateKey(sealer, privateKey, ctx);
      const back = await unsealPrivateKey(sealer, blob, ctx);
      assert.equal(back.type, 'private');
      assert.deepEqual(
        createPublicKey(back).export({ type: 'spki', format: 'der' }),
        publicKey.export({ type: 'spki', format: 'der' }),
      );
    });
  }

  for (const type of ['ec-p256', 'ec-p384', 'ed25519', 'rsa-2048'] as const) {
    test(`${type} opens straight to the PKCS#8 PEM node:crypto would export`, async () => {
      const { privateKey } = await generateKeyPair(type);
      const blob = await sealPrivateKey(sealer, privateKey, ctx);
      assert.equal(
        await unsealPrivateKeyPem(sealer, blob, ctx),
        privateKey.export({ type: 'pkcs8', format: 'pem' }),
      );
    });
  }

  test('a public key cannot be sealed as a private key', async () => {
    const { publicKey } = await generateKeyPair('ed25519');
    await rejectsWith(sealPrivateKey(sealer, publicKey, ctx), 'KEY_INVALID');
  });

  test('a blob that holds no key is KEY_INVALID once opened', async () => {
    const blob = await sealer.seal(secret, ctx);
    await rejectsWith(unsealPrivateKey(sealer, blob, ctx), 'KEY_INVALID');
    await rejectsWith(unsealPrivateKeyPem(sealer, blob, ctx), 'KEY_INVALID');
  });
});
