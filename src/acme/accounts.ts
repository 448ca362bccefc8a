/**
 * ACME accounts (RFC 8555 §7.3): registration with optional External Account Binding, key rollover
 * (§7.3.5), deactivation (§7.3.6), and the per-operation session every order runs in. Account keys are
 * made here (ec-p256), sealed under `sealed/acme/<name>/<key id>` and kept unsealed in memory as
 * KeyObjects while the daemon runs. An EAB HMAC key is used once, for newAccount, and never stored.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import type { Client } from 'acme-client';
import type { Clock } from '../core/clock.js';
import { AcmeError, AppError, ValidationError, isAppError } from '../core/errors.js';
import { NAME_PATTERN } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { generateKeyPair } from '../keys/generate.js';
import type { SealContext, SealedBlob, Sealer } from '../keys/port.js';
import { sealPrivateKey, unsealPrivateKey } from '../keys/sealed-key.js';
import { SEALED_BLOB_PREFIX, type Store, type StoredRecord } from '../store/port.js';
import { createClient, privateKeyPemBuffer, useAccountKey, type ClientSettings } from './client.js';
import { fetchDirectory, resolveDirectoryUrl, type AcmeDirectory } from './directory.js';
import { problemTypeOf } from './problems.js';
import { step, withAcmeCall, type CallStats } from './transport.js';

export const ACME_ACCOUNTS_COLLECTION = 'acmeAccounts';

export interface AcmeAccountRecord extends StoredRecord {
  /** The account's name: the issuer is `acme:<name>`. */
  readonly id: string;
  readonly directoryUrl: string;
  readonly directoryAlias?: string;
  /** The account URL the CA gave (the JWS `kid`, §7.3). */
  readonly accountUrl: string;
  readonly contact: readonly string[];
  readonly keyType: 'ec-p256';
  /** Blob key of the sealed account key; removed once the account is deactivated. */
  readonly keyBlob?: string;
  /** RFC 7638 JWK thumbprint of the account key (public; what key authorizations are built from). */
  readonly keyThumbprint: string;
  /** A key change sent to the CA but not yet confirmed here (§7.3.5); resolved on next use. */
  readonly pendingKeyBlob?: string;
  /** The EAB key identifier used at registration (not secret); the HMAC key itself is never kept. */
  readonly eabKid?: string;
  /** PEM trust anchors for this directory's HTTPS (private CAs, pebble). */
  readonly caPem?: string;
  readonly termsOfServiceAgreed: boolean;
  readonly termsOfService?: string;
  /** Issuer CN of the preferred alternate chain (RFC 8555 §7.4.2 Link rel="alternate"). */
  readonly preferredChain?: string;
  readonly status: 'valid' | 'deactivated';
  /** Set while `acme.accounts` declares it; an account no longer declared is kept as if made over the API. */
  readonly declared?: true;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly keyRolledAt?: string;
  readonly deactivatedAt?: string;
}

export interface RegisterAccountInput {
  readonly name: string;
  /** A URL or an alias (letsencrypt, letsencrypt-staging, zerossl, google, google-staging). */
  readonly directory: string;
  readonly email?: string | undefined;
  readonly eab?: { readonly kid: string; readonly hmacKey: string } | undefined;
  readonly agreeTos: boolean;
  readonly caPem?: string | undefined;
  readonly preferredChain?: string | undefined;
  /** Registered from `acme.accounts` rather than the API. */
  readonly declared?: boolean | undefined;
}

export interface AcmeSettings {
  /** One HTTP request to the CA. */
  readonly requestTimeoutMs: number;
  readonly client: ClientSettings;
}

export interface AccountDeps {
  readonly store: Store;
  readonly sealer: Sealer;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly settings: AcmeSettings;
  /** Told about every account created or changed (the daemon keeps its issuer registry in step). */
  readonly onChange?: ((account: AcmeAccountRecord) => void) | undefined;
}

/** What an operation on an account works with; it ends with the operation. */
export interface AcmeSession {
  readonly account: AcmeAccountRecord;
  readonly directory: AcmeDirectory;
  readonly client: Client;
  readonly stats: CallStats;
}

const keyContext = (name: string, keyId: string): SealContext => ({
  recordType: 'acme-account-key',
  recordId: `${name}/${keyId}`,
});

