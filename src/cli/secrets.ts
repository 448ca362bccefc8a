import { readFile } from 'node:fs/promises';
import type { Config } from '../config/schema.js';
import { AppError } from '../core/errors.js';
import type { KekSecrets } from '../keys/software/kek.js';
import type { CliIo } from './context.js';

/**
 * The secret inputs that open the KEK, gathered from files and the environment: never from argv, so they
 * never show in `ps`. For a passphrase: masterKey.passphraseFile or KEYWRIGHT_PASSPHRASE, and for a
 * rotation the new one from KEYWRIGHT_NEW_PASSPHRASE.
 */
export async function readKekSecrets(config: Config, io: CliIo, needNew = false): Promise<KekSecrets> {
  const mk = config.masterKey;
  if (mk.source !== 'passphrase') return { env: io.env };
  let passphrase = io.env.KEYWRIGHT_PASSPHRASE;
  if (mk.passphraseFile !== undefined) {
    const file = mk.passphraseFile;
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new AppError(
        'KEK_INVALID',
        `masterKey.passphraseFile ${file}: cannot read it (${err.code ?? 'error'})`,
        { details: { file } },
      );
    });
    passphrase = text.replace(/\r?\n$/, '');
  }
  if (!passphrase)
    throw new AppError(
      'KEK_MISSING',
      'the master key is passphrase-based: set KEYWRIGHT_PASSPHRASE or masterKey.passphraseFile',
    );
  const newPassphrase = io.env.KEYWRIGHT_NEW_PASSPHRASE;
  if (needNew && !newPassphrase)
    throw new AppError('KEK_MISSING', 'set KEYWRIGHT_NEW_PASSPHRASE to the new passphrase');
  return { env: io.env, passphrase, ...(newPassphrase ? { newPassphrase } : {}) };
}
