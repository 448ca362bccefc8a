/** The pull agent's public surface: what cli/ calls. */
export { runAgent, type AgentOptions, type AgentDeps, type PullOutcome } from './agent.js';
export { BUNDLE_FILES, STATE_FILE } from './files.js';
export { ephemeralSealKey, sealKeyFromPem, unsealBundle, type SealKey } from './unseal.js';
export { DEFAULT_BACKOFF, backoffDelay, type BackoffPolicy } from './backoff.js';
