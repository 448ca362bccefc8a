/**
 * Stored records of the VPN module (docs/vpn.md). Networks, peers and pair PSKs are separate collections
 * so a change touches only the records it changes. Secrets never live in records: a record names the
 * sealed blob (under SEALED_BLOB_PREFIX, so KEK rotation re-wraps it) and the generation it was made at.
 */
import type { SealContext } from '../keys/port.js';
import { SEALED_BLOB_PREFIX } from '../store/port.js';

export const NETWORKS_COLLECTION = 'vpnNetworks';
export const PEERS_COLLECTION = 'vpnPeers';
export const PSKS_COLLECTION = 'vpnPsks';
/** Disabled key material waiting for destruction (key states: disabled → destroyed). */
export const RETIRED_COLLECTION = 'vpnRetiredSecrets';

export type Topology = 'hub' | 'mesh';
export const TOPOLOGIES: readonly Topology[] = ['hub', 'mesh'];
export type PeerRole = 'hub' | 'spoke';
export const PEER_ROLES: readonly PeerRole[] = ['hub', 'spoke'];
/** server: keywright made the key pair and holds the sealed private key; client: only the public key is known. */
export type KeySource = 'server' | 'client';

export interface VpnNetworkRecord {
  readonly id: string;
  /** Canonical CIDRs, at most one IPv4 and one IPv6, in the order given. */
  readonly cidrs: readonly string[];
  readonly listenPort?: number;
  readonly dns: readonly string[];
  readonly topology: Topology;
  readonly pskRotationMs?: number;
  readonly keyRotationMs?: number;
  /**
   * Bumped once by every change that alters any peer's config (add, remove, rotate). Keys and PSKs are
   * stamped with the generation that made them, so generations never repeat within a network and
   * sealed-blob ids stay unique even when a peer name is reused.
   */
  readonly generation: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly lastPskRotationAt: string;
  readonly lastKeyRotationAt: string;
}

export interface VpnPeerRecord {
  /** `<network>/<peer>` */
  readonly id: string;
  readonly network: string;
  readonly name: string;
  readonly role: PeerRole;
  /** One canonical host address per pool, in pool order. */
  readonly addresses: readonly string[];
  readonly keySource: KeySource;
  /** WireGuard base64 of the 32-byte X25519 public key. */
  readonly publicKey: string;
  readonly keyGeneration: number;
  /** Sealed PKCS#8 X25519 private key; only for server-made keys. */
  readonly keyBlob?: string;
  readonly endpoint?: string;
  /** Extra networks routed to this peer (canonical CIDRs). */
  readonly allowedIps: readonly string[];
  readonly keepalive?: number;
  readonly listenPort?: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface VpnPskRecord {
  /** `<network>/<a>/<b>` with a < b. */
  readonly id: string;
  readonly network: string;
  readonly peers: readonly [string, string];
  readonly generation: number;
  readonly blob: string;
  readonly createdAt: string;
}

export interface VpnRetiredSecretRecord {
  /** The blob key. */
  readonly id: string;
  readonly network: string;
  readonly kind: 'keypair' | 'psk';
  /** `<peer>` for a key pair, `<a>+<b>` for a PSK. */
  readonly owner: string;
  readonly generation: number;
  readonly context: SealContext;
  readonly disabledAt: string;
  readonly destroyAfter: string;
}

export const peerId = (network: string, peer: string): string => `${network}/${peer}`;

/** The two peers of a pair in a fixed order, so each pair has one id and one PSK. */
export function orderedPair(a: string, b: string): readonly [string, string] {
  return a < b ? [a, b] : [b, a];
}

export const pskId = (network: string, a: string, b: string): string => {
  const [x, y] = orderedPair(a, b);
  return `${network}/${x}/${y}`;
};

export const peerKeyContext = (network: string, peer: string, generation: number): SealContext => ({
  recordType: 'vpn-peer-key',
  recordId: `${network}/${peer}/${generation}`,
});

export const pskContext = (network: string, a: string, b: string, generation: number): SealContext => {
  const [x, y] = orderedPair(a, b);
  return { recordType: 'vpn-psk', recordId: `${network}/${x}+${y}/${generation}` };
};

export const peerKeyBlobKey = (network: string, peer: string, generation: number): string =>
  `${SEALED_BLOB_PREFIX}vpn/${network}/key/${peer}/${generation}`;

export const pskBlobKey = (network: string, a: string, b: string, generation: number): string => {
  const [x, y] = orderedPair(a, b);
  return `${SEALED_BLOB_PREFIX}vpn/${network}/psk/${x}/${y}/${generation}`;
};
