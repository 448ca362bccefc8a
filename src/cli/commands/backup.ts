import type { Command } from 'commander';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AppError } from '../../core/errors.js';
import { pathExists, writeFileDurable } from '../../core/fs-durable.js';
import { decodeBackup, type BackupHeader } from '../../app/backup/format.js';
import { loadCliConfig } from '../config.js';
import { connect, type CliIo, type GlobalOptions } from '../context.js';
import { emit } from '../output.js';

const KEEP_KEK =
  'the backup holds no master key: keep your master key (master.key, the KEK variable or the passphrase) separately; without it the backup opens nothing';

/** What a backup holds, as `--json` prints it (create and restore alike). */
function describeBackup(header: BackupHeader) {
  return {
    createdAt: header.createdAt,
    keywright: header.keywright,
    storeSchemaVersion: header.storeSchemaVersion,
    records: header.records,
    blobs: header.blobs,
    files: header.files.length,
    audit: header.audit,
    kek: header.kek,
  };
}

/** `keywright backup create FILE` (online, admin token), `backup verify FILE` and `backup restore FILE` (offline). */
export function backupCommand(program: Command, io: CliIo, globals: () => GlobalOptions): void {
  const backup = program.command('backup').description('back up and restore the data directory');

  backup
    .command('create')
    .description(
      'ask the running daemon for a consistent backup (admin token) and write it to FILE (0600); it never holds the master key',
    )
    .argument('<file>', 'where to write the backup')
    .option('--force', 'overwrite FILE if it exists')
    .action(async (file: string, opts: { force?: boolean }) => {
      const g = globals();
      const path = resolve(file);
      // Checked before asking: a refused write should not leave a backup.create entry behind.
      if (opts.force !== true && (await pathExists(path))) throw targetExists(path);
      const client = await connect(g, io);
      const res = await client.send<Buffer>('GET', '/v1/backup', undefined, {}, true);
      const bytes = res.body;
      // Verified before it is written: a truncated or damaged transfer never becomes FILE.
      const { header } = await decodeBackup('the backup the daemon sent', once(bytes));
      if (opts.force !== true && (await pathExists(path))) throw targetExists(path);
      await writeFileDurable(path, bytes, 0o600);
      const result = { file: path, size: bytes.length, ...describeBackup(header), note: KEEP_KEK };
      emit(io, g.json, result, () =>
        [
          `wrote ${path} (${formatBytes(bytes.length)}): ${header.records} records, ${header.blobs} blobs (sealed keys, chains), ${header.files.length} files in all`,
          `audit log up to seq ${header.audit.seq} (head ${header.audit.hash.slice(0, 16)}…, the backup.create entry); store schema ${header.storeSchemaVersion}; KEK ${header.kek.source} ${header.kek.id}`,
          `${KEEP_KEK}.`,
        ].join('\n'),
      );
    });

  backup
    .command('verify')
    .description(
      'check FILE is a whole, untouched backup (every digest) and say what it holds; offline, writes nothing',
    )
    .argument('<file>', 'the backup file')
    .action(async (file: string) => {
      const g = globals();
      const path = resolve(file);
      let stream;
      try {
        await stat(path);
        stream = createReadStream(path);
      } catch (err) {
        throw new AppError(
          'INVALID_ARGUMENT',
          `${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
          {
            cause: err,
            details: { field: 'file' },
          },
        );
      }
      const { header, bytes } = await decodeBackup(path, stream);
      const result = {
        file: path,
        ok: true,
        uncompressedBytes: bytes,
        ...describeBackup(header),
        note: KEEP_KEK,
      };
      emit(io, g.json, result, () =>
        [
          `${path}: a whole keywright backup of ${header.createdAt} (keywright ${header.keywright}, store schema ${header.storeSchemaVersion})`,
          `${header.records} records, ${header.blobs} blobs, ${header.files.length} files; every digest matches`,
          `audit log up to seq ${header.audit.seq} (head ${header.audit.hash.slice(0, 16)}…); opens with KEK ${header.kek.source} ${header.kek.id}`,
        ].join('\n'),
      );
    });

  backup
    .command('restore')
    .description(
      'restore FILE into --data-dir (offline: stop the daemon first); a non-empty data dir needs --force and is kept aside',
    )
    .argument('<file>', 'the backup file')
    .option('--force', 'restore over a non-empty data dir (kept as <dir>.replaced-<time>, never deleted)')
    .action(async (file: string, opts: { force?: boolean }) => {
      const g = globals();
      const config = await loadCliConfig(g, io, []);
      const { restoreBackup } = await import('../../app/backup/restore.js');
      const result = await restoreBackup({
        file: resolve(file),
        dataDir: config.dataDir,
        ...(opts.force === true ? { force: true } : {}),
      });
      const next = nextStep(result.backup.kek.source, result.dataDir);
      const out = {
        dataDir: result.dataDir,
        replaced: result.replaced,
        backup: describeBackup(result.backup),
        audit: result.audit,
        next,
      };
      emit(io, g.json, out, () =>
        [
          `restored ${result.backup.records} records, ${result.backup.files.length} files from the backup of ${result.backup.createdAt} into ${result.dataDir}`,
          ...(result.replaced === null ? [] : [`the previous data dir is kept at ${result.replaced}`]),
          `audit chain verified; backup.restore recorded at seq ${result.audit.seq}`,
          `next: ${next}`,
        ].join('\n'),
      );
    });
}

/** What the operator must supply before `serve`: the backup has everything but the KEK. */
function nextStep(source: string, dataDir: string): string {
  switch (source) {
    case 'file':
      return `copy the master key you kept into ${dataDir}/master.key (mode 0600), then keywright serve --data-dir ${dataDir}`;
    case 'env':
      return `set the master key variable as before, then keywright serve --data-dir ${dataDir}`;
    default:
      return `provide the passphrase as before (KEYWRIGHT_PASSPHRASE or masterKey.passphraseFile), then keywright serve --data-dir ${dataDir}`;
  }
}

function targetExists(path: string): AppError {
  return new AppError('BACKUP_TARGET_EXISTS', `${path} exists; choose another file or pass --force`, {
    details: { file: path },
  });
}

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
