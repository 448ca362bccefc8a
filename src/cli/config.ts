import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { CliIo, GlobalOptions } from './context.js';

/** Config for commands that run in-process: --config/KEYWRIGHT_CONFIG, env, then flags (incl. --data-dir). */
export function loadCliConfig(
  g: GlobalOptions,
  io: CliIo,
  flags: ReadonlyArray<readonly [readonly string[], unknown]>,
): Promise<Config> {
  return loadConfig({
    file: g.config ?? io.env.KEYWRIGHT_CONFIG,
    env: io.env,
    overrides: [[['dataDir'], g.dataDir], ...flags],
  });
}
