/**
 * The agent's VPN mode: keeps one peer's wg-quick config written to a file (0600) and runs a command
 * (e.g. `wg syncconf`) when it changed (docs/vpn.md, docs/distribution.md).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { join } from 'node:path';
import { AppError } from '../core/errors.js';
import { BundleClient, type AgentConnection } from './client.js';
import { runPullLoop, type AgentDeps, type LoopOptions, type PullOutcome, type PullSource } from './loop.js';

/**
 * The line the daemon writes instead of `PrivateKey = …` for a peer with a client-side key
 * (CLIENT_KEY_PLACEHOLDER in src/vpn/wg-quick.ts; the agent's layer may not import vpn/, and
 * test/unit/agent/vpn-config.test.ts checks the two agree).
 */
export const CLIENT_KEY_LINE_PREFIX = '# PrivateKey = (client-side key';

/** A WireGuard key: 32 bytes in standard base64 (wg(8) KEY FORMAT). */
const WG_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

export interface VpnAgentOptions extends AgentConnection, LoopOptions {
  readonly network: string;
  readonly peer: string;
  /** The wg-quick file to keep current, e.g. /etc/wireguard/wg0.conf. */
  readonly outFile: string;
  /** The peer's own private key (base64), for a peer whose key never left it: substituted locally. */
  readonly privateKey?: string | undefined;
}

/** Reads and checks a `wg genkey` file; the key itself never appears in an error. */
export async function readWireguardKey(path: string, flag: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err, details: { file: path } },
    );
  }
  const key = text.trim();
  if (!WG_KEY.test(key)) {
    throw new AppError(
      'KEY_INVALID',
      `${flag} ${path}: not a WireGuard private key (make one with wg genkey)`,
      {
        details: { file: path },
      },
    );
  }
  return key;
}

/**
 * The config as it is written: a client-side-key peer gets its own key put in place of the daemon's
 * placeholder. A placeholder with no key, or a key for a peer whose key the daemon holds, is refused
 * before anything is written.
 */
export function completeConfig(text: string, privateKey: string | undefined, subject: string): string {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith(CLIENT_KEY_LINE_PREFIX));
  if (at < 0) {
    if (privateKey !== undefined) {
      throw new AppError(
        'INVALID_ARGUMENT',
        `${subject}: the daemon holds this peer's private key, so --private-key-file does not apply; drop it`,
        { details: { subject } },
      );
    }
    if (!/^PrivateKey\s*=/m.test(text)) {
      throw new AppError('INTERNAL', `the daemon sent a config for ${subject} without a PrivateKey`, {
        details: { subject },
      });
    }
    return text;
  }
  if (privateKey === undefined) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `${subject} has a client-side key: give --private-key-file with this peer's own key (wg genkey); nothing was written`,
      { details: { subject } },
    );
  }
  lines[at] = `PrivateKey = ${privateKey}`;
  return lines.join('\n');
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * Keeps one VPN peer's wg-quick config current. The same loop as the certificate mode: ETag, long
 * poll for the next rotation, back-off, the command only when the file changed.
 */
export function runVpnAgent(options: VpnAgentOptions, deps: AgentDeps): Promise<PullOutcome | undefined> {
  return runPullLoop(vpnSource(options), options, deps);
}

function vpnSource(options: VpnAgentOptions): PullSource {
  const client = new BundleClient(options);
  const file = options.outFile;
  const dir = dirname(file);
  const subject = `vpn:${options.network}/${options.peer}`;
  return {
    subject,
    names: { network: options.network, peer: options.peer },
    dir,
    // /etc/wireguard is 0700 by convention; a directory the agent creates for configs is too.
    dirMode: 0o700,
    stateFile: join(dir, `.${basename(file)}.keywright-agent.json`),
    async fetch(etag, waitSeconds, signal) {
      const response = await client.fetchVpnConfig({
        network: options.network,
        peer: options.peer,
        ifNoneMatch: etag,
        waitSeconds,
        signal,
      });
      if (response.status === 304) return 'not-modified';
      if (response.etag === undefined) {
        throw new AppError('INTERNAL', 'the daemon sent a VPN config without an ETag');
      }
      const text = completeConfig(response.body.toString('utf8'), options.privateKey, subject);
      // The fingerprint is of the file as written, so a hand edit is put right on the next pull.
      return {
        etag: response.etag,
        fingerprint: sha256(text),
        files: [{ path: file, content: text, mode: 0o600 }],
      };
    },
    async fingerprintOnDisk() {
      try {
        return sha256(await readFile(file, 'utf8'));
      } catch {
        return undefined;
      }
    },
    reloadEnv: () => ({
      KEYWRIGHT_VPN_NETWORK: options.network,
      KEYWRIGHT_VPN_PEER: options.peer,
      KEYWRIGHT_VPN_CONFIG: file,
    }),
    client,
    close: () => client.close(),
  };
}
