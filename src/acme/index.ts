export {
  AcmeService,
  type AcmeServiceOptions,
  type AccountReconcileReport,
  type DeclaredAccountStatus,
} from './service.js';
export {
  checkDeclaredAccounts,
  planDeclaredAccounts,
  type AccountDecision,
  type DesiredAccount,
} from './declared.js';
export {
  AcmeAccounts,
  ACME_ACCOUNTS_COLLECTION,
  jwkThumbprint,
  type AcmeAccountRecord,
  type RegisterAccountInput,
} from './accounts.js';
export {
  AcmeIssuer,
  ACME_RENEWAL_INFO_COLLECTION,
  accountOfRef,
  isAcmeRef,
  type RenewalInfoRecord,
} from './issuer.js';
export { DIRECTORY_ALIASES, resolveDirectoryUrl } from './directory.js';
export { ariCertId, pickRenewalTime, parseRenewalInfo, clampRetryAfter } from './ari.js';
export { DEFAULT_CLIENT_SETTINGS, type ClientSettings } from './client.js';
export type { ChallengeSolver, ChallengeTask, ChallengeType } from './solvers/port.js';