/** A short, path-safe id of a key: its SPKI hash. Blob keys and seal contexts use it. */
function keyIdOf(key: KeyObject): string {
  return createHash('sha256')
    .update(createPublicKey(key).export({ type: 'spki', format: 'der' }))
    .digest('hex')
    .slice(0, 16);
}

/** RFC 7638 §3: SHA-256 over the required members in lexicographic order (EC: crv, kty, x, y). */
export function jwkThumbprint(key: KeyObject): string {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return createHash('sha256').update(canonical).digest('base64url');
}

const blobKeyFor = (name: string, keyId: string) => `${SEALED_BLOB_PREFIX}acme/${name}/${keyId}`;

const EMAIL = /^[^@\s:,]+@[^@\s:,]+$/;

function notFound(name: string): AcmeError {
  return new AcmeError(
    'ACME_ACCOUNT_NOT_FOUND',
    `no ACME account named "${name}"; register it with keywright acme account register ${name}`,
    {
      details: { account: name },
    },
  );
}

/** An account's contact list for an email (RFC 8555 §7.3: mailto: URLs), empty without one. */
export function contactOf(email: string | undefined): string[] {
  return email ? [`mailto:${email}`] : [];
}

export class AcmeAccounts {
  readonly #deps: AccountDeps;
  /** blob key → unsealed account key (DESIGN §3: signing keys stay in memory while unsealed). */
  readonly #keys = new Map<string, KeyObject>();
  /** Names with a register, rollover or deactivate in flight: one change at a time per account. */
  readonly #busy = new Set<string>();

  constructor(deps: AccountDeps) {
    this.#deps = deps;
  }

