import { randomBytes } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyError } from '../../core/errors.js';
import { fsyncDir } from '../../core/fs-durable.js';
import { KEK_BYTES, kekIdOf } from './key-ring.js';
import type { KeyRing } from './key-ring.js';
import { assembleRing, gatherKeks, requireKekState } from './kek.js';
import type { KekSecrets, KekSourceConfig } from './kek.js';
import {
  DEFAULT_KEK_VARIABLE,
  deriveKek,
  newKekVariable,
  newScryptParams,
  readKekFile,
  readKekVariable,
  writeKekFile,
} from './kek-sources.js';
import { MASTER_KEY_FILE, NEXT_MASTER_KEY_FILE, writeKekState } from './kek-state.js';
import type { KekRotation, KekState, RotationStage, ScryptCost } from './kek-state.js';
import { SoftwareSealer } from './sealer.js';

/** Durable points of a rotation, in order; `afterStep` runs after each (tests stop there to simulate a crash). */
export type RotationStep = 'recorded' | 'staged' | 'rewrapped' | 'retiring' | 'renamed' | 'finished';

export interface RotateKekOptions {
  readonly dataDir: string;
  readonly source: KekSourceConfig;
  /**
   * The current KEK's secrets and the new one's: `newPassphrase` for a passphrase; for env the new key
   * is read from `<variable>_NEW`; for a file it is generated.
   */
  readonly secrets: KekSecrets;
  /**
   * Rewrites every SealedBlob of the store with `sealer.rewrap` and resolves, with the count, only once
   * that is durable. Must be safe to run again (rewrap leaves blobs already under the new KEK alone).
   * The sealer's primary is the new KEK and it still opens the old one's blobs, so the caller may seal
   * with it from here on; it is the caller's to close.
   */
  readonly rewrapAll: (sealer: SoftwareSealer) => Promise<number>;
  /** passphrase source: scrypt cost of the new passphrase; the current cost when absent. */
  readonly scrypt?: ScryptCost;
  readonly afterStep?: (step: RotationStep) => void | Promise<void>;
}

export interface RotateKekResult {
  readonly from: string;
  readonly to: string;
  /** Blobs rewrapped by this run (0 when it only finished an earlier one's last steps). */
  readonly rewrapped: number;
  /** The new KEK alone: the ring to seal and unseal with from now on. */
  readonly ring: KeyRing;
}

/**
 * Rotates the data directory's KEK, or finishes a rotation an earlier run left unfinished. Crash-safe:
 * the rotation is recorded in kek.json before anything else, the new KEK is durable before any blob is
 * rewrapped under it, and the old KEK is retired only after rewrapAll resolved. Interrupted anywhere,
 * loadKeyRing still opens every blob and calling rotateKek again completes the rotation.
 */
export async function rotateKek(options: RotateKekOptions): Promise<RotateKekResult> {
  try {
    return await runRotation(options);
  } catch (err) {
    if (err instanceof KeyError) throw err;
    throw new KeyError(
      'KEK_ROTATION_FAILED',
      `rotating the KEK of ${options.dataDir} stopped before it finished; every blob still opens with the ` +
        'keys it needs, and running the rotation again finishes it',
      { cause: err, details: { dataDir: options.dataDir } },
    );
  }
}

async function runRotation(options: RotateKekOptions): Promise<RotateKekResult> {
  const { dataDir, source, secrets } = options;
  const step = async (s: RotationStep): Promise<void> => {
    await options.afterStep?.(s);
  };
  let state = await requireKekState(dataDir, source);
  let ring: KeyRing | undefined;
  let pendingFile: Buffer | undefined;
  if (state.rotation === undefined) {
    const started = await startRotation(options, state);
    ({ state, ring, pendingFile } = started);
    await step('recorded');
  }
  if (rotationOf(state).stage === 'prepared') {
    state = await stageNextKeyFile(dataDir, state, pendingFile);
    await step('staged');
  }
  ring ??= assembleRing(dataDir, state, await gatherKeks(dataDir, state, source, secrets));
  const { from, to } = rotationOf(state);
  const newKek = Buffer.from(ring.keks.get(to) ?? Buffer.alloc(0));
  try {
    let rewrapped = 0;
    if (rotationOf(state).stage === 'rewrapping') {
      rewrapped = await options.rewrapAll(new SoftwareSealer(ring));
      await step('rewrapped');
      if (state.source === 'file') {
        state = withStage(state, 'retiring');
        await writeKekState(dataDir, state);
        await step('retiring');
      }
    }
    if (state.source === 'file') {
      await replaceMasterKeyFile(dataDir, to);
      await step('renamed');
    }
    const scrypt = rotationOf(state).scrypt;
    await writeKekState(dataDir, { v: 1, source: state.source, primary: to, ...(scrypt ? { scrypt } : {}) });
    await step('finished');
    return { from, to, rewrapped, ring: { primaryId: to, keks: new Map([[to, newKek]]) } };
  } catch (err) {
    newKek.fill(0);
    throw err;
  }
}

