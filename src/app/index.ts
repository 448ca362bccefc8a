/** The composition root's public surface: what cli/ and main.ts call. */
export { initDataDir, isInitialized, type InitResult } from './init.js';
export { startDaemon, runDaemon, type RunningDaemon } from './daemon.js';
export { rotateMasterKey, type RotateResult } from './rotate.js';
export { VERSION } from './version.js';
export { verifyAuditLog as verifyAuditFile } from '../audit/index.js';
