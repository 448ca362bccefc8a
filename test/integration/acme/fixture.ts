/** Shared pieces of the ACME integration tests: a service over a memory store, CSRs, contexts, chain checks. */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock, type Clock } from '../../../src/core/clock.js';
import type { Logger } from '../../../src/core/logger.js';
import { configSchema, type Config } from '../../../src/config/schema.js';
import { AcmeService } from '../../../src/acme/service.js';
import type { SolverRule } from '../../../src/acme/solvers/select.js';
import type { ClientSettings } from '../../../src/acme/client.js';
import { createMemoryStore } from '../../../src/store/memory/index.js';
import type { ObservableStore } from '../../../src/store/index.js';
import { SoftwareSealer } from '../../../src/keys/software/sealer.js';
import { createKeyRing } from '../../../src/keys/software/key-ring.js';
import { generateKeyPair } from '../../../src/keys/generate.js';
import { buildCsr } from '../../../src/pki/csr.js';
import { parseSanText } from '../../../src/pki/general-name.js';
import type { IssueResult, OpContext } from '../../../src/issuer/port.js';
import { runPeer } from '../../helpers/peers.js';
import type { Pebble } from '../../helpers/pebble.js';

/** Polls fast: pebble answers in milliseconds with PEBBLE_VA_NOSLEEP. */
export const FAST: ClientSettings = { poll: { minMs: 25, maxMs: 250, attempts: 40 }, badNonceRetries: 10 };

export interface LogLine {
  level: string;
  obj: Record<string, unknown>;
  msg?: string | undefined;
}

/** A logger that keeps what it is given, so tests can assert what was (and was not) logged. */
export function recordingLogger(lines: LogLine[] = []): Logger & { lines: LogLine[] } {
  const make = (bindings: Record<string, unknown>): Logger & { lines: LogLine[] } => {
    const at =
      (level: string) =>
      (obj: object, msg?: string): void => {
        lines.push({ level, obj: { ...bindings, ...(obj as Record<string, unknown>) }, msg });
      };
    return {
      lines,
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (b) => make({ ...bindings, ...b }),
    };
  };
  return make({});
}

export interface Fixture {
  readonly service: AcmeService;
  readonly store: ObservableStore;
  readonly logger: Logger & { lines: LogLine[] };
  readonly ctx: OpContext;
}

export function acmeConfig(input: Record<string, unknown> = {}): Config['acme'] {
  return configSchema.parse({ acme: input }).acme;
}

export async function acmeFixture(
  t: TestContext,
  options: {
    config?: Config['acme'];
    rules?: readonly SolverRule[];
    client?: ClientSettings;
    random?: () => number;
    clock?: Clock;
  } = {},
): Promise<Fixture> {
  const store = createMemoryStore();
  const sealer = new SoftwareSealer(createKeyRing(randomBytes(32)));
  const logger = recordingLogger();
  const service = new AcmeService({
    store,
    sealer,
    clock: options.clock ?? systemClock,
    logger,
    config: options.config ?? acmeConfig({ requestTimeout: '5s' }),
    client: options.client ?? FAST,
    ...(options.rules ? { rules: options.rules } : {}),
    ...(options.random ? { random: options.random } : {}),
  });
  await service.start();
  t.after(async () => {
    await service.stop();
    await store.close();
  });
  return { service, store, logger, ctx: { clock: options.clock ?? systemClock, logger, actor: 'test' } };
}

/** A fresh key and a CSR for `sans` made by keywright's own pki. */
export async function csrFor(sans: string[]): Promise<Buffer> {
  const { privateKey } = await generateKeyPair('ec-p256');
  return buildCsr({ sans: sans.map(parseSanText), privateKey });
}

export function randomName(prefix = 'host'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}.example.test`;
}

/** openssl verify of leaf + chain against pebble's root of this run. */
export function assertChainVerifies(pebble: Pebble, result: IssueResult, dir: string): void {
  const leaf = join(dir, `leaf-${result.serialHex}.pem`);
  const chain = join(dir, `chain-${result.serialHex}.pem`);
  writeFileSync(leaf, result.certificatePem);
  writeFileSync(chain, result.chainPem.join(''));
  assert.ok(result.chainPem.length >= 1, 'the chain has at least the intermediate');
  const res = runPeer('openssl', ['verify', '-CAfile', pebble.rootFile, '-untrusted', chain, leaf]);
  assert.equal(res.status, 0, `openssl verify: ${res.stdout}${res.stderr}`);
  assert.match(res.stdout, /: OK/);
}

export function sanText(pem: string): string {
  return runPeer('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], pem).stdout;
}

export function registerInput(pebble: Pebble, name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    directory: pebble.directoryUrl,
    email: `${name}@example.test`,
    agreeTos: true,
    caPem: pebble.tlsCaPem,
    ...extra,
  };
}
