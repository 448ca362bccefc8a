import type { Command } from 'commander';
import type { InitResult } from '../../app/index.js';
import { isAppError } from '../../core/errors.js';
import { loadCliConfig } from '../config.js';
import type { CliIo, GlobalOptions } from '../context.js';
import { readKekSecrets } from '../secrets.js';
import { emit } from '../output.js';

/** The app layer loads fastify, lowdb and the PKI stack: only the commands that run in-process pay for it. */
const app = () => import('../../app/index.js');

/** Commands that run against the data directory itself: init, serve, keys rotate-kek. */
export function daemonCommands(program: Command, io: CliIo, globals: () => GlobalOptions): void {
  program
    .command('init')
    .description(
      'create the data dir, its master key, the default root and intermediate CA and an admin token (printed once)',
    )
    .action(async () => {
      const g = globals();
      const config = await loadCliConfig(g, io, []);
      const { initDataDir } = await app();
      const result = await initDataDir({ config, secrets: await readKekSecrets(config, io) });
      emit(io, g.json, result, () => initMessage(result));
    });

  program
    .command('serve')
    .description('run the daemon: API, scheduler, CRL/OCSP, http-01')
    .option('--listen <host:port>', 'API listener (default 127.0.0.1:8443)')
    .option('--http-listen <host:port>', 'plain-HTTP listener for CRL and OCSP')
    .option('--http01-listen <host:port>', 'ACME http-01 responder')
    .option('--init', 'initialize the data dir first if it is not (prints the admin token once)')
    .action(async (opts: { listen?: string; httpListen?: string; http01Listen?: string; init?: boolean }) => {
      const g = globals();
      const config = await loadCliConfig(g, io, [
        [['listen'], opts.listen],
        [['httpListen'], opts.httpListen],
        [['acme', 'http01', 'listen'], opts.http01Listen],
      ]);
      const secrets = await readKekSecrets(config, io);
      const { initDataDir, runDaemon } = await app();
      if (opts.init) {
        // First run: initialize (or finish a crashed init); an initialized data dir is simply served.
        const result = await initDataDir({ config, secrets }).catch((err: unknown) => {
          if (isAppError(err, 'DAEMON_ALREADY_INITIALIZED')) return undefined;
          throw err;
        });
        if (result) emit(io, g.json, result, () => initMessage(result));
      }
      await runDaemon({
        config,
        secrets,
        io,
        reloadConfig: () =>
          loadCliConfig(g, io, [
            [['listen'], opts.listen],
            [['httpListen'], opts.httpListen],
            [['acme', 'http01', 'listen'], opts.http01Listen],
          ]),
      });
    });

  const keys = program.command('keys').description('the master key (KEK)');
  keys
    .command('rotate-kek')
    .description(
      'make a new master key and re-wrap every sealed data key under it (offline: stop the daemon first)',
    )
    .action(async () => {
      const g = globals();
      const config = await loadCliConfig(g, io, []);
      const { rotateMasterKey } = await app();
      const result = await rotateMasterKey({
        config,
        secrets: await readKekSecrets(config, io, true),
      });
      emit(
        io,
        g.json,
        result,
        () =>
          `rotated the master key: ${result.previousKekId} → ${result.kekId}; ${result.rewrapped} sealed blobs re-wrapped`,
      );
    });
}

function initMessage(result: InitResult): string {
  return [
    `initialized ${result.dataDir} (master key: ${result.masterKeySource}, CA: ${result.caChain.join(' <- ')})`,
    `admin token: ${result.adminToken}`,
    'store the token now: it is shown only once. Then: KEYWRIGHT_TOKEN=<token> keywright status --data-dir ' +
      result.dataDir,
  ].join('\n');
}