function rotationOf(state: KekState): KekRotation {
  if (state.rotation === undefined) throw new Error('no rotation recorded'); // unreachable: set by startRotation
  return state.rotation;
}

function withStage(state: KekState, stage: RotationStage): KekState {
  return { ...state, rotation: { ...rotationOf(state), stage } };
}

interface Started {
  readonly state: KekState;
  /** env and passphrase: both KEKs are known now and durable, so the rewrap ring is ready. */
  readonly ring?: KeyRing;
  /** file: the generated KEK, not yet on disk. */
  readonly pendingFile?: Buffer;
}

/** Checks the current KEK, obtains the next one and records the rotation in kek.json. */
async function startRotation(options: RotateKekOptions, state: KekState): Promise<Started> {
  const { dataDir, source, secrets } = options;
  const current = assembleRing(dataDir, state, await gatherKeks(dataDir, state, source, secrets));
  const from = state.primary;
  const oldKek = current.keks.get(from) ?? Buffer.alloc(0);
  let next: Buffer;
  let rotation: KekRotation;
  switch (source.source) {
    case 'file':
      next = randomBytes(KEK_BYTES);
      rotation = { from, to: kekIdOf(next), stage: 'prepared' };
      break;
    case 'env': {
      const variable = newKekVariable(source.variable ?? DEFAULT_KEK_VARIABLE);
      const found = readKekVariable(secrets.env ?? process.env, variable);
      if (found === undefined) {
        oldKek.fill(0);
        throw new KeyError('KEK_MISSING', `set ${variable} to the new master key (openssl rand -base64 32)`, {
          details: { variable },
        });
      }
      next = found;
      rotation = { from, to: kekIdOf(next), stage: 'rewrapping' };
      break;
    }
    case 'passphrase': {
      if (secrets.newPassphrase === undefined || state.scrypt === undefined) {
        oldKek.fill(0);
        throw new KeyError('KEK_MISSING', 'rotating a passphrase KEK needs the new passphrase');
      }
      const { N, r, p } = state.scrypt;
      const scrypt = newScryptParams(options.scrypt ?? { N, r, p });
      next = await deriveKek(secrets.newPassphrase, scrypt);
      rotation = { from, to: kekIdOf(next), stage: 'rewrapping', scrypt };
      break;
    }
  }
  if (rotation.to === from) {
    next.fill(0);
    oldKek.fill(0);
    throw new KeyError(
      'KEK_INVALID',
      `the new master key is the current one (KEK id ${from}); give a different one`,
    );
  }
  const recorded: KekState = { ...state, rotation };
  await writeKekState(dataDir, recorded);
  if (source.source === 'file') {
    oldKek.fill(0);
    return { state: recorded, pendingFile: next };
  }
  return {
    state: recorded,
    ring: {
      primaryId: rotation.to,
      keks: new Map([
        [rotation.to, next],
        [from, oldKek],
      ]),
    },
  };
}

/**
 * file source, stage `prepared`: makes the new KEK durable as master.key.next and moves to `rewrapping`.
 * A run that crashed before the file was written left no blob under the recorded id, so a fresh key
 * (recorded first) is as good.
 */
async function stageNextKeyFile(
  dataDir: string,
  state: KekState,
  pending: Buffer | undefined,
): Promise<KekState> {
  const path = join(dataDir, NEXT_MASTER_KEY_FILE);
  let rotation = rotationOf(state);
  let kek = pending;
  if (kek === undefined) {
    const onDisk = await readKekFile(path);
    if (onDisk !== undefined && kekIdOf(onDisk) === rotation.to) {
      onDisk.fill(0);
    } else {
      onDisk?.fill(0);
      kek = randomBytes(KEK_BYTES);
      rotation = { ...rotation, to: kekIdOf(kek) };
      await writeKekState(dataDir, { ...state, rotation });
    }
  }
  try {
    if (kek !== undefined) await writeKekFile(path, kek);
  } finally {
    kek?.fill(0);
  }
  const staged: KekState = { ...state, rotation: { ...rotation, stage: 'rewrapping' } };
  await writeKekState(dataDir, staged);
  return staged;
}

/** file source, stage `retiring`: master.key.next replaces master.key; the old KEK is gone after this. */
async function replaceMasterKeyFile(dataDir: string, to: string): Promise<void> {
  const next = join(dataDir, NEXT_MASTER_KEY_FILE);
  const onDisk = await readKekFile(next);
  if (onDisk === undefined) return; // renamed by an earlier run; assembleRing checked master.key is `to`
  const id = kekIdOf(onDisk);
  onDisk.fill(0);
  if (id !== to) {
    throw new KeyError('KEK_WRONG', `${next} holds KEK ${id}, but the rotation in progress is to ${to}`, {
      details: { file: next, expected: to, got: id },
    });
  }
  await rename(next, join(dataDir, MASTER_KEY_FILE));
  await fsyncDir(dataDir);
}
