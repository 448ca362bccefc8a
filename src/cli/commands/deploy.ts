import type { Command } from 'commander';
import { connect, type CliIo, type GlobalOptions } from '../context.js';
import { emit, table } from '../output.js';

interface Deployment {
  certificate: string;
  currentVersion: number | null;
  targets: Array<{
    target: string;
    kind: string;
    lastDeliveredVersion: number | null;
    attempts: number;
    nextRetryAt: string | null;
    lastError: { code: string; message: string } | null;
  }>;
}

export function deployCommand(program: Command, io: CliIo, globals: () => GlobalOptions): void {
  const deploy = program.command('deploy').description('deploy targets: status and retry');
  deploy
    .command('status')
    .argument('[name]', 'one certificate')
    .description('what each target last delivered, its last error and next retry')
    .action(async (name?: string) => {
      const g = globals();
      const { deployments } = await (
        await connect(g, io)
      ).get<{ deployments: Deployment[] }>('/v1/deployments');
      const shown = name ? deployments.filter((d) => d.certificate === name) : deployments;
      emit(io, g.json, { deployments: shown }, () =>
        table(
          shown.flatMap((d) =>
            d.targets.map((t) => ({
              certificate: d.certificate,
              target: t.target,
              current: d.currentVersion,
              delivered: t.lastDeliveredVersion,
              attempts: t.attempts,
              nextRetry: t.nextRetryAt,
              error: t.lastError ? `${t.lastError.code}: ${t.lastError.message}` : null,
            })),
          ),
          ['certificate', 'target', 'current', 'delivered', 'attempts', 'nextRetry', 'error'],
        ),
      );
    });
  deploy
    .command('retry')
    .argument('<name>')
    .description("deploy the certificate's current version to its targets now")
    .action(async (name: string) => {
      const g = globals();
      const res = await (
        await connect(g, io)
      ).post<{ ok: boolean; reports: Array<{ target: string; outcome: string; detail: string }> }>(
        `/v1/deployments/${encodeURIComponent(name)}/retry`,
        {},
      );
      emit(
        io,
        g.json,
        res,
        () =>
          res.reports.map((r) => `${r.target}: ${r.outcome} ${r.detail}`).join('\n') || 'nothing to deploy',
      );
      if (!res.ok) process.exitCode = 10;
    });
}
