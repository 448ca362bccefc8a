import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { FakeClock } from '../../../src/core/clock.js';
import { AuditLog } from '../../../src/audit/index.js';
import { createKeyRing } from '../../../src/keys/software/key-ring.js';
import { SoftwareSealer } from '../../../src/keys/software/sealer.js';
import { createMemoryStore } from '../../../src/store/memory/index.js';
import type { Store } from '../../../src/store/port.js';
import {
  NETWORKS_COLLECTION,
  PEERS_COLLECTION,
  PSKS_COLLECTION,
  RETIRED_COLLECTION,
} from '../../../src/vpn/model.js';
import { VpnService, type VpnEvent } from '../../../src/vpn/service.js';
import { parseWgQuick, type ParsedConfig } from '../../../src/vpn/wg-quick.js';
import { tempDir } from '../../helpers/tmp.js';

export const WHO = { actor: 'tok_00112233aabbccdd', requestId: 'req-1' };

/** A VPN service over a memory store, a real sealer and a real audit log in a tmpdir. */
export async function vpnSetup(t: TestContext, options: { store?: Store; retiredRetentionMs?: number } = {}) {
  const dir = await tempDir(t, 'kw-vpn-');
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const store = options.store ?? createMemoryStore({ clock });
  const sealer = new SoftwareSealer(createKeyRing(randomBytes(32)));
  const audit = await AuditLog.open({ path: join(dir, 'audit.log'), clock });
  t.after(() => audit.close());
  const events: VpnEvent[] = [];
  const vpn = new VpnService({
    store,
    sealer,
    audit,
    clock,
    onEvent: (e) => events.push(e),
    ...(options.retiredRetentionMs === undefined ? {} : { retiredRetentionMs: options.retiredRetentionMs }),
  });
  return { dir, clock, store, sealer, audit, vpn, events };
}

/** Every VPN record and blob (keys and bytes), as one comparable string. */
export async function snapshot(store: Store): Promise<string> {
  const records = [NETWORKS_COLLECTION, PEERS_COLLECTION, PSKS_COLLECTION, RETIRED_COLLECTION].map((c) =>
    store.collection(c).list(),
  );
  const blobs: Array<[string, string]> = [];
  for (const key of await store.listBlobs(''))
    blobs.push([key, (await store.getBlob(key))!.toString('base64')]);
  return JSON.stringify({ records, blobs });
}

/** Every peer's rendered config, parsed. */
export async function allConfigs(vpn: VpnService, network: string): Promise<Map<string, ParsedConfig>> {
  const out = new Map<string, ParsedConfig>();
  for (const p of vpn.getNetwork(network).peers) {
    out.set(p.name, parseWgQuick((await vpn.exportConfig(network, p.name, WHO)).text));
  }
  return out;
}
