import { StoreError } from '../../core/errors.js';

/**
 * Schema migrations of the store document. Each has the next version number and changes the parsed
 * document in place; the runner sets `schemaVersion` after each one. All pending migrations run in
 * memory at open and are written in one durable write, so a crash mid-way leaves the old file intact.
 * Never edit a shipped migration: add the next one.
 */

/** The document as migrations see it: parsed JSON whose shape may be an older one. */
export interface MigratableDocument {
  schemaVersion: number;
  [field: string]: unknown;
}

export interface Migration {
  readonly version: number;
  readonly name: string;
  up(doc: MigratableDocument): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'create the empty layout',
    up(doc) {
      doc.collections ??= {};
    },
  },
];

export const LATEST_SCHEMA_VERSION = latestVersion(MIGRATIONS);

export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.at(-1)?.version ?? 0;
}

/**
 * Brings `doc` up to the newest version `migrations` know. Returns how many ran. Throws STORE_MIGRATION
 * if the document is newer than the code or a migration fails (the file on disk is untouched then).
 */
export function migrate(doc: MigratableDocument, migrations: readonly Migration[], file: string): number {
  assertNumbered(migrations);
  const latest = latestVersion(migrations);
  if (doc.schemaVersion > latest) {
    throw new StoreError(
      'STORE_MIGRATION',
      `${file} has schema version ${doc.schemaVersion}, written by a newer keywright (this one knows up to ${latest}); run that version or restore a backup made by this one`,
      { details: { file, schemaVersion: doc.schemaVersion, supported: latest } },
    );
  }
  let ran = 0;
  for (const migration of migrations) {
    if (migration.version <= doc.schemaVersion) continue;
    try {
      migration.up(doc);
    } catch (cause) {
      throw new StoreError(
        'STORE_MIGRATION',
        `migration ${migration.version} (${migration.name}) of ${file} failed; the file was left unchanged`,
        { cause, details: { file, version: migration.version } },
      );
    }
    doc.schemaVersion = migration.version;
    ran++;
  }
  return ran;
}

function assertNumbered(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new StoreError(
        'STORE_MIGRATION',
        `migration "${m.name}" has version ${m.version}, expected ${i + 1}`,
        {
          details: { version: m.version },
        },
      );
    }
  });
}
