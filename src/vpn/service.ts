/**
 * The VPN service: WireGuard networks, peers, their X25519 key pairs and pairwise PSKs, rendering and
 * rotation (docs/vpn.md). Every change runs in one store transaction that also writes its audit entries
 * before it commits (fail closed), so a rotation changes every affected peer's config in step and no
 * change exists without its entry.
 */
import { createHash, randomBytes as nodeRandomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { formatDuration, MS } from '../core/duration.js';
import { AppError, ValidationError, VpnError } from '../core/errors.js';
import { generateKeyPair, x25519RawPrivate, x25519RawPublic } from '../keys/generate.js';
import type { SealContext, SealedBlob, Sealer } from '../keys/port.js';
import { sealPrivateKey, unsealPrivateKey } from '../keys/sealed-key.js';
import type { Store, StoreTx, CollectionReader } from '../store/port.js';
import type { AuditRecorder } from '../audit/audit-log.js';
import type { AuditDetails } from '../audit/entry.js';
import { allocateAddresses, cidrsOverlap, parsePoolCidr } from './addresses.js';
import {
  checkAllowedIp,
  checkExtraRoutes,
  checkInterval,
  checkPools,
  checkDns,
  checkEndpoint,
  checkKeepalive,
  checkName,
  checkPort,
  checkPublicKey,
} from './input.js';
import {
  NETWORKS_COLLECTION,
  PEERS_COLLECTION,
  PEER_ROLES,
  PSKS_COLLECTION,
  RETIRED_COLLECTION,
  TOPOLOGIES,
  orderedPair,
  peerId,
  peerKeyBlobKey,
  peerKeyContext,
  pskBlobKey,
  pskContext,
  pskId,
  type PeerRole,
  type Topology,
  type VpnNetworkRecord,
  type VpnPeerRecord,
  type VpnPskRecord,
  type VpnRetiredSecretRecord,
} from './model.js';
import { byName, canTalk, configEtag, planConfig, talkingPairs, type ConfigPlan } from './plan.js';
import { renderWgQuick } from './wg-quick.js';
import {
  networkView,
  peerView,
  type VpnNetworkDetail,
  type VpnNetworkView,
  type VpnPeerView,
} from './views.js';

export type { VpnNetworkDetail, VpnNetworkView, VpnPeerView } from './views.js';

/** How long disabled keys and PSKs are kept before destruction, unless the service is told otherwise. */
export const DEFAULT_RETIRED_RETENTION_MS = 30 * MS.d;

export interface VpnEvent {
  readonly type: 'network.created' | 'peer.added' | 'peer.removed' | 'rotated' | 'secrets.destroyed';
  readonly network: string;
  readonly generation: number;
  /** Peers whose rendered config changed (their ETag moved). */
  readonly peers: readonly string[];
}

export interface VpnServiceOptions {
  readonly store: Store;
  readonly sealer: Sealer;
  readonly audit: AuditRecorder;
  readonly clock?: Clock;
  /** PSK material; injected so tests can pin it. Default node:crypto randomBytes. */
  readonly randomBytes?: (size: number) => Buffer;
  /** Waiting period between disabling a key and destroying it; default 30 days. */
  readonly retiredRetentionMs?: number;
  /** Called after each committed change (the SSE endpoint will subscribe here). Must not throw. */
  readonly onEvent?: (event: VpnEvent) => void;
}

/** Who asks: recorded as the audit actor (a token id, or 'system' for the scheduler). */
export interface VpnActor {
  readonly actor: string;
  readonly requestId?: string;
}

const SYSTEM: VpnActor = { actor: 'system' };

export interface CreateNetworkInput {
  readonly name: string;
  readonly cidrs: readonly string[];
  readonly listenPort?: number;
  readonly dns?: readonly string[];
  readonly topology?: Topology;
  readonly pskRotationMs?: number;
  readonly keyRotationMs?: number;
}

export interface AddPeerInput {
  readonly name: string;
  readonly addresses?: readonly string[];
  readonly endpoint?: string;
  readonly allowedIps?: readonly string[];
  readonly keepalive?: number;
  readonly role?: PeerRole;
  /** A client-side key: only this public key is stored; the private key never reaches keywright. */
  readonly publicKey?: string;
  readonly listenPort?: number;
}

export type RotateWhat = 'psk' | 'keys' | 'all';
export const ROTATE_WHAT: readonly RotateWhat[] = ['psk', 'keys', 'all'];

export interface RotateInput {
  readonly peer?: string;
  readonly what: RotateWhat;
}

export interface RotationResult {
  readonly network: string;
  readonly generation: number;
  /** Peers whose key pair was replaced. */
  readonly keys: readonly string[];
  /** Pairs whose PSK was replaced, as `a+b`. */
  readonly psks: readonly string[];
  /** Peers whose key was not rotated because it is client-side, when keys were asked for. */
  readonly clientSideKeys: readonly string[];
  /** Peers whose rendered config changed. */
  readonly changedConfigs: readonly string[];
}

export interface RenderedConfig {
  readonly network: string;
  readonly peer: string;
  readonly etag: string;
  readonly text: string;
}

/** What one change stages: its result, the audit entries to write before commit, the event after. */
interface Staged<R> {
  readonly result: R;
  readonly audit: ReadonlyArray<{ action: string; subject: string; details?: AuditDetails }>;
  readonly event?: Omit<VpnEvent, 'peers'> & { peers?: readonly string[] };
}

function tables(tx: StoreTx) {
  return {
    networks: tx.collection<VpnNetworkRecord>(NETWORKS_COLLECTION),
    peers: tx.collection<VpnPeerRecord>(PEERS_COLLECTION),
    psks: tx.collection<VpnPskRecord>(PSKS_COLLECTION),
    retired: tx.collection<VpnRetiredSecretRecord>(RETIRED_COLLECTION),
  };
}
type TxTables = ReturnType<typeof tables>;
type ReadTables = {
  networks: CollectionReader<VpnNetworkRecord>;
  peers: CollectionReader<VpnPeerRecord>;
  psks: CollectionReader<VpnPskRecord>;
};

function notFound(network: string, peer?: string): VpnError {
  return peer === undefined
    ? new VpnError('VPN_NOT_FOUND', `no VPN network named ${network}`, { details: { network } })
    : new VpnError('VPN_NOT_FOUND', `network ${network} has no peer named ${peer}`, {
        details: { network, peer },
      });
}

/** A short, non-secret fingerprint of a public key for audit entries. */
function fingerprint(publicKeyBase64: string): string {
  return createHash('sha256').update(Buffer.from(publicKeyBase64, 'base64')).digest('hex').slice(0, 32);
}

export class VpnService {
  readonly #store: Store;
  readonly #sealer: Sealer;
  readonly #audit: AuditRecorder;
  readonly #clock: Clock;
  readonly #random: (size: number) => Buffer;
  readonly #retentionMs: number;
  readonly #onEvent: ((event: VpnEvent) => void) | undefined;
  readonly #waiters = new Map<string, Set<() => void>>();

  constructor(options: VpnServiceOptions) {
    this.#store = options.store;
    this.#sealer = options.sealer;
    this.#audit = options.audit;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.randomBytes ?? nodeRandomBytes;
    this.#retentionMs = options.retiredRetentionMs ?? DEFAULT_RETIRED_RETENTION_MS;
    this.#onEvent = options.onEvent;
  }

  // --- reads ----------------------------------------------------------------------------------------

  #read(): ReadTables {
    return {
      networks: this.#store.collection<VpnNetworkRecord>(NETWORKS_COLLECTION),
      peers: this.#store.collection<VpnPeerRecord>(PEERS_COLLECTION),
      psks: this.#store.collection<VpnPskRecord>(PSKS_COLLECTION),
    };
  }

  listNetworks(): VpnNetworkView[] {
    const t = this.#read();
    return t.networks
      .list()
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((n) => networkView(n, t.peers.list((p) => p.network === n.id).length));
  }

  /** The network with its peers, public keys, addresses and generations; no secret. */
  getNetwork(name: string): VpnNetworkDetail {
    const t = this.#read();
    const network = t.networks.find(name);
    if (network === undefined) throw notFound(name);
    const peers = peersOf(t, name);
    const etags = allEtags(t, network, peers);
    return {
      ...networkView(network, peers.length),
      peers: peers.map((p) => peerView(p, etags.get(p.name) ?? '')),
      psks: t.psks
        .list((k) => k.network === name)
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .map((k) => ({ peers: k.peers, generation: k.generation })),
    };
  }

  /** The plan and ETag of a peer's config, without unsealing anything (for If-None-Match). */
  configState(network: string, peer: string): { plan: ConfigPlan; etag: string } {
    const t = this.#read();
    const net = t.networks.find(network);
    if (net === undefined) throw notFound(network);
    const self = t.peers.find(peerId(network, peer));
    if (self === undefined) throw notFound(network, peer);
    const plan = planConfig(net, self, peersOf(t, network), pskMap(t, network));
    return { plan, etag: configEtag(plan) };
  }

  /**
   * Renders a peer's wg-quick file with its private key (server-made keys) and PSKs, and audits the
   * export (`vpn.config.export`; the entry names the peer and generation, never a key). Refused if the
   * audit entry cannot be written.
   */
  async exportConfig(network: string, peer: string, who: VpnActor): Promise<RenderedConfig> {
    const { plan, etag } = this.configState(network, peer);
    const psks = new Map<string, string>();
    for (const p of plan.peers) {
      const [a, b] = [plan.peer, p.name];
      const raw = await this.#unseal(p.pskBlob, pskContext(network, a, b, p.pskGeneration));
      psks.set(p.name, raw.toString('base64'));
      raw.fill(0);
    }
    let privateKey: string | undefined;
    if (plan.keyBlob !== undefined) {
      const key = await unsealPrivateKey(
        this.#sealer,
        await this.#readBlob(plan.keyBlob),
        peerKeyContext(network, peer, plan.keyGeneration),
      );
      const raw = x25519RawPrivate(key);
      privateKey = raw.toString('base64');
      raw.fill(0);
    }
    const text = renderWgQuick(plan, { ...(privateKey === undefined ? {} : { privateKey }), psks });
    await this.#audit.append(
      {
        actor: who.actor,
        action: 'vpn.config.export',
        subject: `vpn:${network}/${peer}`,
        outcome: 'success',
        ...(who.requestId === undefined ? {} : { requestId: who.requestId }),
        details: {
          generation: plan.keyGeneration,
          keySource: plan.keySource,
          peerCount: plan.peers.length,
          etag,
        },
      },
      { disclosure: true },
    );
    return { network, peer, etag, text };
  }

  /**
   * Resolves when a change to `network` commits, or after `timeoutMs`, or when `signal` aborts; for long
   * polls (compare the ETag again afterwards: the change may not concern the caller's peer).
   */
  waitForChange(network: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(network);
      if (set === undefined) this.#waiters.set(network, (set = new Set()));
      const waiters = set;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        waiters.delete(done);
        if (waiters.size === 0 && this.#waiters.get(network) === waiters) this.#waiters.delete(network);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done);
      waiters.add(done);
      if (signal?.aborted) done();
    });
  }

  // --- changes --------------------------------------------------------------------------------------

  async createNetwork(input: CreateNetworkInput, who: VpnActor): Promise<VpnNetworkView> {
    const name = checkName(input.name, 'name');
    const cidrs = checkPools(input.cidrs);
    const listenPort = input.listenPort === undefined ? undefined : checkPort(input.listenPort, 'listenPort');
    const dns = (input.dns ?? []).map((d, i) => checkDns(d, `dns[${i}]`));
    const topology = input.topology ?? 'mesh';
    if (!TOPOLOGIES.includes(topology)) {
      throw new ValidationError('INVALID_ARGUMENT', `topology: use ${TOPOLOGIES.join(' or ')}`, {
        details: { field: 'topology' },
      });
    }
    const pskRotationMs = checkInterval(input.pskRotationMs, 'pskRotation');
    const keyRotationMs = checkInterval(input.keyRotationMs, 'keyRotation');
    return this.#change(who, (tx) => {
      const t = tables(tx);
      if (t.networks.find(name) !== undefined) {
        throw new VpnError('VPN_CONFLICT', `a VPN network named ${name} exists already`, {
          details: { network: name },
        });
      }
      for (const other of t.networks.list()) {
        for (const mine of cidrs) {
          const theirs = other.cidrs.find((c) =>
            cidrsOverlap(parsePoolCidr(c, 'cidrs'), parsePoolCidr(mine, 'cidrs')),
          );
          if (theirs !== undefined) {
            throw new VpnError(
              'VPN_CONFLICT',
              `pool ${mine} of network ${name} overlaps pool ${theirs} of network ${other.id}; pick a pool that overlaps no other network`,
              { details: { network: name, cidr: mine, otherNetwork: other.id, otherCidr: theirs } },
            );
          }
        }
      }
      const now = this.#clock.now().toISOString();
      const record: VpnNetworkRecord = {
        id: name,
        cidrs,
        ...(listenPort === undefined ? {} : { listenPort }),
        dns,
        topology,
        ...(pskRotationMs === undefined ? {} : { pskRotationMs }),
        ...(keyRotationMs === undefined ? {} : { keyRotationMs }),
        generation: 1,
        createdAt: now,
        updatedAt: now,
        lastPskRotationAt: now,
        lastKeyRotationAt: now,
      };
      t.networks.insert(record);
      return Promise.resolve({
        result: networkView(record, 0),
        audit: [
          {
            action: 'vpn.network.create',
            subject: `vpn:${name}`,
            details: {
              cidrs: cidrs.join(','),
              topology,
              ...(pskRotationMs === undefined ? {} : { presharedRotation: formatDuration(pskRotationMs) }),
              ...(keyRotationMs === undefined ? {} : { keypairRotation: formatDuration(keyRotationMs) }),
            },
          },
        ],
        event: { type: 'network.created', network: name, generation: 1, peers: [] },
      });
    });
  }

  async addPeer(network: string, input: AddPeerInput, who: VpnActor): Promise<VpnPeerView> {
    const name = checkName(input.name, 'name');
    const given = (input.addresses ?? []).map(String);
    const endpoint = input.endpoint === undefined ? undefined : checkEndpoint(input.endpoint, 'endpoint');
    const allowedIps = [
      ...new Set((input.allowedIps ?? []).map((c, i) => checkAllowedIp(c, `allowedIps[${i}]`))),
    ];
    const keepalive =
      input.keepalive === undefined ? undefined : checkKeepalive(input.keepalive, 'keepalive');
    const listenPort = input.listenPort === undefined ? undefined : checkPort(input.listenPort, 'listenPort');
    const publicKey =
      input.publicKey === undefined ? undefined : checkPublicKey(input.publicKey, 'publicKey');
    const role = input.role ?? 'spoke';
    if (!PEER_ROLES.includes(role)) {
      throw new ValidationError('INVALID_ARGUMENT', `role: use ${PEER_ROLES.join(' or ')}`, {
        details: { field: 'role' },
      });
    }
    return this.#change(who, async (tx) => {
      const t = tables(tx);
      const net = t.networks.find(network);
      if (net === undefined) throw notFound(network);
      if (role === 'hub' && net.topology === 'mesh') {
        throw new ValidationError(
          'INVALID_ARGUMENT',
          `role: network ${network} is a mesh, where every peer reaches every other; hub is for topology hub`,
          { details: { field: 'role', network } },
        );
      }
      const peers = peersOf(t, network);
      if (peers.some((p) => p.name === name)) {
        throw new VpnError('VPN_CONFLICT', `network ${network} has a peer named ${name} already`, {
          details: { network, peer: name },
        });
      }
      const hub = peers.find((p) => p.role === 'hub');
      if (role === 'hub' && hub !== undefined) {
        throw new VpnError(
          'VPN_CONFLICT',
          `network ${network} has a hub already (${hub.name}); a hub network has one hub`,
          {
            details: { network, peer: hub.name },
          },
        );
      }
      const sameKey = publicKey === undefined ? undefined : peers.find((p) => p.publicKey === publicKey);
      if (sameKey !== undefined) {
        throw new VpnError('VPN_CONFLICT', `peer ${sameKey.name} of ${network} has this public key already`, {
          details: { field: 'publicKey', network, peer: sameKey.name },
        });
      }
      const used = new Map(peers.flatMap((p) => p.addresses.map((a) => [a, p.name] as const)));
      const addresses = allocateAddresses(network, net.cidrs, given, used);
      checkExtraRoutes(net, peers, allowedIps);

      const generation = net.generation + 1;
      const now = this.#clock.now().toISOString();
      const before = allEtags(t, net, peers);
      const audit: Array<Staged<unknown>['audit'][number]> = [];
      let peer: VpnPeerRecord = {
        id: peerId(network, name),
        network,
        name,
        role,
        addresses,
        keySource: publicKey === undefined ? 'server' : 'client',
        publicKey: publicKey ?? '',
        keyGeneration: generation,
        ...(endpoint === undefined ? {} : { endpoint }),
        allowedIps,
        ...(keepalive === undefined ? {} : { keepalive }),
        ...(listenPort === undefined ? {} : { listenPort }),
        createdAt: now,
        updatedAt: now,
      };
      if (publicKey === undefined) {
        const made = await this.#newKeyPair(tx, network, name, generation);
        peer = { ...peer, publicKey: made.publicKey, keyBlob: made.blob };
        audit.push(keyCreated(network, name, generation, made.publicKey, 'add'));
      }
      t.peers.insert(peer);
      const psks: string[] = [];
      for (const other of peers.filter((o) => canTalk(net, peer, o)).sort(byName)) {
        await this.#newPsk(tx, t, network, name, other.name, generation, now);
        psks.push(other.name);
        audit.push(pskCreated(network, name, other.name, generation, 'add'));
      }
      const updated = t.networks.update(network, (n) => ({ ...n, generation, updatedAt: now }));
      const after = allEtags(t, updated, peersOf(t, network));
      audit.unshift({
        action: 'vpn.peer.add',
        subject: `vpn:${network}/${name}`,
        details: {
          generation,
          keySource: peer.keySource,
          role,
          addresses: addresses.join(','),
          pskCount: psks.length,
          publicKeyFingerprint: fingerprint(peer.publicKey),
        },
      });
      return {
        result: peerView(peer, after.get(name) ?? ''),
        audit,
        event: { type: 'peer.added', network, generation, peers: changed(before, after) },
      };
    });
  }

  /** Removes a peer from the network and every config; its key and PSKs are disabled, destroyed later. */
  async removePeer(
    network: string,
    peer: string,
    who: VpnActor,
  ): Promise<{ network: string; peer: string; generation: number }> {
    checkName(network, 'network');
    checkName(peer, 'peer');
    return this.#change(who, async (tx) => {
      const t = tables(tx);
      const net = t.networks.find(network);
      if (net === undefined) throw notFound(network);
      const record = t.peers.find(peerId(network, peer));
      if (record === undefined) throw notFound(network, peer);
      const before = allEtags(t, net, peersOf(t, network));
      const now = this.#clock.now();
      let retired = 0;
      if (record.keyBlob !== undefined) {
        this.#retire(t, now, {
          id: record.keyBlob,
          network,
          kind: 'keypair',
          owner: peer,
          generation: record.keyGeneration,
          context: peerKeyContext(network, peer, record.keyGeneration),
        });
        retired++;
      }
      for (const psk of t.psks.list((k) => k.network === network && k.peers.includes(peer))) {
        this.#retire(t, now, {
          id: psk.blob,
          network,
          kind: 'psk',
          owner: psk.peers.join('+'),
          generation: psk.generation,
          context: pskContext(network, psk.peers[0], psk.peers[1], psk.generation),
        });
        t.psks.delete(psk.id);
        retired++;
      }
      t.peers.delete(record.id);
      const generation = net.generation + 1;
      const updated = t.networks.update(network, (n) => ({ ...n, generation, updatedAt: now.toISOString() }));
      const after = allEtags(t, updated, peersOf(t, network));
      return {
        result: { network, peer, generation },
        audit: [
          {
            action: 'vpn.peer.remove',
            subject: `vpn:${network}/${peer}`,
            details: { generation, retiredCount: retired, destroyAfter: this.#destroyAfter(now) },
          },
        ],
        event: { type: 'peer.removed', network, generation, peers: changed(before, after) },
      };
    });
  }

  /**
   * Rotates PSKs and/or server-made key pairs of the network (or of one peer and its pairs) in one
   * transaction: every affected config changes in the same commit. Client-side keys cannot be rotated
   * here; only their PSKs are. Old material is disabled and destroyed after the waiting period.
   */
  async rotate(network: string, input: RotateInput, who: VpnActor): Promise<RotationResult> {
    checkName(network, 'network');
    if (input.peer !== undefined) checkName(input.peer, 'peer');
    if (!ROTATE_WHAT.includes(input.what)) {
      throw new ValidationError('INVALID_ARGUMENT', `what: use ${ROTATE_WHAT.join(', ')}`, {
        details: { field: 'what' },
      });
    }
    return this.#change(who, async (tx) => {
      const t = tables(tx);
      const net = t.networks.find(network);
      if (net === undefined) throw notFound(network);
      const peers = peersOf(t, network);
      const target = input.peer;
      if (target !== undefined && !peers.some((p) => p.name === target)) throw notFound(network, target);
      const generation = net.generation + 1;
      const now = this.#clock.now();
      const nowIso = now.toISOString();
      const before = allEtags(t, net, peers);
      const audit: Array<Staged<unknown>['audit'][number]> = [];
      const keys: string[] = [];
      const clientSideKeys: string[] = [];
      const psks: string[] = [];

      if (input.what !== 'psk') {
        for (const peer of peers.filter((p) => target === undefined || p.name === target)) {
          if (peer.keySource === 'client') {
            clientSideKeys.push(peer.name);
            continue;
          }
          if (peer.keyBlob !== undefined) {
            this.#retire(t, now, {
              id: peer.keyBlob,
              network,
              kind: 'keypair',
              owner: peer.name,
              generation: peer.keyGeneration,
              context: peerKeyContext(network, peer.name, peer.keyGeneration),
            });
          }
          const made = await this.#newKeyPair(tx, network, peer.name, generation);
          t.peers.update(peer.id, (p) => ({
            ...p,
            publicKey: made.publicKey,
            keyBlob: made.blob,
            keyGeneration: generation,
            updatedAt: nowIso,
          }));
          keys.push(peer.name);
          audit.push(keyCreated(network, peer.name, generation, made.publicKey, 'rotate'));
        }
      }
      if (input.what !== 'keys') {
        for (const [a, b] of talkingPairs(net, peers)) {
          if (target !== undefined && a !== target && b !== target) continue;
          const old = t.psks.find(pskId(network, a, b));
          if (old !== undefined) {
            this.#retire(t, now, {
              id: old.blob,
              network,
              kind: 'psk',
              owner: `${a}+${b}`,
              generation: old.generation,
              context: pskContext(network, a, b, old.generation),
            });
          }
          await this.#newPsk(tx, t, network, a, b, generation, nowIso);
          psks.push(`${a}+${b}`);
          audit.push(pskCreated(network, a, b, generation, 'rotate'));
        }
      }
      if (keys.length === 0 && psks.length === 0) {
        // Nothing to rotate (an empty network, or only client-side keys asked for): nothing changes.
        return {
          result: { network, generation: net.generation, keys, psks, clientSideKeys, changedConfigs: [] },
          audit: [],
        };
      }
      const whole = target === undefined;
      const updated = t.networks.update(network, (n) => ({
        ...n,
        generation,
        updatedAt: nowIso,
        ...(whole && input.what !== 'keys' ? { lastPskRotationAt: nowIso } : {}),
        ...(whole && input.what !== 'psk' ? { lastKeyRotationAt: nowIso } : {}),
      }));
      const after = allEtags(t, updated, peersOf(t, network));
      const changedConfigs = changed(before, after);
      audit.unshift({
        action: 'vpn.rotate',
        subject: target === undefined ? `vpn:${network}` : `vpn:${network}/${target}`,
        details: {
          what: input.what,
          generation,
          keyCount: keys.length,
          pskCount: psks.length,
          clientSideKeyCount: clientSideKeys.length,
          destroyAfter: this.#destroyAfter(now),
        },
      });
      return {
        result: { network, generation, keys, psks, clientSideKeys, changedConfigs },
        audit,
        event: { type: 'rotated', network, generation, peers: changedConfigs },
      };
    });
  }

  /**
   * Scheduled rotation: every network whose `pskRotation` or `keyRotation` interval has passed since its
   * last whole-network rotation is rotated (both at once when both are due). For the scheduler.
   */
  async rotateDue(now: Date = this.#clock.now()): Promise<RotationResult[]> {
    const results: RotationResult[] = [];
    for (const net of this.#read()
      .networks.list()
      .sort((a, b) => (a.id < b.id ? -1 : 1))) {
      const due = (interval: number | undefined, last: string) =>
        interval !== undefined && now.getTime() - Date.parse(last) >= interval;
      const psk = due(net.pskRotationMs, net.lastPskRotationAt);
      const keys = due(net.keyRotationMs, net.lastKeyRotationAt);
      if (!psk && !keys) continue;
      results.push(await this.rotate(net.id, { what: psk && keys ? 'all' : psk ? 'psk' : 'keys' }, SYSTEM));
    }
    return results;
  }

  /**
   * Destroys disabled keys and PSKs whose waiting period has ended: the sealed blob is deleted, the
   * audit entry (`vpn.key.destroy`) stays. For the scheduler; returns how many were destroyed.
   */
  async destroyExpiredVpnKeys(now: Date = this.#clock.now()): Promise<{ destroyed: number }> {
    const expired = this.#store
      .collection<VpnRetiredSecretRecord>(RETIRED_COLLECTION)
      .list((r) => Date.parse(r.destroyAfter) <= now.getTime());
    if (expired.length === 0) return { destroyed: 0 };
    return this.#change(SYSTEM, (tx) => {
      const t = tables(tx);
      const audit: Array<Staged<unknown>['audit'][number]> = [];
      let destroyed = 0;
      for (const r of expired) {
        if (t.retired.find(r.id) === undefined) continue; // destroyed meanwhile
        tx.deleteBlob(r.id);
        t.retired.delete(r.id);
        destroyed++;
        audit.push({
          action: 'vpn.key.destroy',
          subject: `vpn:${r.network}/${r.owner}`,
          details: { kind: r.kind, generation: r.generation, disabledAt: r.disabledAt },
        });
      }
      return Promise.resolve({ result: { destroyed }, audit });
    });
  }

  // --- internals ------------------------------------------------------------------------------------

  /**
   * Runs one change: stage it, write its audit entries (fail closed: an audit failure throws and nothing
   * is applied), commit. If the commit itself fails after the entries were written, a failure entry
   * follows so the log does not claim a change that never happened.
   */
  async #change<R>(who: VpnActor, work: (tx: StoreTx) => Promise<Staged<R>>): Promise<R> {
    let written: Staged<R>['audit'] = [];
    const base = { actor: who.actor, ...(who.requestId === undefined ? {} : { requestId: who.requestId }) };
    let staged: Staged<R>;
    try {
      staged = await this.#store.tx(async (tx) => {
        const s = await work(tx);
        await Promise.all(
          s.audit.map((a) =>
            this.#audit.append({
              ...base,
              ...a,
              outcome: 'success',
              ...(a.details ? { details: a.details } : {}),
            }),
          ),
        );
        written = s.audit;
        return s;
      });
    } catch (err) {
      const first = written[0];
      if (first !== undefined) {
        await this.#audit
          .append({
            ...base,
            action: first.action,
            subject: first.subject,
            outcome: 'failure',
            details: { code: (err as { code?: string }).code ?? 'INTERNAL' },
          })
          .catch(() => undefined); // the original error is what the caller needs
      }
      throw err;
    }
    if (staged.event !== undefined) this.#emit({ ...staged.event, peers: staged.event.peers ?? [] });
    return staged.result;
  }

  #emit(event: VpnEvent): void {
    for (const wake of [...(this.#waiters.get(event.network) ?? [])]) wake();
    try {
      this.#onEvent?.(event);
    } catch {
      // a listener's failure must not undo or fail a committed change
    }
  }

  async #newKeyPair(
    tx: StoreTx,
    network: string,
    peer: string,
    generation: number,
  ): Promise<{ publicKey: string; blob: string }> {
    const { privateKey, publicKey } = await generateKeyPair('x25519');
    const sealed = await sealPrivateKey(this.#sealer, privateKey, peerKeyContext(network, peer, generation));
    const blob = peerKeyBlobKey(network, peer, generation);
    tx.putBlob(blob, Buffer.from(JSON.stringify(sealed)));
    return { publicKey: x25519RawPublic(publicKey).toString('base64'), blob };
  }

  async #newPsk(
    tx: StoreTx,
    t: TxTables,
    network: string,
    a: string,
    b: string,
    generation: number,
    now: string,
  ): Promise<void> {
    const material = this.#random(32);
    let sealed: SealedBlob;
    try {
      if (material.length !== 32)
        throw new AppError('INTERNAL', 'vpn: the PSK source returned the wrong length');
      sealed = await this.#sealer.seal(material, pskContext(network, a, b, generation));
    } finally {
      material.fill(0);
    }
    const blob = pskBlobKey(network, a, b, generation);
    tx.putBlob(blob, Buffer.from(JSON.stringify(sealed)));
    const id = pskId(network, a, b);
    t.psks.put({ id, network, peers: orderedPair(a, b), generation, blob, createdAt: now });
  }

  #retire(t: TxTables, now: Date, what: Omit<VpnRetiredSecretRecord, 'disabledAt' | 'destroyAfter'>): void {
    t.retired.put({ ...what, disabledAt: now.toISOString(), destroyAfter: this.#destroyAfter(now) });
  }

  #destroyAfter(now: Date): string {
    return new Date(now.getTime() + this.#retentionMs).toISOString();
  }

  async #readBlob(key: string): Promise<SealedBlob> {
    const bytes = await this.#store.getBlob(key);
    if (bytes === undefined) throw new AppError('INTERNAL', `vpn: sealed blob ${key} is missing`);
    return JSON.parse(bytes.toString('utf8')) as SealedBlob;
  }

  async #unseal(key: string, context: SealContext): Promise<Buffer> {
    return this.#sealer.unseal(await this.#readBlob(key), context);
  }
}

