import { randomBytes, scrypt as scryptCb } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import { open } from 'node:fs/promises';
import { KeyError } from '../../core/errors.js';
import { writeFileDurable } from '../../core/fs-durable.js';
import { KEK_BYTES } from './key-ring.js';
import { checkScryptCost } from './kek-state.js';
import type { ScryptCost, ScryptParams } from './kek-state.js';

// The three places a KEK comes from (DESIGN §3). Each reader returns the 32-byte KEK or undefined when
// the source is absent; a present but malformed source is KEK_INVALID naming the file or variable.

export const DEFAULT_KEK_VARIABLE = 'KEYWRIGHT_MASTER_KEY';

/** The variable that holds the incoming KEK during a rotation of an env KEK. */
export function newKekVariable(variable: string): string {
  return `${variable}_NEW`;
}

/** ~0.4 s and 128 MiB on the reference machine (perf-anchors §3); it runs once per unseal. */
export const DEFAULT_SCRYPT_COST: ScryptCost = { N: 2 ** 17, r: 8, p: 1 };
const SCRYPT_MAXMEM = 256 * 1024 * 1024;
const SALT_BYTES = 16;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HOW_TO_MAKE = 'base64 of 32 random bytes, e.g. from `openssl rand -base64 32`';

/** One line of base64 of 32 bytes, as in master.key and KEYWRIGHT_MASTER_KEY. Never echoes the input. */
export function parseKekText(text: string, where: string): Buffer {
  const trimmed = text.trim();
  const decoded = BASE64.test(trimmed) ? Buffer.from(trimmed, 'base64') : undefined;
  if (decoded?.length !== KEK_BYTES) {
    decoded?.fill(0);
    throw new KeyError(
      'KEK_INVALID',
      `${where} must hold ${HOW_TO_MAKE}; it holds ${decoded === undefined ? 'something that is not base64' : `${decoded.length} bytes`}`,
      { details: { source: where } },
    );
  }
  return decoded;
}

function kekText(kek: Buffer): string {
  return `${kek.toString('base64')}\n`;
}

// --- file ---------------------------------------------------------------------------------------------------

const MAX_KEY_FILE_BYTES = 1024;

/** Reads a master key file; undefined when it does not exist. Refuses one that others may read. */
export async function readKekFile(path: string): Promise<Buffer | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyError('KEK_INVALID', `${path} could not be opened`, { cause: err, details: { file: path } });
  }
  try {
    // Checked on the open handle, so the file read is the file checked.
    const st = await fh.stat();
    if (!st.isFile())
      throw new KeyError('KEK_INVALID', `${path} is not a regular file`, { details: { file: path } });
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new KeyError(
        'KEK_INVALID',
        `${path} is accessible by group or others (mode ${mode}); restrict it with: chmod 600 ${path}`,
        { details: { file: path, mode } },
      );
    }
    if (st.size > MAX_KEY_FILE_BYTES) {
      throw new KeyError('KEK_INVALID', `${path} must hold ${HOW_TO_MAKE}; it is ${st.size} bytes long`, {
        details: { file: path },
      });
    }
    const bytes = await fh.readFile();
    try {
      return parseKekText(bytes.toString('latin1'), path);
    } finally {
      bytes.fill(0);
    }
  } finally {
    await fh.close();
  }
}

/** Writes a master key file durably with mode 0600. */
export async function writeKekFile(path: string, kek: Buffer): Promise<void> {
  const text = Buffer.from(kekText(kek), 'latin1');
  try {
    await writeFileDurable(path, text, 0o600);
  } finally {
    text.fill(0);
  }
}

// --- env ------------------------------------------------------------------------------------------------------

export function readKekVariable(env: NodeJS.ProcessEnv, variable: string): Buffer | undefined {
  const value = env[variable];
  if (value === undefined || value === '') return undefined;
  return parseKekText(value, `environment variable ${variable}`);
}

// --- passphrase --------------------------------------------------------------------------------------------

export function newScryptParams(cost: ScryptCost = DEFAULT_SCRYPT_COST): ScryptParams {
  checkScryptCost(cost, 'scrypt', (field, what) => new KeyError('KEK_INVALID', `${field} ${what}`));
  return { N: cost.N, r: cost.r, p: cost.p, salt: randomBytes(SALT_BYTES).toString('base64') };
}

function scryptAsync(password: Buffer, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password, salt, KEK_BYTES, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/**
 * The KEK of a passphrase: scrypt (RFC 7914) over its UTF-8 NFC form, so the same passphrase typed on
 * systems that compose accents differently opens the store. Runs on the threadpool.
 */
export async function deriveKek(passphrase: string, params: ScryptParams): Promise<Buffer> {
  if (passphrase.length === 0) throw new KeyError('KEK_INVALID', 'the passphrase is empty');
  const password = Buffer.from(passphrase.normalize('NFC'), 'utf8');
  try {
    return await scryptAsync(password, Buffer.from(params.salt, 'base64'), {
      N: params.N,
      r: params.r,
      p: params.p,
      maxmem: SCRYPT_MAXMEM,
    });
  } catch (err) {
    throw new KeyError('KEK_INVALID', `scrypt with N=${params.N}, r=${params.r}, p=${params.p} failed`, {
      cause: err,
      details: { N: params.N, r: params.r, p: params.p },
    });
  } finally {
    password.fill(0);
  }
}
