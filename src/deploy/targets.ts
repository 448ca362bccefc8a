/**
 * Builds targets from a certificate's `deploy:` list (config or API). Every problem is a
 * DEPLOY_TARGET_INVALID naming its field, e.g. `certificates[0].deploy[1].file.dir`, so a bad
 * target is refused when the certificate is declared, not discovered at the first renewal.
 */
import type { DeployTargetConfig } from '../config/schema.js';
import { DeployError } from '../core/errors.js';
import { ExecTarget } from './exec-target.js';
import { FileTarget } from './file-target.js';
import type { DeployTarget } from './port.js';
import { VerifyTarget } from './verify-target.js';
import { WebhookTarget } from './webhook-target.js';

export interface TargetFactoryOptions {
  /** deploy.allowedDirs. */
  readonly allowedDirs: readonly string[];
  /** Field path of the list, for messages: `certificates[0].deploy`. */
  readonly field?: string;
  /** Environment for `env:` webhook secrets and the hooks' PATH/HOME (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
}

export function createTargets(
  configs: readonly DeployTargetConfig[],
  options: TargetFactoryOptions,
): DeployTarget[] {
  const base = options.field ?? 'deploy';
  return configs.map((config, i) => createTarget(config, { ...options, field: `${base}[${i}]` }));
}

export function createTarget(
  config: DeployTargetConfig,
  options: TargetFactoryOptions & { field: string },
): DeployTarget {
  const { field } = options;
  if ('file' in config) {
    const c = config.file;
    return new FileTarget({
      dir: c.dir,
      allowedDirs: options.allowedDirs,
      names: c.names,
      includeKey: c.includeKey,
      mode: c.mode,
      keyMode: c.keyMode,
      ...(c.owner !== undefined ? { owner: c.owner } : {}),
      ...(c.group !== undefined ? { group: c.group } : {}),
      rollback: c.rollback,
      field: `${field}.file`,
    });
  }
  if ('exec' in config) {
    const c = config.exec;
    return new ExecTarget({
      command: c.command,
      timeoutMs: c.timeout,
      env: c.env,
      ...(c.cwd !== undefined ? { cwd: c.cwd } : {}),
      field: `${field}.exec`,
      ...(options.env ? { baseEnv: options.env } : {}),
    });
  }
  if ('webhook' in config) {
    const c = config.webhook;
    return new WebhookTarget({
      url: c.url,
      ...(c.secret !== undefined ? { secret: c.secret } : {}),
      timeoutMs: c.timeout,
      ...(c.caFile !== undefined ? { caFile: c.caFile } : {}),
      field: `${field}.webhook`,
      ...(options.env ? { env: options.env } : {}),
    });
  }
  if ('verify' in config) {
    const c = config.verify;
    return new VerifyTarget({
      host: c.connect.host,
      port: c.connect.port,
      ...(c.servername !== undefined ? { servername: c.servername } : {}),
      timeoutMs: c.timeout,
    });
  }
  const kind = Object.keys(config)[0] ?? 'nothing';
  throw new DeployError(
    'DEPLOY_TARGET_INVALID',
    `${field}: unknown target kind "${kind}"; use file, exec, webhook or verify`,
    {
      details: { field, value: kind },
    },
  );
}
