import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { KeyError } from '../../core/errors.js';
import { mkdirDurable } from '../../core/fs-durable.js';
import { KEK_BYTES, kekIdOf } from './key-ring.js';
import type { KeyRing } from './key-ring.js';
import {
  DEFAULT_KEK_VARIABLE,
  deriveKek,
  newKekVariable,
  newScryptParams,
  readKekFile,
  readKekVariable,
  writeKekFile,
} from './kek-sources.js';
import {
  MASTER_KEY_FILE,
  NEXT_MASTER_KEY_FILE,
  kekStatePath,
  readKekState,
  writeKekState,
} from './kek-state.js';
import type { KekState, ScryptCost } from './kek-state.js';

/** `masterKey` of the configuration: where the KEK comes from. */
export type KekSourceConfig =
  | { readonly source: 'file' }
  | { readonly source: 'env'; readonly variable?: string }
  | { readonly source: 'passphrase' };

/** Secrets the caller gathered (the CLI reads passphrases from a prompt, a file or KEYWRIGHT_PASSPHRASE). */
export interface KekSecrets {
  /** passphrase source: the current passphrase. */
  readonly passphrase?: string;
  /** passphrase source: the new passphrase, for rotateKek and while a rotation is unfinished. */
  readonly newPassphrase?: string;
  /** env source: where to read the variables; process.env when absent. */
  readonly env?: NodeJS.ProcessEnv;
}

export interface InitKekOptions {
  /** passphrase source: scrypt cost; DEFAULT_SCRYPT_COST (N=2^17, r=8, p=1) when absent. */
  readonly scrypt?: ScryptCost;
}

/**
 * Sets up the KEK of a new data directory and records it in kek.json. For `file` it creates
 * master.key (0600), or keeps one a crashed earlier init left behind; `env` reads the variable the
 * operator set; `passphrase` derives the KEK with a fresh salt. Refuses with KEK_EXISTS if kek.json exists.
 */
export async function initKek(
  dataDir: string,
  source: KekSourceConfig,
  secrets: KekSecrets,
  options: InitKekOptions = {},
): Promise<KeyRing> {
  await mkdirDurable(dataDir);
  if ((await readKekState(dataDir)) !== undefined) {
    throw new KeyError('KEK_EXISTS', `${kekStatePath(dataDir)} exists: ${dataDir} already has a master key`, {
      details: { dataDir },
    });
  }
  let kek: Buffer;
  let state: KekState;
  switch (source.source) {
    case 'file': {
      const path = join(dataDir, MASTER_KEY_FILE);
      const existing = await readKekFile(path);
      kek = existing ?? randomBytes(KEK_BYTES);
      if (existing === undefined) await writeKekFile(path, kek);
      state = { v: 1, source: 'file', primary: kekIdOf(kek) };
      break;
    }
    case 'env': {
      const variable = source.variable ?? DEFAULT_KEK_VARIABLE;
      const found = readKekVariable(secrets.env ?? process.env, variable);
      if (found === undefined)
        throw missing(`set ${variable} to base64 of 32 random bytes (openssl rand -base64 32)`);
      kek = found;
      state = { v: 1, source: 'env', primary: kekIdOf(kek) };
      break;
    }
    case 'passphrase': {
      if (secrets.passphrase === undefined) throw missing('a passphrase is needed to initialize');
      const scrypt = newScryptParams(options.scrypt);
      kek = await deriveKek(secrets.passphrase, scrypt);
      state = { v: 1, source: 'passphrase', primary: kekIdOf(kek), scrypt };
      break;
    }
  }
  await writeKekState(dataDir, state);
  return { primaryId: state.primary, keks: new Map([[state.primary, kek]]) };
}

/**
 * The key ring that opens this data directory's blobs. Its KEK must have the id kek.json names
 * (KEK_WRONG otherwise); while a rotation is unfinished the ring holds both KEKs it needs, so every
 * blob opens, and new blobs go under the incoming KEK once it is durable.
 */
export async function loadKeyRing(
  dataDir: string,
  source: KekSourceConfig,
  secrets: KekSecrets,
): Promise<KeyRing> {
  const state = await requireKekState(dataDir, source);
  return assembleRing(dataDir, state, await gatherKeks(dataDir, state, source, secrets));
}

export async function requireKekState(dataDir: string, source: KekSourceConfig): Promise<KekState> {
  const state = await readKekState(dataDir);
  if (state === undefined) {
    throw new KeyError('KEK_MISSING', `${kekStatePath(dataDir)} not found: run keywright init first`, {
      details: { dataDir },
    });
  }
  if (state.source !== source.source) {
    throw new KeyError(
      'KEK_INVALID',
      `${dataDir} was initialized with masterKey.source ${state.source}, but the configuration says ${source.source}`,
      { details: { dataDir, initialized: state.source, configured: source.source } },
    );
  }
  return state;
}

/** A KEK found in a source, with where it came from for messages. */
export interface FoundKek {
  readonly id: string;
  readonly kek: Buffer;
  readonly where: string;
}

function found(kek: Buffer, where: string): FoundKek {
  return { id: kekIdOf(kek), kek, where };
}

