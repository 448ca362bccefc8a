import type { BackupHeader } from '../../src/app/backup/format.js';

/** A backup header for tests that build backups by hand: fixed times and ids, the files given. */
export function backupHeader(files: readonly string[], counts: Partial<BackupHeader> = {}): BackupHeader {
  return {
    format: 'keywright-backup',
    version: 1,
    createdAt: '2025-01-31T12:00:00.000Z',
    keywright: '0.1.0',
    storeSchemaVersion: 1,
    records: 0,
    blobs: 0,
    audit: { seq: 7, hash: 'a'.repeat(64) },
    kek: { source: 'file', id: '0011223344556677' },
    files,
    ...counts,
  };
}
