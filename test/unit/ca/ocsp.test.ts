import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { buildLeafCertificate } from '../../../src/ca/issue.js';
import type { OcspLookup, OcspStatus } from '../../../src/ca/ocsp.js';
import { createOcspResponder, createOcspSigner } from '../../../src/ca/ocsp.js';
import { BUILTIN_PROFILES } from '../../../src/ca/profiles.js';
import { parseCertificate } from '../../../src/pki/certificate.js';
import { buildOcspRequest, parseOcspResponse, verifyOcspResponseSignature } from '../../../src/pki/ocsp.js';
import { buildHierarchy, DAY, ecKey } from '../../fixtures/pki-ca.js';

const clock = new FakeClock(Date.UTC(2026, 5, 1, 12, 0, 0, 300));
const h = buildHierarchy(clock);
const inter = parseCertificate(h.inter.der);
const leaf = (san: string): string =>
  buildLeafCertificate({
    issuer: h.issuer,
    subjectPublicKey: ecKey().publicKey,
    sans: [san],
    profile: BUILTIN_PROFILES.server,
    clock,
  }).serialHex;
const good = leaf('good.internal');
const revoked = leaf('revoked.internal');
const revokedAt = new Date(Date.UTC(2026, 4, 30, 8, 0, 0));

const table = new Map<string, OcspStatus>([
  [good, { status: 'good' }],
  [revoked, { status: 'revoked', at: revokedAt, reason: 'keyCompromise' }],
]);
const lookup: OcspLookup = (s) => table.get(s) ?? { status: 'unknown' };

test('answers good, revoked (time and reason) and unknown in one response, signed by the CA', async () => {
  const responder = createOcspResponder({ issuer: h.issuer, lookup, clock, validityMs: DAY });
  const der = await responder.respond(
    buildOcspRequest({ issuer: inter, serials: [good, revoked, 'abcdef'] }),
  );
  const r = parseOcspResponse(der);
  assert.equal(r.status, 'successful');
  const b = r.basic!;
  assert.deepEqual(
    b.responses.map((s) => [s.certId.serialHex, s.certStatus]),
    [
      [good, { status: 'good' }],
      [revoked, { status: 'revoked', revokedAt, reason: 'keyCompromise' }],
      ['abcdef', { status: 'unknown' }],
    ],
  );
  assert.equal(b.producedAt.toISOString(), '2026-06-01T12:00:00.000Z');
  assert.equal(b.responses[0]!.thisUpdate.toISOString(), '2026-06-01T12:00:00.000Z');
  assert.equal(b.responses[0]!.nextUpdate?.toISOString(), '2026-06-02T12:00:00.000Z');
  assert.ok(verifyOcspResponseSignature(r, inter.publicKey));
  assert.deepEqual(b.certs, []);
  assert.equal(b.nonce, undefined);
});

test('matches CertIDs hashed with SHA-256 as well as SHA-1', async () => {
  const responder = createOcspResponder({ issuer: h.issuer, lookup, clock, validityMs: DAY });
  const r = parseOcspResponse(
    await responder.respond(buildOcspRequest({ issuer: inter, serials: [revoked], hash: 'sha256' })),
  );
  assert.equal(r.basic!.responses[0]!.certStatus.status, 'revoked');
  assert.equal(r.basic!.responses[0]!.certId.hash, 'sha256');
});

test('echoes the nonce (RFC 8954) and answers GET requests (RFC 6960 Appendix A.1)', async () => {
  const responder = createOcspResponder({ issuer: h.issuer, lookup, clock, validityMs: DAY });
  const nonce = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const req = buildOcspRequest({ issuer: inter, serials: [good], nonce });
  const r = parseOcspResponse(await responder.respondGet(encodeURIComponent(req.toString('base64'))));
  assert.equal(r.status, 'successful');
  assert.equal(r.basic!.nonce?.toString('hex'), '0410' + nonce.toString('hex'));
  const urlSafe = req.toString('base64url');
  assert.equal(parseOcspResponse(await responder.respondGet(urlSafe)).status, 'successful');
});

test('garbage gets malformedRequest; a request for another CA gets unauthorized', async () => {
  const responder = createOcspResponder({ issuer: h.issuer, lookup, clock, validityMs: DAY });
  assert.equal(parseOcspResponse(await responder.respond(Buffer.from('not der'))).status, 'malformedRequest');
  assert.equal(
    parseOcspResponse(await responder.respond(Buffer.from('3000', 'hex'))).status,
    'malformedRequest',
  );
  assert.equal(parseOcspResponse(await responder.respondGet('%%%')).status, 'malformedRequest');
  const tooMany = buildOcspRequest({
    issuer: inter,
    serials: Array.from({ length: 65 }, (_, i) => (i + 1).toString(16)),
  });
  assert.equal(parseOcspResponse(await responder.respond(tooMany)).status, 'malformedRequest');
  const forRoot = buildOcspRequest({ issuer: parseCertificate(h.root.der), serials: [good] });
  assert.equal(parseOcspResponse(await responder.respond(forRoot)).status, 'unauthorized');
});

test('a failing lookup yields internalError and is reported', async () => {
  const errors: unknown[] = [];
  const responder = createOcspResponder({
    issuer: h.issuer,
    lookup: () => {
      throw new Error('store down');
    },
    clock,
    validityMs: DAY,
    onError: (e) => errors.push(e),
  });
  assert.equal(
    parseOcspResponse(await responder.respond(buildOcspRequest({ issuer: inter, serials: [good] }))).status,
    'internalError',
  );
  assert.equal(errors.length, 1);
});

test('a delegated OCSP signer signs and is included in certs; one not issued by the CA is refused', async () => {
  const sk = ecKey();
  const signer = createOcspSigner({
    issuer: h.issuer,
    subjectPublicKey: sk.publicKey,
    lifetimeMs: 30 * DAY,
    clock,
  });
  const responder = createOcspResponder({
    issuer: h.issuer,
    signer: { certificate: signer.der, key: sk.privateKey },
    lookup,
    clock,
    validityMs: DAY,
  });
  const r = parseOcspResponse(await responder.respond(buildOcspRequest({ issuer: inter, serials: [good] })));
  assert.ok(verifyOcspResponseSignature(r, sk.publicKey));
  assert.ok(!verifyOcspResponseSignature(r, inter.publicKey));
  assert.deepEqual(r.basic!.certs, [signer.der]);

  const stranger = buildHierarchy(clock);
  const other = createOcspSigner({
    issuer: stranger.issuer,
    subjectPublicKey: sk.publicKey,
    lifetimeMs: DAY,
    clock,
  });
  assert.throws(
    () =>
      createOcspResponder({
        issuer: h.issuer,
        signer: { certificate: other.der, key: sk.privateKey },
        lookup,
        clock,
        validityMs: DAY,
      }),
    (e) => isAppError(e, 'LINT_FAILED') && e.details.rule === 'ocsp_signer_issued_by_ca',
  );
  // a server certificate of the CA is not an OCSP signer
  const lk = ecKey();
  const server = buildLeafCertificate({
    issuer: h.issuer,
    subjectPublicKey: lk.publicKey,
    sans: ['x.internal'],
    profile: BUILTIN_PROFILES.server,
    clock,
  });
  assert.throws(
    () =>
      createOcspResponder({
        issuer: h.issuer,
        signer: { certificate: server.der, key: lk.privateKey },
        lookup,
        clock,
        validityMs: DAY,
      }),
    (e) => isAppError(e, 'LINT_FAILED') && e.details.rule === 'ocsp_signer_eku',
  );
});