/** Every KEK the configured source offers for this state: the current one and, mid-rotation, the next. */
export async function gatherKeks(
  dataDir: string,
  state: KekState,
  source: KekSourceConfig,
  secrets: KekSecrets,
): Promise<FoundKek[]> {
  const out: FoundKek[] = [];
  const rotating = state.rotation !== undefined;
  switch (source.source) {
    case 'file': {
      for (const name of rotating ? [MASTER_KEY_FILE, NEXT_MASTER_KEY_FILE] : [MASTER_KEY_FILE]) {
        const path = join(dataDir, name);
        const kek = await readKekFile(path);
        if (kek !== undefined) out.push(found(kek, path));
      }
      break;
    }
    case 'env': {
      const env = secrets.env ?? process.env;
      const variable = source.variable ?? DEFAULT_KEK_VARIABLE;
      const current = readKekVariable(env, variable);
      if (current !== undefined) out.push(found(current, `environment variable ${variable}`));
      // After a rotation the operator may not have moved the new value into the main variable yet.
      if (rotating || out[0]?.id !== state.primary) {
        const next = readKekVariable(env, newKekVariable(variable));
        if (next !== undefined) out.push(found(next, `environment variable ${newKekVariable(variable)}`));
      }
      break;
    }
    case 'passphrase': {
      if (state.scrypt !== undefined && secrets.passphrase !== undefined) {
        out.push(found(await deriveKek(secrets.passphrase, state.scrypt), 'the passphrase'));
      }
      const next = state.rotation?.scrypt;
      if (next !== undefined && secrets.newPassphrase !== undefined) {
        out.push(found(await deriveKek(secrets.newPassphrase, next), 'the new passphrase'));
      }
      break;
    }
  }
  return out;
}

/**
 * Picks the KEKs a state needs out of what was found, wiping the rest. Which ids are needed follows
 * the rotation stage (kek-state.ts): before rewrapping only the old KEK, while rewrapping both, after
 * it only the new one.
 */
export function assembleRing(dataDir: string, state: KekState, keks: readonly FoundKek[]): KeyRing {
  const r = state.rotation;
  const [required, optional, primaryId]: [string[], string[], string] =
    r === undefined
      ? [[state.primary], [], state.primary]
      : r.stage === 'prepared'
        ? [[r.from], [r.to], r.from]
        : r.stage === 'rewrapping'
          ? [[r.from, r.to], [], r.to]
          : [[r.to], [r.from], r.to];
  const byId = new Map(keks.map((k) => [k.id, k]));
  const absent = required.filter((id) => !byId.has(id));
  if (absent.length > 0) {
    for (const k of keks) k.kek.fill(0);
    throw ringError(dataDir, state, keks, absent);
  }
  const ring = new Map<string, Buffer>();
  for (const id of [...required, ...optional]) {
    const k = byId.get(id);
    if (k !== undefined) ring.set(id, k.kek);
  }
  const kept = new Set(ring.values());
  for (const k of keks) if (!kept.has(k.kek)) k.kek.fill(0);
  return { primaryId, keks: ring };
}

function ringError(dataDir: string, state: KekState, keks: readonly FoundKek[], absent: string[]): KeyError {
  const r = state.rotation;
  const known = new Set([state.primary, r?.from, r?.to]);
  const strangers = keks.filter((k) => !known.has(k.id));
  const details = { dataDir, expected: absent, ...(r === undefined ? {} : { rotation: { ...r } }) };
  if (strangers.length > 0) {
    const got = strangers.map((k) => `${k.id} from ${k.where}`).join(', ');
    const during = r === undefined ? '' : ` (a rotation from ${r.from} to ${r.to} is in progress)`;
    return new KeyError(
      'KEK_WRONG',
      `this master key does not open ${dataDir}: expected KEK id ${absent.join(' and ')}, got ${got}${during}`,
      { details: { ...details, got: strangers.map((k) => k.id) } },
    );
  }
  if (r === undefined) {
    return new KeyError('KEK_MISSING', `no master key for ${dataDir}: ${sourceHint(dataDir, state, false)}`, {
      details,
    });
  }
  return new KeyError(
    'KEK_MISSING',
    `a KEK rotation from ${r.from} to ${r.to} is unfinished in ${dataDir} and KEK ${absent.join(' and ')} ` +
      `is not available: ${sourceHint(dataDir, state, true)}, then run the rotation again to finish it`,
    { details },
  );
}

function sourceHint(dataDir: string, state: KekState, rotating: boolean): string {
  switch (state.source) {
    case 'file':
      return rotating
        ? `${join(dataDir, MASTER_KEY_FILE)} and ${join(dataDir, NEXT_MASTER_KEY_FILE)} are needed`
        : `${join(dataDir, MASTER_KEY_FILE)} is missing; restore it from a backup`;
    case 'env':
      return rotating
        ? `set both the master key variable and its _NEW variable`
        : `set the master key variable (default ${DEFAULT_KEK_VARIABLE})`;
    case 'passphrase':
      return rotating ? 'give both the current and the new passphrase' : 'give the passphrase';
  }
}

function missing(what: string): KeyError {
  return new KeyError('KEK_MISSING', `no master key: ${what}`);
}
