import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { AppError, isAppError } from '../core/errors.js';
import { BundleClient, type AgentConnection } from './client.js';
import { STATE_FILE, bundleFiles, fingerprintOnDisk, type PulledBundle } from './files.js';
import { runPullLoop, type AgentDeps, type LoopOptions, type PullOutcome, type PullSource } from './loop.js';
import { unsealBundle, type SealKey } from './unseal.js';

export interface AgentOptions extends AgentConnection, LoopOptions {
  /** The managed certificate to pull. */
  readonly certificate: string;
  readonly outDir: string;
  /** Ask for format=sealed and open it with this key. */
  readonly sealKey?: SealKey | undefined;
}

/**
 * Keeps one certificate's files current: certbot's names in `outDir`, the key (0600) checked against
 * the certificate and written first (docs/distribution.md). The loop itself is runPullLoop.
 */
export function runAgent(options: AgentOptions, deps: AgentDeps): Promise<PullOutcome | undefined> {
  return runPullLoop(certificateSource(options), options, deps);
}

function certificateSource(options: AgentOptions): PullSource {
  const client = new BundleClient(options);
  const dir = options.outDir;
  return {
    subject: `cert:${options.certificate}`,
    names: { certificate: options.certificate },
    dir,
    dirMode: 0o755,
    stateFile: join(dir, STATE_FILE),
    async fetch(etag, waitSeconds, signal) {
      const response = await client.fetchBundle({
        certificate: options.certificate,
        format: options.sealKey ? 'sealed' : 'json',
        ifNoneMatch: etag,
        waitSeconds,
        sealKey: options.sealKey?.publicKeyHeader,
        signal,
      });
      if (response.status === 304) return 'not-modified';
      const bundle = await parseBundle(options, response.body);
      if (response.etag === undefined) {
        throw new AppError('INTERNAL', 'the daemon sent a bundle without an ETag');
      }
      return {
        etag: response.etag,
        version: bundle.version,
        fingerprint: bundle.fingerprint,
        files: bundleFiles(dir, bundle),
      };
    },
    fingerprintOnDisk: () => fingerprintOnDisk(dir),
    reloadEnv: (state) => ({
      KEYWRIGHT_CERT_NAME: options.certificate,
      KEYWRIGHT_CERT_DIR: dir,
      KEYWRIGHT_CERT_VERSION: String(state.version),
      RENEWED_LINEAGE: dir, // certbot's deploy-hook variable
    }),
    client,
    close: () => client.close(),
  };
}

interface JsonBundle {
  name?: unknown;
  version?: unknown;
  fingerprint?: unknown;
  certificate?: unknown;
  chain?: unknown;
  fullchain?: unknown;
  privateKey?: unknown;
}

/** Decodes (and unseals) the bundle and refuses anything that would leave a server unable to start. */
async function parseBundle(options: AgentOptions, body: Buffer): Promise<PulledBundle> {
  const plaintext = options.sealKey
    ? await unsealBundle(body.toString('utf8'), options.sealKey, options.certificate)
    : body;
  let b: JsonBundle;
  try {
    b = JSON.parse(plaintext.toString('utf8')) as JsonBundle;
  } catch (err) {
    throw new AppError('INTERNAL', 'the daemon sent a bundle that is not JSON', { cause: err });
  }
  if (typeof b.privateKey !== 'string') {
    throw new AppError(
      'ACCESS_DENIED',
      `the daemon sent ${options.certificate} without its key: this token or certificate may read it but not export the key (role service, scope cert:${options.certificate})`,
      { details: { certificate: options.certificate } },
    );
  }
  if (
    b.name !== options.certificate ||
    typeof b.version !== 'number' ||
    typeof b.fingerprint !== 'string' ||
    typeof b.certificate !== 'string' ||
    typeof b.chain !== 'string' ||
    typeof b.fullchain !== 'string'
  ) {
    throw new AppError('INTERNAL', `the daemon sent a malformed bundle for ${options.certificate}`);
  }
  const bundle: PulledBundle = {
    name: b.name,
    version: b.version,
    fingerprint: b.fingerprint,
    certificate: b.certificate,
    chain: b.chain,
    fullchain: b.fullchain,
    privateKey: b.privateKey,
  };
  checkKeyMatches(bundle);
  return bundle;
}

/** Never write a key that does not belong to the certificate beside it. */
function checkKeyMatches(b: PulledBundle): void {
  let matches = false;
  try {
    const cert = new X509Certificate(b.certificate);
    const fromKey = createPublicKey(createPrivateKey(b.privateKey)).export({ type: 'spki', format: 'der' });
    const fromCert = cert.publicKey.export({ type: 'spki', format: 'der' });
    matches = fromKey.equals(fromCert);
  } catch (err) {
    if (isAppError(err)) throw err;
  }
  if (!matches) {
    throw new AppError(
      'KEY_INVALID',
      `the bundle for ${b.name} holds a key that does not match its certificate`,
      {
        details: { certificate: b.name, version: b.version },
      },
    );
  }
}
