import type { Command } from 'commander';
import { connect, type CliIo, type GlobalOptions } from '../context.js';
import { emit } from '../output.js';

export function statusCommand(program: Command, io: CliIo, globals: () => GlobalOptions): void {
  program
    .command('status')
    .description("the daemon's status: version, uptime, sealed or not")
    .action(async () => {
      const g = globals();
      const status = await (await connect(g, io)).get<Record<string, unknown>>('/v1/status');
      emit(io, g.json, status, () =>
        Object.entries(status)
          .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join('\n'),
      );
    });
}
