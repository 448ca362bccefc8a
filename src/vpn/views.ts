/** What the API and CLI show of networks and peers: public keys, addresses, generations; never a secret. */
import { formatDuration } from '../core/duration.js';
import type { PeerRole, Topology, VpnNetworkRecord, VpnPeerRecord } from './model.js';

export interface VpnPeerView {
  readonly name: string;
  readonly role: PeerRole;
  readonly addresses: readonly string[];
  readonly publicKey: string;
  readonly keySource: 'server' | 'client';
  readonly keyGeneration: number;
  readonly endpoint: string | null;
  readonly allowedIps: readonly string[];
  readonly keepalive: number | null;
  readonly listenPort: number | null;
  readonly configEtag: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface VpnNetworkView {
  readonly name: string;
  readonly cidrs: readonly string[];
  readonly listenPort: number | null;
  readonly dns: readonly string[];
  readonly topology: Topology;
  readonly pskRotation: string | null;
  readonly keyRotation: string | null;
  readonly generation: number;
  readonly peerCount: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly lastPskRotationAt: string;
  readonly lastKeyRotationAt: string;
}

export interface VpnNetworkDetail extends VpnNetworkView {
  readonly peers: readonly VpnPeerView[];
  readonly psks: ReadonlyArray<{ readonly peers: readonly [string, string]; readonly generation: number }>;
}

export function networkView(n: VpnNetworkRecord, peerCount: number): VpnNetworkView {
  return {
    name: n.id,
    cidrs: n.cidrs,
    listenPort: n.listenPort ?? null,
    dns: n.dns,
    topology: n.topology,
    pskRotation: n.pskRotationMs === undefined ? null : formatDuration(n.pskRotationMs),
    keyRotation: n.keyRotationMs === undefined ? null : formatDuration(n.keyRotationMs),
    generation: n.generation,
    peerCount,
    createdAt: n.createdAt,
    updatedAt: n.updatedAt,
    lastPskRotationAt: n.lastPskRotationAt,
    lastKeyRotationAt: n.lastKeyRotationAt,
  };
}

export function peerView(p: VpnPeerRecord, etag: string): VpnPeerView {
  return {
    name: p.name,
    role: p.role,
    addresses: p.addresses,
    publicKey: p.publicKey,
    keySource: p.keySource,
    keyGeneration: p.keyGeneration,
    endpoint: p.endpoint ?? null,
    allowedIps: p.allowedIps,
    keepalive: p.keepalive ?? null,
    listenPort: p.listenPort ?? null,
    configEtag: etag,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
  };
}
