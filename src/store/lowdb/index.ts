export { openLowdbStore, DOCUMENT_FILE, BLOB_DIR, type LowdbStoreOptions } from './open.js';
export { MIGRATIONS, LATEST_SCHEMA_VERSION, type Migration, type MigratableDocument } from './migrations.js';
export type { DurableWriter } from './document-file.js';
