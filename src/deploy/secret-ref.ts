/**
 * Secret references: `env:VARIABLE` or `file:/absolute/path`. Configuration holds the reference, never the
 * secret, so the config file, its parsed form and every log line stay safe to show. Resolved at use, so a
 * rotated secret applies without a restart.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { DeployError, type AppError } from '../core/errors.js';

export type SecretRef =
  { readonly kind: 'env'; readonly name: string } | { readonly kind: 'file'; readonly path: string };

export function parseSecretRef(text: string, field: string): SecretRef {
  const env = /^env:([A-Za-z_][A-Za-z0-9_]*)$/.exec(text);
  if (env) return { kind: 'env', name: env[1]! };
  if (text.startsWith('file:') && isAbsolute(text.slice(5))) return { kind: 'file', path: text.slice(5) };
  // the value may be the secret pasted inline: never echo it
  throw new DeployError(
    'DEPLOY_TARGET_INVALID',
    `${field}: use env:VARIABLE or file:/absolute/path, not the secret itself`,
    {
      details: { field },
    },
  );
}

export function describeSecretRef(ref: SecretRef): string {
  return ref.kind === 'env' ? `env:${ref.name}` : `file:${ref.path}`;
}

/** The error for a secret that is not set or empty, given the reference as describeSecretRef shows it. */
export type MissingSecret = (ref: string) => AppError;

const missingWebhookSecret: MissingSecret = (ref) =>
  new DeployError('DEPLOY_FAILED', `the webhook secret ${ref} is not set or empty`, {
    retryable: false,
    details: { secret: ref },
  });

/** The secret's bytes; `missing` (by default DEPLOY_FAILED, not retryable) when it is not set or empty. */
export async function resolveSecret(
  ref: SecretRef,
  env: NodeJS.ProcessEnv = process.env,
  missing: MissingSecret = missingWebhookSecret,
): Promise<Buffer> {
  let value: Buffer | undefined;
  if (ref.kind === 'env') {
    const v = env[ref.name];
    value = v === undefined ? undefined : Buffer.from(v, 'utf8');
  } else {
    value = await readFile(ref.path).catch(() => undefined);
    if (value) {
      // a trailing newline from `echo secret > file` is not part of the secret
      let end = value.length;
      while (end > 0 && (value[end - 1] === 0x0a || value[end - 1] === 0x0d)) end--;
      value = value.subarray(0, end);
    }
  }
  if (value === undefined || value.length === 0) throw missing(describeSecretRef(ref));
  return value;
}
