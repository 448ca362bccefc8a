/**
 * Who talks to whom, and the non-secret plan of one peer's wg-quick config. The plan names every input
 * of the rendered file except the secrets themselves (which it names by sealed blob and generation), so
 * its hash is the config's ETag: it changes exactly when the rendered file would.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../core/errors.js';
import { hostRoute } from './addresses.js';
import type { KeySource, VpnNetworkRecord, VpnPeerRecord, VpnPskRecord } from './model.js';
import { orderedPair, pskId } from './model.js';

/** May `a` and `b` exchange packets directly? Mesh: everyone. Hub: the hub and each spoke, spokes not directly. */
export function canTalk(network: VpnNetworkRecord, a: VpnPeerRecord, b: VpnPeerRecord): boolean {
  if (a.name === b.name) return false;
  if (network.topology === 'mesh') return true;
  return a.role === 'hub' || b.role === 'hub';
}

/** Every pair that needs a PSK, ordered, by name. */
export function talkingPairs(
  network: VpnNetworkRecord,
  peers: readonly VpnPeerRecord[],
): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  const sorted = [...peers].sort(byName);
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      if (canTalk(network, sorted[i]!, sorted[j]!)) out.push(orderedPair(sorted[i]!.name, sorted[j]!.name));
    }
  }
  return out;
}

export function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export interface PlannedPeer {
  readonly name: string;
  readonly publicKey: string;
  readonly pskGeneration: number;
  readonly pskBlob: string;
  readonly allowedIps: readonly string[];
  readonly endpoint?: string;
  readonly keepalive?: number;
}

export interface ConfigPlan {
  readonly network: string;
  readonly peer: string;
  readonly keySource: KeySource;
  readonly keyGeneration: number;
  readonly publicKey: string;
  readonly keyBlob?: string;
  /** Host address with the pool's prefix length, e.g. 10.8.0.2/24. */
  readonly addresses: readonly string[];
  readonly listenPort?: number;
  readonly dns: readonly string[];
  readonly peers: readonly PlannedPeer[];
}

/**
 * AllowedIPs of `other` as seen from `self`. A spoke sends everything for the network to the hub: the
 * whole pool plus every extra network routed behind the hub or behind another spoke. Otherwise a peer
 * is reached at its own host addresses plus the extra networks routed behind it.
 */
function allowedIpsOf(
  network: VpnNetworkRecord,
  self: VpnPeerRecord,
  other: VpnPeerRecord,
  all: readonly VpnPeerRecord[],
): string[] {
  if (network.topology === 'hub' && self.role === 'spoke' && other.role === 'hub') {
    const behind = all.filter((p) => p.name !== self.name).flatMap((p) => p.allowedIps);
    return dedupe([...network.cidrs, ...behind]);
  }
  return dedupe([...other.addresses.map(hostRoute), ...other.allowedIps]);
}

function dedupe(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/** The config plan of `self`; throws if a PSK that must exist is missing (an invariant, not user input). */
export function planConfig(
  network: VpnNetworkRecord,
  self: VpnPeerRecord,
  peers: readonly VpnPeerRecord[],
  psks: ReadonlyMap<string, VpnPskRecord>,
): ConfigPlan {
  const prefixes = network.cidrs.map((c) => c.slice(c.indexOf('/')));
  const listenPort = self.listenPort ?? network.listenPort;
  const planned = [...peers]
    .sort(byName)
    .filter((other) => canTalk(network, self, other))
    .map((other): PlannedPeer => {
      const psk = psks.get(pskId(network.id, self.name, other.name));
      if (psk === undefined) {
        throw new AppError('INTERNAL', `vpn: no PSK for ${network.id}/${self.name}+${other.name}`);
      }
      return {
        name: other.name,
        publicKey: other.publicKey,
        pskGeneration: psk.generation,
        pskBlob: psk.blob,
        allowedIps: allowedIpsOf(network, self, other, peers),
        ...(other.endpoint === undefined ? {} : { endpoint: other.endpoint }),
        // PersistentKeepalive is how often this side sends: a peer behind NAT sets it for its own config.
        ...(self.keepalive === undefined || self.keepalive === 0 ? {} : { keepalive: self.keepalive }),
      };
    });
  return {
    network: network.id,
    peer: self.name,
    keySource: self.keySource,
    keyGeneration: self.keyGeneration,
    publicKey: self.publicKey,
    ...(self.keyBlob === undefined ? {} : { keyBlob: self.keyBlob }),
    addresses: self.addresses.map((a, i) => `${a}${prefixes[i] ?? ''}`),
    ...(listenPort === undefined ? {} : { listenPort }),
    dns: network.dns,
    peers: planned,
  };
}

/**
 * The config's entity tag (RFC 9110 §8.8.3): SHA-256 over the plan, which holds public keys, addresses,
 * generations and blob names but no secret. Strong: equal tags mean byte-identical configs.
 */
export function configEtag(plan: ConfigPlan): string {
  const digest = createHash('sha256').update(JSON.stringify(plan)).digest('base64url');
  return `"${digest.slice(0, 27)}"`;
}

/** Does an If-None-Match header value (RFC 9110 §13.1.2: `*` or a list, weak comparison) match `etag`? */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  const bare = (tag: string) => tag.trim().replace(/^W\//, '');
  return ifNoneMatch.split(',').some((tag) => tag.trim() === '*' || bare(tag) === bare(etag));
}
