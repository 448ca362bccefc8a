import type { Command } from 'commander';
import { resolve } from 'node:path';
import { AppError } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';
import { readTextFile, type CliIo, type GlobalOptions } from '../context.js';
import { emit } from '../output.js';

interface AgentFlags {
  server?: string;
  cert?: string;
  vpn?: string;
  privateKeyFile?: string;
  out: string;
  exec?: string[];
  execTimeout: string;
  once?: boolean;
  wait: string;
  clientCert?: string;
  clientKey?: string;
  renewClientCert?: boolean;
  sealed?: boolean;
  sealKey?: string;
}

/**
 * `keywright agent`: keeps one certificate's files, or one VPN peer's wg-quick config, current on this
 * machine (docs/distribution.md).
 */
export function agentCommand(program: Command, io: CliIo, globals: () => GlobalOptions): void {
  program
    .command('agent')
    .description(
      "pull a certificate's bundle into DIR (certbot's file names, key 0600) or a VPN peer's wg-quick config into FILE (0600), run a command when it changes, and watch for the next version",
    )
    .option('--cert <name>', 'the managed certificate to pull')
    .option('--vpn <net/peer>', "a VPN peer's wg-quick config to pull instead of a certificate")
    .requiredOption(
      '--out <path>',
      'with --cert, the directory for cert.pem, chain.pem, fullchain.pem, privkey.pem; with --vpn, the config file',
    )
    .option(
      '--private-key-file <file>',
      "with --vpn, a client-side-key peer's own private key (wg genkey), put into the config locally",
    )
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
    .option(
      '--renew-client-cert',
      'past 2/3 of its life, renew --client-cert through POST /v1/cas/CA/sign and rewrite both files',
    )
    .option('--sealed', 'ask for the bundle encrypted to a key pair held only in memory (format=sealed)')
    .option('--seal-key <file>', 'ask for format=sealed, encrypted to this X25519 or RSA private key (PEM)')
    .argument('[command...]', 'reload command after --, e.g. -- nginx -s reload')
    .action(async (command: string[], flags: AgentFlags) => {
      const g = globals();
      const vpn = await vpnTarget(flags);
      const options = await agentOptions(flags, command, g, io);
      const { runAgent, runVpnAgent } = await import('../../agent/index.js');
      const { createLogger } = await import('../../app/logger.js');
      const logger = createLogger(io.env.KEYWRIGHT_LOG_LEVEL ?? 'info');
      const abort = new AbortController();
      const stop = () => abort.abort();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      try {
        const deps = { logger, signal: abort.signal };
        const outcome =
          vpn === undefined
            ? await runAgent({ ...options, certificate: flags.cert ?? '', outDir: options.out }, deps)
            : await runVpnAgent({ ...options, ...vpn, outFile: options.out }, deps);
        if (flags.once && outcome !== undefined) {
          const reloaded = outcome.reloaded ? ', reloaded' : '';
          emit(io, g.json, outcome, () =>
            vpn !== undefined
              ? outcome.changed
                ? `${vpn.network}/${vpn.peer}: wrote the config to ${options.out}${reloaded}`
                : `${vpn.network}/${vpn.peer}: the config in ${options.out} is current${reloaded}`
              : outcome.changed
                ? `${outcome.certificate}: wrote version ${outcome.version} to ${options.out}${reloaded}`
                : `${outcome.certificate}: version ${outcome.version} is current in ${options.out}${reloaded}`,
          );
        }
      } finally {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        logger.flush();
      }
    });
}

/** --vpn NET/PEER with its key file, or undefined for the certificate mode; exactly one mode. */
async function vpnTarget(
  flags: AgentFlags,
): Promise<{ network: string; peer: string; privateKey: string | undefined } | undefined> {
  if ((flags.cert === undefined) === (flags.vpn === undefined)) {
    throw new AppError('INVALID_ARGUMENT', 'give either --cert NAME or --vpn NETWORK/PEER (one of them)');
  }
  if (flags.vpn === undefined) {
    if (flags.privateKeyFile !== undefined) {
      throw new AppError('INVALID_ARGUMENT', '--private-key-file goes with --vpn');
    }
    return undefined;
  }
  if (flags.sealed || flags.sealKey !== undefined) {
    throw new AppError(
      'INVALID_ARGUMENT',
      '--sealed and --seal-key are for --cert; a VPN config is sent as text',
    );
  }
  const m = /^([^/]+)\/([^/]+)$/.exec(flags.vpn);
  if (m === null) {
    throw new AppError('INVALID_ARGUMENT', `--vpn ${flags.vpn}: give NETWORK/PEER, e.g. office/alice`);
  }
  const { readWireguardKey } = await import('../../agent/index.js');
  const privateKey =
    flags.privateKeyFile === undefined
      ? undefined
      : await readWireguardKey(flags.privateKeyFile, '--private-key-file');
  return { network: m[1]!, peer: m[2]!, privateKey };
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
  if (g.tokenFile !== undefined) token = (await readTextFile(g.tokenFile, '--token-file')).trim();
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
  if (flags.renewClientCert && flags.clientCert === undefined) {
    throw new AppError('INVALID_ARGUMENT', '--renew-client-cert needs --client-cert and --client-key');
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
        ? sealKeyFromPem(await readTextFile(flags.sealKey, '--seal-key'), '--seal-key')
        : await ephemeralSealKey();
  }
  return {
    server,
    token,
    ca: caFile === undefined ? undefined : await readTextFile(caFile, '--ca-file'),
    clientCert:
      flags.clientCert === undefined ? undefined : await readTextFile(flags.clientCert, '--client-cert'),
    clientKey:
      flags.clientKey === undefined ? undefined : await readTextFile(flags.clientKey, '--client-key'),
    out: resolve(flags.out),
    exec,
    execTimeoutMs: parseDuration(flags.execTimeout, '--exec-timeout'),
    once: flags.once === true,
    waitSeconds: wait,
    renewClientCert:
      flags.renewClientCert && flags.clientCert !== undefined && flags.clientKey !== undefined
        ? {
            certFile: resolve(flags.clientCert),
            keyFile: resolve(flags.clientKey),
          }
        : undefined,
    sealKey,
  };
}
