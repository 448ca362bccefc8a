import type { Command } from 'commander';
import { resolve } from 'node:path';
import { AppError } from '../../core/errors.js';
import { connect, type CliIo, type GlobalOptions } from '../context.js';
import { emit, table } from '../output.js';

export function auditCommand(program: Command, io: CliIo, globals: () => GlobalOptions): void {
  const audit = program.command('audit').description('the tamper-evident audit log');

  audit
    .command('verify')
    .description(
      'check the hash chain of <data-dir>/audit.log; exits non-zero at the first broken, missing or reordered entry',
    )
    .option('--file <path>', 'an audit log file (default: <data-dir>/audit.log)')
    .action(async (opts: { file?: string }) => {
      const g = globals();
      const dataDir = g.dataDir ?? io.env.KEYWRIGHT_DATA_DIR ?? './data';
      const file = opts.file ?? resolve(dataDir, 'audit.log');
      const { verifyAuditFile } = await import('../../app/index.js');
      const result = await verifyAuditFile(file);
      if (!result.ok) {
        throw new AppError('AUDIT_INTEGRITY', `${file}: line ${result.line}: ${result.message}`, {
          details: {
            file,
            line: result.line,
            problem: result.problem,
            ...(result.seq !== null ? { seq: result.seq } : {}),
          },
        });
      }
      emit(
        io,
        g.json,
        { ok: true, file, entries: result.entries, head: result.head },
        () => `${file}: ${result.entries} entries, chain intact (head ${result.head.hash.slice(0, 16)}…)`,
      );
    });

  audit
    .command('tail')
    .description('the latest audit entries, from the daemon')
    .option('-n, --lines <n>', 'how many', '20')
    .option('--action <action>', 'only this action, e.g. token.create')
    .action(async (opts: { lines: string; action?: string }) => {
      const g = globals();
      const q = new URLSearchParams({ limit: opts.lines, ...(opts.action ? { action: opts.action } : {}) });
      const { entries } = await (
        await connect(g, io)
      ).get<{ entries: Array<Record<string, unknown>> }>(`/v1/audit?${q.toString()}`);
      emit(io, g.json, { entries }, () =>
        table(entries, ['seq', 'time', 'actor', 'action', 'subject', 'outcome']),
      );
    });
}
