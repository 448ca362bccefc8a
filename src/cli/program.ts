import { Command, CommanderError } from 'commander';
import type { CliIo, GlobalOptions } from './context.js';
import { reportError } from './output.js';
import { tokenCommand } from './commands/token.js';
import { statusCommand } from './commands/status.js';
import { auditCommand } from './commands/audit.js';
import { certCommand } from './commands/cert.js';
import { deployCommand } from './commands/deploy.js';
import { caCommand } from './commands/ca.js';
import { vpnCommand } from './commands/vpn.js';
import { agentCommand } from './commands/agent.js';
import { acmeCommand } from './commands/acme.js';
import { daemonCommands } from './commands/daemon.js';
import { backupCommand } from './commands/backup.js';

export { VERSION } from '../app/version.js';
import { VERSION } from '../app/version.js';

export function buildProgram(io: CliIo): Command {
  const program = new Command('keywright')
    .description('keywright: internal CA, ACME client, sealed keys, renewal, deploy and distribution')
    .version(VERSION)
    .option('--url <url>', 'daemon URL (env KEYWRIGHT_URL; default: from --data-dir)')
    .option(
      '--token <token>',
      'API token (prefer env KEYWRIGHT_TOKEN or --token-file: argv is visible to other users)',
    )
    .option('--token-file <file>', 'read the API token from a file')
    .option(
      '--ca-file <file>',
      "PEM trust for the daemon's HTTPS (env KEYWRIGHT_CA_FILE; default: <data-dir>/ca.pem)",
    )
    .option('--data-dir <dir>', 'data directory (env KEYWRIGHT_DATA_DIR)')
    .option('--config <file>', 'YAML configuration (env KEYWRIGHT_CONFIG)')
    .option('--json', 'stable JSON output for scripts')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  const globals = () => program.opts<GlobalOptions>();
  daemonCommands(program, io, globals);
  statusCommand(program, io, globals);
  tokenCommand(program, io, globals);
  auditCommand(program, io, globals);
  caCommand(program, io, globals);
  certCommand(program, io, globals);
  deployCommand(program, io, globals);
  vpnCommand(program, io, globals);
  agentCommand(program, io, globals);
  acmeCommand(program, io, globals);
  backupCommand(program, io, globals);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

/** Runs the CLI and returns the exit code; errors are printed once, with their stable code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0)
        return 0;
      return 2; // usage errors: commander already printed what was wrong
    }
    return reportError(io, program.opts<GlobalOptions>().json, err);
  }
}
