/**
 * wg-quick(8) configuration text: rendering from a plan plus the unsealed secrets, and a strict parser
 * (the keys wg(8) and wg-quick accept, base64 keys of 32 bytes) used to check what we render.
 */
import { ValidationError } from '../core/errors.js';
import type { ConfigPlan } from './plan.js';

/** What the plan names but does not hold: base64 private key (server-made keys only) and PSK per peer. */
export interface ConfigSecrets {
  readonly privateKey?: string;
  readonly psks: ReadonlyMap<string, string>;
}

/**
 * Written instead of `PrivateKey = …` for a peer with a client-side key. The agent (or the user)
 * replaces this line with `PrivateKey = <the peer's own key>`; keywright never had that key.
 */
export const CLIENT_KEY_PLACEHOLDER =
  "# PrivateKey = (client-side key: put this peer's own private key here)";

export function renderWgQuick(plan: ConfigPlan, secrets: ConfigSecrets): string {
  const lines = [
    `# WireGuard config of peer ${plan.peer} in keywright VPN network ${plan.network}.`,
    '# Managed by keywright: fetch it again after a rotation instead of editing it.',
    '[Interface]',
    secrets.privateKey === undefined ? CLIENT_KEY_PLACEHOLDER : `PrivateKey = ${secrets.privateKey}`,
    `Address = ${plan.addresses.join(', ')}`,
  ];
  if (plan.listenPort !== undefined) lines.push(`ListenPort = ${plan.listenPort}`);
  if (plan.dns.length > 0) lines.push(`DNS = ${plan.dns.join(', ')}`);
  for (const peer of plan.peers) {
    const psk = secrets.psks.get(peer.name);
    lines.push('', '[Peer]', `# ${peer.name}`, `PublicKey = ${peer.publicKey}`);
    if (psk !== undefined) lines.push(`PresharedKey = ${psk}`);
    lines.push(`AllowedIPs = ${peer.allowedIps.join(', ')}`);
    if (peer.endpoint !== undefined) lines.push(`Endpoint = ${peer.endpoint}`);
    if (peer.keepalive !== undefined) lines.push(`PersistentKeepalive = ${peer.keepalive}`);
  }
  return `${lines.join('\n')}\n`;
}

export interface ParsedInterface {
  privateKey?: string;
  addresses: string[];
  listenPort?: number;
  dns: string[];
}

export interface ParsedPeer {
  /** The `# name` comment keywright writes above each peer, when present. */
  comment?: string;
  publicKey: string;
  presharedKey?: string;
  allowedIps: string[];
  endpoint?: string;
  keepalive?: number;
}

export interface ParsedConfig {
  interface: ParsedInterface;
  peers: ParsedPeer[];
}

const KEY = /^[A-Za-z0-9+/]{43}=$/;
const INTERFACE_KEYS = new Set([
  'privatekey',
  'address',
  'listenport',
  'dns',
  'fwmark',
  'mtu',
  'table',
  'preup',
  'postup',
  'predown',
  'postdown',
  'saveconfig',
]);
const PEER_KEYS = new Set(['publickey', 'presharedkey', 'allowedips', 'endpoint', 'persistentkeepalive']);

function bad(line: number, message: string): ValidationError {
  return new ValidationError('INVALID_ARGUMENT', `wg-quick config line ${line}: ${message}`, {
    details: { field: 'config', line },
  });
}

function wgKey(value: string, line: number, what: string): string {
  if (!KEY.test(value) || Buffer.from(value, 'base64').length !== 32) {
    throw bad(line, `${what} is not 32 bytes of base64`);
  }
  return value;
}

const list = (value: string) =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0);

/** Parses wg-quick text the way wg(8) does: sections, `Key = value`, `#` comments. Unknown keys are errors. */
export function parseWgQuick(text: string): ParsedConfig {
  const result: ParsedConfig = { interface: { addresses: [], dns: [] }, peers: [] };
  let section: 'none' | 'interface' | 'peer' = 'none';
  let seenInterface = false;
  let pendingComment: string | undefined;
  let current: Partial<ParsedPeer> & { allowedIps: string[] } = { allowedIps: [] };
  const closePeer = (line: number) => {
    if (section !== 'peer') return;
    if (current.publicKey === undefined) throw bad(line, 'a [Peer] section has no PublicKey');
    result.peers.push(current as ParsedPeer);
  };
  const rows = text.split('\n');
  rows.forEach((raw, i) => {
    const n = i + 1;
    const hash = raw.indexOf('#');
    const comment = hash >= 0 ? raw.slice(hash + 1).trim() : undefined;
    const content = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (content === '') {
      if (comment !== undefined) pendingComment = comment;
      return;
    }
    if (/^\[(interface|peer)\]$/i.test(content)) {
      closePeer(n);
      section = content.toLowerCase() === '[interface]' ? 'interface' : 'peer';
      if (section === 'interface') {
        if (seenInterface) throw bad(n, 'a second [Interface] section');
        seenInterface = true;
      }
      current = { allowedIps: [] };
      pendingComment = undefined;
      return;
    }
    const eq = content.indexOf('=');
    if (eq < 0) throw bad(n, 'expected Key = value');
    const key = content.slice(0, eq).trim().toLowerCase();
    const value = content.slice(eq + 1).trim();
    if (section === 'none') throw bad(n, 'a setting outside any section');
    if (section === 'interface') {
      if (!INTERFACE_KEYS.has(key)) throw bad(n, `unknown [Interface] key "${key}"`);
      const itf = result.interface;
      if (key === 'privatekey') itf.privateKey = wgKey(value, n, 'PrivateKey');
      else if (key === 'address') itf.addresses.push(...list(value));
      else if (key === 'dns') itf.dns.push(...list(value));
      else if (key === 'listenport') {
        const port = Number(value);
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw bad(n, 'ListenPort is not a port');
        itf.listenPort = port;
      }
      return;
    }
    if (!PEER_KEYS.has(key)) throw bad(n, `unknown [Peer] key "${key}"`);
    if (pendingComment !== undefined && current.comment === undefined) current.comment = pendingComment;
    if (key === 'publickey') current.publicKey = wgKey(value, n, 'PublicKey');
    else if (key === 'presharedkey') current.presharedKey = wgKey(value, n, 'PresharedKey');
    else if (key === 'allowedips') current.allowedIps.push(...list(value));
    else if (key === 'endpoint') current.endpoint = value;
    else {
      const seconds = Number(value);
      if (!Number.isInteger(seconds) || seconds < 0 || seconds > 65535)
        throw bad(n, 'PersistentKeepalive is not 0-65535');
      current.keepalive = seconds;
    }
  });
  closePeer(rows.length);
  if (!seenInterface) throw bad(1, 'no [Interface] section');
  return result;
}
