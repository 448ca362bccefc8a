/** The pull agent's public surface: what cli/ calls. */
export { runAgent, type AgentOptions } from './agent.js';
export { runPullLoop, type AgentDeps, type PullOutcome, type PullSource, type LoopOptions } from './loop.js';
export { runVpnAgent, readWireguardKey, completeConfig, type VpnAgentOptions } from './vpn.js';
export { BUNDLE_FILES, STATE_FILE } from './files.js';
export { ephemeralSealKey, sealKeyFromPem, unsealBundle, type SealKey } from './unseal.js';
export { DEFAULT_BACKOFF, backoffDelay, type BackoffPolicy } from './backoff.js';
export { renewalDue, type ClientCertRenewal } from './client-cert.js';
