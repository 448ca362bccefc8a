import type { Command } from 'commander';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../../core/errors.js';
import type { BackupHeader } from '../../app/backup/format.js';
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
      const force = opts.force === true;
      // Loaded here, as restore's module is: the backup format (zlib …) is not every command's start-up.
      const { assertBackupTargetFree, saveBackup } = await import('../../app/backup/file.js');
      // Checked before asking: a refused write should not leave a backup.create entry behind.
      await assertBackupTargetFree(path, force);
      const client = await connect(g, io);
      // Streamed to a temp file and verified before it becomes FILE: a truncated or damaged transfer
      // never does, and a big store's backup is never held in memory.
      const { header, size } = await untilInterrupted((signal) =>
        saveBackup(path, async (s) => (await client.stream('/v1/backup', { signal: s })).body, {
          force,
          signal,
          name: 'the backup the daemon sent',
        }),
      );
      const result = { file: path, size, ...describeBackup(header), note: KEEP_KEK };
      emit(io, g.json, result, () =>
        [
          `wrote ${path} (${formatBytes(size)}): ${header.records} records, ${header.blobs} blobs (sealed keys, chains), ${header.files.length} files in all`,
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
      const { verifyBackupFile } = await import('../../app/backup/file.js');
      const { header, bytes } = await verifyBackupFile(path);
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

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

/**
 * Runs `work` so that Ctrl-C or SIGTERM aborts it (it cleans up: the partial file goes), then dies of
 * that signal as it would have without us, so the exit status is the same as before.
 */
async function untilInterrupted<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  let caught: NodeJS.Signals | undefined;
  const stop = (sig: NodeJS.Signals) => {
    caught ??= sig;
    abort.abort(
      new AppError('INTERNAL', `interrupted by ${sig}; the partial backup was removed, FILE is as it was`),
    );
  };
  for (const sig of STOP_SIGNALS) process.on(sig, stop);
  try {
    return await work(abort.signal);
  } catch (err) {
    if (caught === undefined) throw err;
    for (const sig of STOP_SIGNALS) process.off(sig, stop);
    process.kill(process.pid, caught);
    await sleep(2_000); // the signal kills us first; the error below is for a process that ignores it
    throw err;
  } finally {
    for (const sig of STOP_SIGNALS) process.off(sig, stop);
  }
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
