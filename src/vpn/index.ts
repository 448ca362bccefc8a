export type {
  AddPeerInput,
  CreateNetworkInput,
  RenderedConfig,
  RotateInput,
  RotateWhat,
  RotationResult,
  VpnActor,
  VpnEvent,
  VpnNetworkDetail,
  VpnNetworkView,
  VpnPeerView,
  VpnServiceOptions,
} from './service.js';
export { DEFAULT_RETIRED_RETENTION_MS, ROTATE_WHAT, VpnService } from './service.js';
export type { KeySource, PeerRole, Topology } from './model.js';
export { PEER_ROLES, TOPOLOGIES } from './model.js';
export type { ConfigPlan, PlannedPeer } from './plan.js';
export { configEtag, etagMatches } from './plan.js';
export type { ParsedConfig, ParsedInterface, ParsedPeer } from './wg-quick.js';
export { CLIENT_KEY_PLACEHOLDER, parseWgQuick, renderWgQuick } from './wg-quick.js';
