import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AppError } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';
import type { CliIo, GlobalOptions } from '../context.js';
import { emit } from '../output.js';

interface AgentFlags {
  server?: string;
  cert: string;
  out: string;
  exec?: string[];
  execTimeout: string;
  once?: boolean;
  wait: string;
  clientCert?: string;
  clientKey?: string;
  sealed?: boolean;
  sealKey?: string;
}

/** `keywright agent`: keeps one certificate's files current on this machine (docs/distribution.md). */
export function agentCommand(program: Command, io: CliIo, globals: () => GlobalOptions): void {
  program
    .command('agent')
    .description(
      "pull a certificate's bundle into DIR (certbot's file names, key 0600), run a reload command when it changes, and watch for the next version",
    )
    .requiredOption('--cert <name>', 'the managed certificate to pull')
    .requiredOption('--out <dir>', 'where to write cert.pem, chain.pem, fullchain.pem and privkey.pem')
    .option('--server <url>', 'daemon URL (default: --url or KEYWRIGHT_URL)')
    .option(
      '--exec <argv...>',
      'reload command, run without a shell when the files changed (or give it after --)',
    )
    .option('--exec-timeout <duration>', 'kill the reload command after this long', '60s')
    .option('--once', 'pull once and exit 0 if the files were written or are current (cron, init containers)')
    .option('--wait <seconds>', 'long-poll length while watching (1-300)', '240')
    .option(
      '--client-cert <file>',
      'authenticate with this client certificate (PEM chain) from the internal CA',
    )
    .option('--client-key <file>', 'the key of --client-cert (PEM)')
    .option('--sealed', 'ask for the bundle encrypted to a key pair held only in memory (format=sealed)')
    .option('--seal-key <file>', 'ask for format=sealed, encrypted to this X25519 or RSA private key (PEM)')
    .argument('[command...]', 'reload command after --, e.g. -- nginx -s reload')
    .action(async (command: string[], flags: AgentFlags) => {
      const g = globals();
      const options = await agentOptions(flags, command, g, io);
      const { runAgent } = await import('../../agent/index.js');
      const { createLogger } = await import('../../app/logger.js');
      const logger = createLogger(io.env.KEYWRIGHT_LOG_LEVEL ?? 'info');
      const abort = new AbortController();
      const stop = () => abort.abort();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      try {
        const outcome = await runAgent(options, { logger, signal: abort.signal });
        if (flags.once && outcome !== undefined) {
          emit(io, g.json, outcome, () =>
            outcome.changed
              ? `${outcome.certificate}: wrote version ${outcome.version} to ${options.outDir}${outcome.reloaded ? ', reloaded' : ''}`
              : `${outcome.certificate}: version ${outcome.version} is current in ${options.outDir}${outcome.reloaded ? ', reloaded' : ''}`,
          );
        }
      } finally {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        logger.flush();
      }
    });
}

async function agentOptions(flags: AgentFlags, command: string[], g: GlobalOptions, io: CliIo) {
  const server = flags.server ?? g.url ?? io.env.KEYWRIGHT_URL;
  if (server === undefined) {
    throw new AppError(
      'INVALID_ARGUMENT',
      'where is the daemon? give --server https://HOST:PORT (or KEYWRIGHT_URL)',
    );
  }
  let token = g.token ?? io.env.KEYWRIGHT_TOKEN;
  if (g.tokenFile !== undefined) token = (await readText(g.tokenFile, '--token-file')).trim();
  const caFile = g.caFile ?? io.env.KEYWRIGHT_CA_FILE;
  if ((flags.clientCert === undefined) !== (flags.clientKey === undefined)) {
    throw new AppError('INVALID_ARGUMENT', '--client-cert and --client-key go together');
  }
  if (token === undefined && flags.clientCert === undefined) {
    throw new AppError(
      'AUTH_REQUIRED',
      'the agent needs a token (--token-file F, KEYWRIGHT_TOKEN) or a client certificate (--client-cert, --client-key)',
    );
  }
  const wait = Number(flags.wait);
  if (!Number.isInteger(wait) || wait < 1 || wait > 300) {
    throw new AppError('INVALID_ARGUMENT', `--wait ${flags.wait}: give whole seconds from 1 to 300`);
  }
  const exec = [...(flags.exec ?? []), ...command];
  if (flags.exec !== undefined && command.length > 0) {
    throw new AppError('INVALID_ARGUMENT', 'give the reload command once: either --exec … or after --');
  }
  let sealKey;
  if (flags.sealKey !== undefined || flags.sealed) {
    const { ephemeralSealKey, sealKeyFromPem } = await import('../../agent/index.js');
    sealKey =
      flags.sealKey !== undefined
        ? sealKeyFromPem(await readText(flags.sealKey, '--seal-key'), '--seal-key')
        : ephemeralSealKey();
  }
  return {
    server,
    token,
    ca: caFile === undefined ? undefined : await readText(caFile, '--ca-file'),
    clientCert:
      flags.clientCert === undefined ? undefined : await readText(flags.clientCert, '--client-cert'),
    clientKey: flags.clientKey === undefined ? undefined : await readText(flags.clientKey, '--client-key'),
    certificate: flags.cert,
    outDir: resolve(flags.out),
    exec,
    execTimeoutMs: parseDuration(flags.execTimeout, '--exec-timeout'),
    once: flags.once === true,
    waitSeconds: wait,
    sealKey,
  };
}

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new AppError(
      'INVALID_ARGUMENT',
      `${flag} ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err },
    );
  }
}
