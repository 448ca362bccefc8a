/** Deploy targets: the port, the file/exec/webhook/verify targets, the factory and the staged runner. */
export { makeArtifact, pemFingerprint, SecretPem, sha256Hex } from './port.js';
export type {
  ArtifactInput,
  DeployArtifact,
  DeployContext,
  DeployedFiles,
  DeployResult,
  DeployTarget,
  DeployTargetKind,
  Undo,
  VerifyResult,
} from './port.js';
export { CERTBOT_NAMES, FileTarget, type FileNames, type FileTargetOptions } from './file-target.js';
export { ExecTarget, hookEnvironment, type ExecTargetOptions } from './exec-target.js';
export {
  SIGNATURE_HEADER,
  signBody,
  WebhookTarget,
  type WebhookPayload,
  type WebhookTargetOptions,
} from './webhook-target.js';
export { VerifyTarget, type VerifyTargetOptions } from './verify-target.js';
export { createTarget, createTargets, type TargetFactoryOptions } from './targets.js';
export {
  defaultRetryDelayMs,
  deployAll,
  orderTargets,
  type DeployAllOptions,
  type DeployRun,
  type DeployRunContext,
  type TargetOutcome,
  type TargetReport,
  type TargetState,
} from './run.js';