  list(): AcmeAccountRecord[] {
    return this.#deps.store
      .collection<AcmeAccountRecord>(ACME_ACCOUNTS_COLLECTION)
      .list()
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  find(name: string): AcmeAccountRecord | undefined {
    return this.#deps.store.collection<AcmeAccountRecord>(ACME_ACCOUNTS_COLLECTION).find(name);
  }

  get(name: string): AcmeAccountRecord {
    const record = this.find(name);
    if (record === undefined) throw notFound(name);
    return record;
  }

  /**
   * Registers a new account. Everything that can be checked locally is checked before the CA is
   * contacted, and nothing is stored unless the CA accepted the account: a failure leaves no record and
   * no blob behind.
   */
  async register(input: RegisterAccountInput, signal?: AbortSignal): Promise<AcmeAccountRecord> {
    const { name } = input;
    if (!NAME_PATTERN.test(name)) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `account name "${name}" is invalid: use 1-64 lowercase letters, digits, ".", "_" or "-"`,
        { details: { field: 'name' } },
      );
    }
    if (input.email !== undefined && !EMAIL.test(input.email)) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `email "${input.email}" is not an address like ops@example.com`,
        {
          details: { field: 'email' },
        },
      );
    }
    if (input.eab && (input.eab.kid === '' || !/^[A-Za-z0-9_=+/-]+$/.test(input.eab.hmacKey))) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        'EAB needs a key id and a base64url HMAC key (as your CA shows them)',
        {
          details: { field: 'eab' },
        },
      );
    }
    const { url, alias } = resolveDirectoryUrl(input.directory);
    return this.#exclusive(name, async () => {
      if (this.find(name) !== undefined) {
        throw new AcmeError('ACME_ACCOUNT_EXISTS', `an ACME account named "${name}" exists already`, {
          details: { account: name },
        });
      }
      const { privateKey } = await generateKeyPair('ec-p256');
      const contact = contactOf(input.email);
      const registered = await withAcmeCall(this.#callOptions(input.caPem, signal), async () => {
        const directory = await fetchDirectory(url);
        const tos = directory.meta.termsOfService;
        if (tos !== undefined && !input.agreeTos) {
          throw new ValidationError(
            'INVALID_ARGUMENT',
            `${url} requires agreeing to its terms of service (${tos}): read them, then pass --agree-tos`,
            { details: { field: 'agreeTos', termsOfService: tos } },
          );
        }
        if (directory.meta.externalAccountRequired && input.eab === undefined) {
          throw new ValidationError(
            'INVALID_ARGUMENT',
            `${url} requires External Account Binding: pass --eab-kid and --eab-hmac from your CA account`,
            { details: { field: 'eab' } },
          );
        }
        const client = await createClient(
          { directoryUrl: url, accountKey: privateKey, eab: input.eab },
          this.#deps.settings.client,
        );
        await step(`registering ACME account "${name}" at ${url}`, () =>
          client.createAccount({
            termsOfServiceAgreed: input.agreeTos,
            ...(contact.length ? { contact } : {}),
          }),
        );
        return { accountUrl: client.getAccountUrl(), termsOfService: tos };
      });
      const keyId = keyIdOf(privateKey);
      const keyBlob = blobKeyFor(name, keyId);
      const sealed = await sealPrivateKey(this.#deps.sealer, privateKey, keyContext(name, keyId));
      const now = this.#deps.clock.now().toISOString();
      const record: AcmeAccountRecord = {
        id: name,
        directoryUrl: url,
        ...(alias ? { directoryAlias: alias } : {}),
        accountUrl: registered.accountUrl,
        contact,
        keyType: 'ec-p256',
        keyBlob,
        keyThumbprint: jwkThumbprint(privateKey),
        ...(input.eab ? { eabKid: input.eab.kid } : {}),
        ...(input.caPem ? { caPem: input.caPem } : {}),
        termsOfServiceAgreed: input.agreeTos,
        ...(registered.termsOfService ? { termsOfService: registered.termsOfService } : {}),
        ...(input.preferredChain ? { preferredChain: input.preferredChain } : {}),
        status: 'valid',
        ...(input.declared ? { declared: true as const } : {}),
        createdAt: now,
        updatedAt: now,
      };
      await this.#deps.store.tx((tx) => {
        tx.putBlob(keyBlob, Buffer.from(JSON.stringify(sealed)));
        tx.collection<AcmeAccountRecord>(ACME_ACCOUNTS_COLLECTION).insert(record);
      });
      this.#keys.set(keyBlob, privateKey);
      this.#deps.onChange?.(record);
      this.#deps.logger.info(
        { account: name, directory: url, accountUrl: record.accountUrl },
        'ACME account registered',
      );
      return record;
    });
  }

  /**
   * RFC 8555 §7.3.5 key change. The new key is sealed and stored as `pendingKeyBlob` before the CA is
   * asked, so whatever happens next (crash, timeout, a lost answer) the key the CA may now hold is on
   * disk; the next use of the account finds out which key the CA knows and finishes or drops the change.
   */
  async rollover(name: string, signal?: AbortSignal): Promise<AcmeAccountRecord> {
    return this.#exclusive(name, async () => {
      const record = this.#active(name);
      const { privateKey: newKey } = await generateKeyPair('ec-p256');
      const keyId = keyIdOf(newKey);
      const pendingKeyBlob = blobKeyFor(name, keyId);
      const sealed = await sealPrivateKey(this.#deps.sealer, newKey, keyContext(name, keyId));
      await this.#deps.store.tx((tx) => {
        tx.putBlob(pendingKeyBlob, Buffer.from(JSON.stringify(sealed)));
        tx.collection<AcmeAccountRecord>(ACME_ACCOUNTS_COLLECTION).update(name, (r) => ({
          ...r,
          pendingKeyBlob,
        }));
      });
      this.#keys.set(pendingKeyBlob, newKey);
      try {
        await this.session(this.get(name), signal, async ({ client }) => {
          const pem = privateKeyPemBuffer(newKey);
          try {
            await step(`rolling over the key of ACME account "${name}"`, () => client.updateAccountKey(pem));
          } finally {
            pem.fill(0);
          }
          useAccountKey(client, newKey, this.#deps.settings.client);
        });
      } catch (err) {
        // A problem document means the CA refused and still knows the old key; anything else (no
        // answer) may have changed it, so ask the CA which key it knows.
        if (isAppError(err) && typeof err.details.problemType === 'string') await this.#dropPending(name);
        else await this.#reconcile(this.get(name), signal).catch(() => undefined);
        throw err;
      }
      return this.#finishRollover(name, record.keyBlob);
    });
  }

  /** §7.3.6: the CA stops accepting the account; the sealed key is erased here (it can sign nothing more). */
  async deactivate(name: string, signal?: AbortSignal): Promise<AcmeAccountRecord> {
    return this.#exclusive(name, async () => {
      const record = this.#active(name);
      await this.session(record, signal, ({ client }) =>
        step(`deactivating ACME account "${name}"`, () => client.updateAccount({ status: 'deactivated' })),
      );
      const now = this.#deps.clock.now().toISOString();
      const updated = await this.#deps.store.tx((tx) => {
        for (const blob of [record.keyBlob, record.pendingKeyBlob]) if (blob) tx.deleteBlob(blob);
        return tx.collection<AcmeAccountRecord>(ACME_ACCOUNTS_COLLECTION).update(name, (r) => {
          const { keyBlob: _k, pendingKeyBlob: _p, ...rest } = r;
          return { ...rest, status: 'deactivated', deactivatedAt: now, updatedAt: now };
        });
      });
      for (const blob of [record.keyBlob, record.pendingKeyBlob]) if (blob) this.#keys.delete(blob);
      this.#deps.onChange?.(updated);
      this.#deps.logger.info({ account: name }, 'ACME account deactivated');
      return updated;
    });
  }

  /** RFC 8555 §7.3.2: the CA is sent the new contact list, and it is kept here once the CA accepted it. */
  async updateContact(
    name: string,
    contact: readonly string[],
    signal?: AbortSignal,
  ): Promise<AcmeAccountRecord> {
    const list = [...contact];
    return this.#exclusive(name, async () => {
      const record = this.#active(name);
      await this.session(record, signal, ({ client }) =>
        step(`updating the contact of ACME account "${name}"`, () => client.updateAccount({ contact: list })),
      );
      const updated = await this.#patch(name, (r) => ({ ...r, contact: list }));
      this.#deps.logger.info({ account: name, contact: list }, 'ACME account contact updated');
      return updated;
    });
  }

  /**
   * Local changes the CA does not know about: whether `acme.accounts` declares the account, and the trust
   * anchors for its directory's HTTPS (`caPem: null` goes back to the system's roots).
   */
  async updateLocal(
    name: string,
    change: { readonly declared?: boolean; readonly caPem?: string | null },
  ): Promise<AcmeAccountRecord> {
    return this.#exclusive(name, () =>
      this.#patch(name, (r) => {
        const { declared: _d, caPem: _c, ...rest } = r;
        const declared = change.declared ?? r.declared === true;
        const caPem = change.caPem === undefined ? r.caPem : (change.caPem ?? undefined);
        return {
          ...rest,
          ...(declared ? { declared: true as const } : {}),
          ...(caPem !== undefined ? { caPem } : {}),
        };
      }),
    );
  }

  async #patch(name: string, fn: (r: AcmeAccountRecord) => AcmeAccountRecord): Promise<AcmeAccountRecord> {
    const now = this.#deps.clock.now().toISOString();
    const updated = await this.#deps.store.tx((tx) =>
      tx
        .collection<AcmeAccountRecord>(ACME_ACCOUNTS_COLLECTION)
        .update(name, (r) => ({ ...fn(r), updatedAt: now })),
    );
    this.#deps.onChange?.(updated);
    return updated;
  }

  /**
   * Runs `fn` with a client for the account, the directory and this account's trust and timeouts. A
   * key change left unconfirmed by an earlier crash is resolved first.
   */
  async session<T>(
    account: AcmeAccountRecord,
    signal: AbortSignal | undefined,
    fn: (session: AcmeSession) => Promise<T>,
  ): Promise<T> {
    return withAcmeCall(this.#callOptions(account.caPem, signal), async (stats) => {
      let current = account;
      if (current.pendingKeyBlob !== undefined && !this.#busy.has(current.id))
        current = await this.#reconcile(current, signal);
      if (current.status !== 'valid' || current.keyBlob === undefined) throw this.#inactive(current.id);
      const directory = await fetchDirectory(current.directoryUrl);
      const key = await this.#key(current.id, current.keyBlob);
      const client = await createClient(
        { directoryUrl: current.directoryUrl, accountKey: key, accountUrl: current.accountUrl },
        this.#deps.settings.client,
      );
      return fn({ account: current, directory, client, stats });
    });
  }

  #callOptions(caPem: string | undefined, signal: AbortSignal | undefined) {
    return { caPem, timeoutMs: this.#deps.settings.requestTimeoutMs, signal, clock: this.#deps.clock };
  }

  #active(name: string): AcmeAccountRecord {
    const record = this.get(name);
    if (record.status !== 'valid' || record.keyBlob === undefined) throw this.#inactive(name);
    return record;
  }

  #inactive(name: string): AcmeError {
    return new AcmeError(
      'ACME_ACCOUNT_DEACTIVATED',
      `ACME account "${name}" is deactivated; register a new one`,
      {
        details: { account: name },
      },
    );
  }

  async #exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    if (this.#busy.has(name)) {
      throw new AppError(
        'STORE_CONFLICT',
        `ACME account "${name}" is being changed by another request; try again`,
        {
          retryable: true,
          details: { account: name },
        },
      );
    }
    this.#busy.add(name);
    try {
      return await work();
    } finally {
      this.#busy.delete(name);
    }
  }

  async #key(name: string, blobKey: string): Promise<KeyObject> {
    const cached = this.#keys.get(blobKey);
    if (cached) return cached;
    const raw = await this.#deps.store.getBlob(blobKey);
    if (raw === undefined) {
      throw new AppError(
        'STORE_NOT_FOUND',
        `the sealed key of ACME account "${name}" is missing (${blobKey})`,
        {
          details: { account: name },
        },
      );
    }
    const keyId = blobKey.slice(blobKey.lastIndexOf('/') + 1);
    const key = await unsealPrivateKey(
      this.#deps.sealer,
      JSON.parse(raw.toString('utf8')) as SealedBlob,
      keyContext(name, keyId),
    );
    this.#keys.set(blobKey, key);
    return key;
  }

  async #finishRollover(name: string, oldBlob: string | undefined): Promise<AcmeAccountRecord> {
    const now = this.#deps.clock.now().toISOString();
    const record = this.get(name);
    const pending = record.pendingKeyBlob;
    if (pending === undefined) return record;
    const newKey = await this.#key(name, pending);
    const updated = await this.#deps.store.tx((tx) => {
      if (oldBlob && oldBlob !== pending) tx.deleteBlob(oldBlob);
      return tx.collection<AcmeAccountRecord>(ACME_ACCOUNTS_COLLECTION).update(name, (r) => {
        const { pendingKeyBlob: _p, ...rest } = r;
        return {
          ...rest,
          keyBlob: pending,
          keyThumbprint: jwkThumbprint(newKey),
          keyRolledAt: now,
          updatedAt: now,
        };
      });
    });
    if (oldBlob) this.#keys.delete(oldBlob);
    this.#deps.logger.info({ account: name }, 'ACME account key rolled over');
    return updated;
  }

  async #dropPending(name: string): Promise<void> {
    const pending = this.find(name)?.pendingKeyBlob;
    if (pending === undefined) return;
    await this.#deps.store.tx((tx) => {
      tx.deleteBlob(pending);
      tx.collection<AcmeAccountRecord>(ACME_ACCOUNTS_COLLECTION).update(name, (r) => {
        const { pendingKeyBlob: _p, ...rest } = r;
        return rest;
      });
    });
    this.#keys.delete(pending);
  }

  /**
   * Which key does the CA know? newAccount with onlyReturnExisting (§7.3.1) signed by the pending key
   * finds the account only if the key change went through.
   */
  async #reconcile(account: AcmeAccountRecord, signal: AbortSignal | undefined): Promise<AcmeAccountRecord> {
    const pending = account.pendingKeyBlob;
    if (pending === undefined) return account;
    return withAcmeCall(this.#callOptions(account.caPem, signal), async () => {
      const key = await this.#key(account.id, pending);
      const probe = await createClient(
        { directoryUrl: account.directoryUrl, accountKey: key },
        this.#deps.settings.client,
      );
      try {
        await step('checking an unfinished ACME key change', () =>
          probe.createAccount({ onlyReturnExisting: true }),
        );
      } catch (err) {
        if (isAppError(err) && problemTypeOf(err) === 'accountDoesNotExist') {
          await this.#dropPending(account.id);
          return this.get(account.id);
        }
        throw err;
      }
      if (probe.getAccountUrl() !== account.accountUrl) {
        await this.#dropPending(account.id);
        return this.get(account.id);
      }
      return this.#finishRollover(account.id, account.keyBlob);
    });
  }
}
