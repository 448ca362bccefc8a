import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyError } from '../../core/errors.js';
import { writeFileDurable } from '../../core/fs-durable.js';
import { KEK_ID_PATTERN } from './key-ring.js';

/** Where the KEK comes from (config `masterKey.source`). */
export type KekSourceName = 'file' | 'env' | 'passphrase';
const SOURCES: readonly KekSourceName[] = ['file', 'env', 'passphrase'];

/** scrypt cost (RFC 7914 §2): N CPU/memory cost, r block size, p parallelism. */
export interface ScryptCost {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** The cost and the base64 16-byte salt a passphrase KEK was derived with. Not secret. */
export interface ScryptParams extends ScryptCost {
  readonly salt: string;
}

/**
 * How far a KEK rotation got (docs/storage.md "KEK rotation"):
 * - `prepared`: recorded; the new KEK may not be durable yet, so no blob is under it.
 * - `rewrapping`: both KEKs are durable; blobs may be under either.
 * - `retiring`: every blob is under the new KEK; the old one is being removed.
 */
export type RotationStage = 'prepared' | 'rewrapping' | 'retiring';
const STAGES: readonly RotationStage[] = ['prepared', 'rewrapping', 'retiring'];

export interface KekRotation {
  readonly from: string;
  readonly to: string;
  readonly stage: RotationStage;
  /** passphrase source: the salt and cost of the new passphrase. */
  readonly scrypt?: ScryptParams;
}

/** `<dataDir>/kek.json`: which KEK opens this data directory. Holds ids and salts, never a secret. */
export interface KekState {
  readonly v: 1;
  readonly source: KekSourceName;
  /** Id of the KEK the store's blobs are under (the old one while a rotation is in progress). */
  readonly primary: string;
  readonly scrypt?: ScryptParams;
  readonly rotation?: KekRotation;
}

export const KEK_STATE_FILE = 'kek.json';
export const MASTER_KEY_FILE = 'master.key';
export const NEXT_MASTER_KEY_FILE = 'master.key.next';

export function kekStatePath(dataDir: string): string {
  return join(dataDir, KEK_STATE_FILE);
}

/** The data directory's KEK state, or undefined when it has none (not initialized). */
export async function readKekState(dataDir: string): Promise<KekState | undefined> {
  return (await readKekStateFile(dataDir))?.state;
}

/** The state and the very bytes it was parsed from (a backup copies those, so both agree). */
export async function readKekStateFile(
  dataDir: string,
): Promise<{ readonly state: KekState; readonly bytes: Buffer } | undefined> {
  const path = kekStatePath(dataDir);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyError('KEK_INVALID', `${path} could not be read`, { cause: err, details: { file: path } });
  }
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new KeyError('KEK_INVALID', `${path} is not valid JSON; restore it from a backup`, {
      cause: err,
      details: { file: path },
    });
  }
  return { state: parseKekState(value, path), bytes };
}

export async function writeKekState(dataDir: string, state: KekState): Promise<void> {
  await writeFileDurable(kekStatePath(dataDir), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}

function parseKekState(value: unknown, path: string): KekState {
  const bad = (field: string, what: string): KeyError =>
    new KeyError('KEK_INVALID', `${path}: ${field} ${what}; restore the file from a backup`, {
      details: { file: path, field },
    });
  const obj = record(value, '(root)', bad);
  if (obj.v !== 1) throw bad('v', `is ${JSON.stringify(obj.v) ?? 'missing'}, this keywright reads 1`);
  const source = obj.source as KekSourceName;
  if (!SOURCES.includes(source)) throw bad('source', `must be one of ${SOURCES.join(', ')}`);
  const primary = kekId(obj.primary, 'primary', bad);
  const scrypt = obj.scrypt === undefined ? undefined : scryptParams(obj.scrypt, 'scrypt', bad);
  if ((source === 'passphrase') !== (scrypt !== undefined)) {
    throw bad('scrypt', source === 'passphrase' ? 'is missing' : 'is only for the passphrase source');
  }
  let rotation: KekRotation | undefined;
  if (obj.rotation !== undefined) {
    const r = record(obj.rotation, 'rotation', bad);
    const stage = r.stage as RotationStage;
    if (!STAGES.includes(stage)) throw bad('rotation.stage', `must be one of ${STAGES.join(', ')}`);
    const rotScrypt = r.scrypt === undefined ? undefined : scryptParams(r.scrypt, 'rotation.scrypt', bad);
    if ((source === 'passphrase') !== (rotScrypt !== undefined)) {
      throw bad(
        'rotation.scrypt',
        source === 'passphrase' ? 'is missing' : 'is only for the passphrase source',
      );
    }
    const from = kekId(r.from, 'rotation.from', bad);
    if (from !== primary) throw bad('rotation.from', 'differs from primary');
    rotation = {
      from,
      to: kekId(r.to, 'rotation.to', bad),
      stage,
      ...(rotScrypt === undefined ? {} : { scrypt: rotScrypt }),
    };
  }
  return {
    v: 1,
    source,
    primary,
    ...(scrypt === undefined ? {} : { scrypt }),
    ...(rotation === undefined ? {} : { rotation }),
  };
}

type Bad = (field: string, what: string) => KeyError;

function record(value: unknown, field: string, bad: Bad): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad(field, 'is not an object');
  return value as Record<string, unknown>;
}

function kekId(value: unknown, field: string, bad: Bad): string {
  if (typeof value !== 'string' || !KEK_ID_PATTERN.test(value))
    throw bad(field, 'is not a 16-hex-digit KEK id');
  return value;
}

/** Bounds keep a damaged kek.json from asking for gigabytes; a changed cost only yields a wrong KEK. */
export function checkScryptCost(cost: ScryptCost, field: string, bad: Bad): void {
  const { N, r, p } = cost;
  if (!Number.isInteger(N) || N < 2 ** 10 || N > 2 ** 20 || (N & (N - 1)) !== 0) {
    throw bad(`${field}.N`, 'must be a power of two from 2^10 to 2^20');
  }
  if (!Number.isInteger(r) || r < 1 || r > 32) throw bad(`${field}.r`, 'must be an integer from 1 to 32');
  if (!Number.isInteger(p) || p < 1 || p > 16) throw bad(`${field}.p`, 'must be an integer from 1 to 16');
}

function scryptParams(value: unknown, field: string, bad: Bad): ScryptParams {
  const obj = record(value, field, bad);
  const cost = { N: obj.N as number, r: obj.r as number, p: obj.p as number };
  checkScryptCost(cost, field, bad);
  const salt = obj.salt;
  if (typeof salt !== 'string' || Buffer.from(salt, 'base64').length !== 16) {
    throw bad(`${field}.salt`, 'is not base64 of 16 bytes');
  }
  return { ...cost, salt };
}