// --- helpers --------------------------------------------------------------------------------------

function peersOf(t: { peers: CollectionReader<VpnPeerRecord> }, network: string): VpnPeerRecord[] {
  return t.peers.list((p) => p.network === network).sort(byName);
}

function pskMap(t: { psks: CollectionReader<VpnPskRecord> }, network: string): Map<string, VpnPskRecord> {
  return new Map(t.psks.list((k) => k.network === network).map((k) => [k.id, k]));
}

function allEtags(
  t: { psks: CollectionReader<VpnPskRecord> },
  network: VpnNetworkRecord,
  peers: readonly VpnPeerRecord[],
): Map<string, string> {
  const psks = pskMap(t, network.id);
  return new Map(peers.map((p) => [p.name, configEtag(planConfig(network, p, peers, psks))]));
}

function changed(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((n) => before.get(n) !== after.get(n)).sort();
}

function keyCreated(network: string, peer: string, generation: number, publicKey: string, reason: string) {
  return {
    action: 'vpn.key.create',
    subject: `vpn:${network}/${peer}`,
    details: { generation, keyType: 'x25519', publicKeyFingerprint: fingerprint(publicKey), reason },
  };
}

function pskCreated(network: string, a: string, b: string, generation: number, reason: string) {
  const [x, y] = orderedPair(a, b);
  return {
    action: 'vpn.psk.create',
    subject: `vpn:${network}/${x}+${y}`,
    details: { generation, reason },
  };
}
