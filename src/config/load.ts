import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { configSchema, type Config } from './schema.js';

/** Environment variables that override configuration keys (documented in config/keywright.example.yaml). */
export const ENV_OVERRIDES: Readonly<Record<string, readonly string[]>> = {
  KEYWRIGHT_DATA_DIR: ['dataDir'],
  KEYWRIGHT_LISTEN: ['listen'],
  KEYWRIGHT_HTTP_LISTEN: ['httpListen'],
  KEYWRIGHT_PUBLIC_URL: ['publicUrl'],
  KEYWRIGHT_LOG_LEVEL: ['log', 'level'],
  KEYWRIGHT_MASTER_KEY_SOURCE: ['masterKey', 'source'],
  KEYWRIGHT_HTTP01_LISTEN: ['acme', 'http01', 'listen'],
};

export interface LoadConfigOptions {
  /** A YAML file; none means defaults + env + overrides. */
  readonly file?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  /** Already-parsed CLI flags, as config paths → raw values; they win over the file and env. */
  readonly overrides?: ReadonlyArray<readonly [path: readonly string[], value: unknown]>;
}

/** Precedence: schema defaults < file < KEYWRIGHT_* env < CLI flags. Every bad field is reported at once. */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<Config> {
  const raw = options.file === undefined ? {} : await readYaml(options.file);
  const env = options.env ?? process.env;
  for (const [variable, path] of Object.entries(ENV_OVERRIDES)) {
    const value = env[variable];
    if (value !== undefined && value !== '') setPath(raw, path, value);
  }
  for (const [path, value] of options.overrides ?? []) {
    if (value !== undefined) setPath(raw, path, value);
  }
  const config = parseConfig(raw, options.file ?? 'defaults and environment');
  return { ...config, dataDir: resolve(config.dataDir) };
}

/** Validates raw input; throws CONFIG_INVALID listing every issue with its path. */
export function parseConfig(raw: unknown, source: string): Config {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  throw configIssuesError(result.error.issues.flatMap(describeIssue), source);
}

/** CONFIG_INVALID listing every issue with its path (the schema's, or checks that need more than it). */
export function configIssuesError(
  issues: ReadonlyArray<{ path: string; message: string }>,
  source?: string,
): ConfigError {
  return new ConfigError(
    'CONFIG_INVALID',
    `invalid configuration${source === undefined ? '' : ` (${source})`}:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`,
    { details: { ...(source === undefined ? {} : { source }), issues } },
  );
}

function describeIssue(issue: z.core.$ZodIssue): Array<{ path: string; message: string }> {
  const at = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      path: formatPath([...issue.path, key]),
      message: 'unknown key (check its spelling against config/keywright.example.yaml)',
    }));
  }
  return [{ path: at || '(root)', message: issue.message }];
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>(
    (acc, part) =>
      typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part),
    '',
  );
}

async function readYaml(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      'CONFIG_UNREADABLE',
      `cannot read configuration file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      {
        cause: err,
        details: { file },
      },
    );
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    throw new ConfigError(
      'CONFIG_UNREADABLE',
      `configuration file ${file} is not valid YAML: ${first.message.split('\n')[0]}`,
      {
        details: { file, line: first.linePos?.[0]?.line },
      },
    );
  }
  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(
      'CONFIG_INVALID',
      `configuration file ${file} must be a mapping of keys to values`,
      { details: { file } },
    );
  }
  return dropNulls(value) as Record<string, unknown>;
}

/** A key left empty in YAML (`http01:` with everything below commented out) means "use the default". */
function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, dropNulls(v)]),
  );
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}
