export * from './port.js';
export { acquireDataDirLock, LOCK_FILE, type DataDirLock } from './lock.js';
export type { ObservableStore, StoreStats, CommitBatch } from './staging.js';
