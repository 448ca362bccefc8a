export type {
  AuditDetails,
  AuditDetailValue,
  AuditEntry,
  AuditHead,
  AuditInput,
  AuditOutcome,
} from './entry.js';
export { AUDIT_OUTCOMES, GENESIS_HASH, canonicalJson, entryHash, isSecretDetailKey } from './entry.js';
export type { AuditAppendHandle, AuditFileIo } from './io.js';
export { nodeAuditIo } from './io.js';
export type { AuditLogOptions, AuditQuery, AuditRecorder, AuditStats } from './audit-log.js';
export { AuditLog, MAX_AUDIT_QUERY_LIMIT } from './audit-log.js';
export type { AuditProblem, AuditVerifyFailure, AuditVerifyResult } from './verify.js';
export { verifyAuditLog } from './verify.js';
