/**
 * The webhook target against real node:http receivers on 127.0.0.1: a correctly signed body, a receiver
 * answering 500 (retried), one that never answers (timeout, retried), one refusing with 404 (terminal),
 * and nobody listening; then the file target refusing a directory outside the allowed ones.
 */
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import type { TestContext } from 'node:test';
import { configSchema } from '../../../src/config/schema.js';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { silentLogger } from '../../../src/core/logger.js';
import type { DeployArtifact } from '../../../src/deploy/port.js';
import { deployAll } from '../../../src/deploy/run.js';
import { createTargets } from '../../../src/deploy/targets.js';
import { WebhookTarget, type WebhookPayload } from '../../../src/deploy/webhook-target.js';
import { freePort } from '../../helpers/net.js';
import { tempDir } from '../../helpers/tmp.js';
import { testCa } from '../../unit/deploy/material.js';

const SECRET = 'test-hook-secret-0123456789';
const T0 = Date.UTC(2026, 2, 1);

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

async function receiver(
  t: TestContext,
  answer: (res: ServerResponse) => void,
): Promise<{ url: string; got: Received[] }> {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks) });
      answer(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/cert?token=q`, got };
}

describe('webhook target', () => {
  let artifact: DeployArtifact;
  before(async () => {
    artifact = await (await testCa()).leaf(['web.test', '10.0.0.5'], 7);
  });
  const ctx = { clock: new FakeClock(T0), logger: silentLogger, earlierChanged: true, files: [] };

  test('POSTs the new version as JSON, signed with HMAC-SHA256 of the exact body; no key', async (t) => {
    const { url, got } = await receiver(t, (res) => res.writeHead(204).end());
    const target = new WebhookTarget({ url, secret: 'env:HOOK_SECRET', env: { HOOK_SECRET: SECRET } });
    const result = await target.deploy(artifact, ctx);
    assert.equal(result.outcome, 'deployed');
    assert.match(result.detail, /answered 204/);
    assert.ok(!result.detail.includes('token=q'), 'the query string (may hold a token) is not shown');
    assert.equal(got.length, 1);
    const { headers, body } = got[0]!;
    assert.equal(headers['content-type'], 'application/json');
    const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`);
    const signature = Buffer.from(String(headers['x-keywright-signature']));
    assert.ok(
      signature.length === expected.length && timingSafeEqual(signature, expected),
      'signature verifies',
    );
    const payload = JSON.parse(body.toString()) as WebhookPayload;
    assert.equal(payload.type, 'keywright.certificate.version');
    assert.equal(headers['x-keywright-delivery'], payload.deliveryId);
    assert.equal(payload.sentAt, new Date(T0).toISOString());
    assert.deepEqual(
      { ...payload.certificate, certificatePem: undefined, chainPem: undefined },
      {
        name: 'web',
        version: 7,
        serial: artifact.serialHex,
        fingerprint: artifact.fingerprint,
        issuer: 'ca:test',
        notBefore: artifact.notBefore,
        notAfter: artifact.notAfter,
        domains: ['web.test', '10.0.0.5'],
        certificatePem: undefined,
        chainPem: undefined,
      },
    );
    assert.equal(payload.certificate.certificatePem, artifact.certificatePem);
    assert.ok(!body.toString().includes('PRIVATE KEY'), 'the key is never sent');
    assert.ok(!JSON.stringify(headers).includes(SECRET), 'the secret is never sent');

    // a tampered body no longer matches its signature
    const tampered = Buffer.from(body.toString().replace('"version":7', '"version":8'));
    assert.notEqual(
      `sha256=${createHmac('sha256', SECRET).update(tampered).digest('hex')}`,
      headers['x-keywright-signature'],
    );
  });

  test('a 500 is DEPLOY_FAILED and retryable, with the status and the start of the body', async (t) => {
    const { url } = await receiver(t, (res) => res.writeHead(500).end('database down\n'));
    await assert.rejects(
      new WebhookTarget({ url, timeoutMs: 2_000 }).deploy(artifact, ctx),
      (err: unknown) => {
        assert.ok(isAppError(err, 'DEPLOY_FAILED'));
        assert.equal(err.retryable, true);
        assert.match(
          err.message,
          /^webhook http:\/\/127\.0\.0\.1:\d+\/hooks\/cert answered 500: database down$/,
        );
        return true;
      },
    );
  });

  test('a receiver that never answers times out, retryable', async (t) => {
    const { url } = await receiver(t, () => undefined);
    const started = performance.now();
    await assert.rejects(new WebhookTarget({ url, timeoutMs: 300 }).deploy(artifact, ctx), (err: unknown) => {
      assert.ok(isAppError(err, 'DEPLOY_FAILED'));
      assert.equal(err.retryable, true);
      assert.match(err.message, /no answer within 300ms/);
      return true;
    });
    assert.ok(performance.now() - started < 2_000);
  });

  test('a 404 is terminal: no retry is scheduled', async (t) => {
    const { url } = await receiver(t, (res) => res.writeHead(404).end());
    const run = await deployAll([new WebhookTarget({ url })], artifact, {
      clock: new FakeClock(T0),
      logger: silentLogger,
    });
    assert.equal(run.ok, false);
    assert.equal(run.states[0]!.lastError?.retryable, false);
    assert.equal(run.states[0]!.nextRetryAt, undefined);
    assert.match(run.reports[0]!.detail, /answered 404 \(not retried/);
  });

  test('nobody listening is retryable; the missing secret is terminal and names its reference', async () => {
    const port = await freePort();
    await assert.rejects(
      new WebhookTarget({ url: `http://127.0.0.1:${port}/` }).deploy(artifact, ctx),
      (err: unknown) => {
        assert.ok(isAppError(err, 'DEPLOY_FAILED'));
        assert.equal(err.retryable, true);
        assert.match(err.message, /ECONNREFUSED/);
        return true;
      },
    );
    await assert.rejects(
      new WebhookTarget({ url: `http://127.0.0.1:${port}/`, secret: 'env:NOT_SET_HERE', env: {} }).deploy(
        artifact,
        ctx,
      ),
      (err: unknown) => {
        assert.ok(isAppError(err, 'DEPLOY_FAILED'));
        assert.equal(err.retryable, false);
        assert.match(err.message, /env:NOT_SET_HERE/);
        return true;
      },
    );
  });

  test('a delivered version is not sent twice; a failing receiver recovers on retry', async (t) => {
    let fail = true;
    const { url, got } = await receiver(t, (res) => res.writeHead(fail ? 503 : 200).end());
    const targets = [new WebhookTarget({ url })];
    const clock = new FakeClock(T0);
    const first = await deployAll(targets, artifact, { clock, logger: silentLogger });
    assert.equal(first.ok, false);
    assert.equal(first.states[0]!.nextRetryAt, new Date(T0 + 30_000).toISOString());
    fail = false;
    const second = await deployAll(
      targets,
      artifact,
      { clock, logger: silentLogger },
      { previous: first.states },
    );
    assert.equal(second.ok, true);
    const third = await deployAll(
      targets,
      artifact,
      { clock, logger: silentLogger },
      { previous: second.states },
    );
    assert.equal(third.reports[0]!.outcome, 'unchanged');
    assert.equal(got.length, 2);
  });
});

test('file target: a directory outside the allowed ones is refused before anything is written', async (t) => {
  const allowed = await tempDir(t, 'kw-allowed-');
  const outside = await tempDir(t, 'kw-outside-');
  const { certificates } = configSchema.parse({
    certificates: [{ name: 'web', sans: ['web.test'], deploy: [{ file: { dir: `${outside}/web` } }] }],
  });
  assert.throws(
    () => createTargets(certificates[0]!.deploy, { allowedDirs: [allowed], field: 'certificates[0].deploy' }),
    (err: unknown) => {
      assert.ok(isAppError(err, 'DEPLOY_TARGET_INVALID'));
      assert.equal(err.details.field, 'certificates[0].deploy[0].file.dir');
      assert.ok(err.message.includes(outside) && err.message.includes(allowed));
      return true;
    },
  );
  assert.deepEqual(await readdir(outside), []);
});
