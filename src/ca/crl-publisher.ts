/**
 * One CA's published CRL (RFC 5280 §5): the latest signed CRL kept in memory, rebuilt after every
 * revocation and once half of its validity has passed, so relying parties never hold one past its
 * nextUpdate. The CRL number (§5.2.3) is persisted before a CRL is published, so it only increases,
 * across restarts too. Rebuilds are serialized; revocations that arrive during a build share the next.
 *
 * A CA whose key went offline (disable-key) cannot sign: it serves the final CRL stored when its key
 * was disabled, until that one expires.
 */
import type { Clock } from '../core/clock.js';
import { CaError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';
import type { Store, StoredRecord, StoreTx } from '../store/port.js';
import type { KeyObject } from 'node:crypto';
import type { ParsedCertificate } from '../pki/certificate.js';
import { parseCrl } from '../pki/crl.js';
import { encodePem } from '../pki/pem.js';
import { buildCrl, type BuiltCrl, type CrlEntry } from './crl.js';
import type { LedgerRecord } from './ledger.js';

export const CRL_STATE_COLLECTION = 'caCrl';

/** Per CA: the last CRL number used and where its final CRL lies once its key is offline. */
export interface CrlStateRecord extends StoredRecord {
  /** The CA name. */
  readonly id: string;
  /** Decimal: CRL numbers may exceed 2^53. */
  readonly crlNumber: string;
  readonly thisUpdate: string;
  readonly nextUpdate: string;
  /** Blob of the last CRL signed before the key went offline. */
  readonly finalCrlBlob?: string;
}

export interface CrlPublisherOptions {
  readonly ca: string;
  readonly store: Store;
  readonly clock: Clock;
  readonly logger?: Logger;
  /** nextUpdate = thisUpdate + validityMs. */
  readonly validityMs: number;
  /** The CA certificate and key; rejects with CA_KEY_UNAVAILABLE when the key is offline. */
  readonly signer: () => Promise<{ certificate: ParsedCertificate; key: KeyObject }>;
  /** The CA's revoked ledger entries. */
  readonly revoked: () => readonly LedgerRecord[];
}

const finalBlobKey = (ca: string): string => `crl/${ca}/final`;

function entriesOf(records: readonly LedgerRecord[]): CrlEntry[] {
  return records.map((r) => ({
    serialHex: r.serialHex,
    revokedAt: new Date(r.revokedAt!),
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
  }));
}

export class CrlPublisher {
  readonly ca: string;
  readonly #o: CrlPublisherOptions;
  readonly #logger: Logger;
  #current: BuiltCrl | undefined;
  #running: Promise<BuiltCrl> | undefined;
  #queued: Promise<BuiltCrl> | undefined;

  constructor(options: CrlPublisherOptions) {
    this.#o = options;
    this.ca = options.ca;
    this.#logger = options.logger ?? silentLogger;
  }

  #state(): CrlStateRecord | undefined {
    return this.#o.store.collection<CrlStateRecord>(CRL_STATE_COLLECTION).find(this.ca);
  }

  /** Whether the CA still signs its own CRLs (its key is in the store). */
  get offline(): boolean {
    return this.#state()?.finalCrlBlob !== undefined;
  }

  /** The CRL to serve: the current one, rebuilt first when none exists or it is due. */
  async current(): Promise<BuiltCrl> {
    if (this.offline) return this.#finalCrl();
    if (this.#current === undefined || this.refreshDue(this.#o.clock.now())) return this.rebuild();
    return this.#current;
  }

  /**
   * Whether a rebuild is due at `now`: no CRL yet, or half of its validity gone (the scheduler asks this;
   * the margin leaves half the validity for a failing rebuild to be retried before relying parties see
   * an expired CRL). Never due for an offline CA: it cannot sign.
   */
  refreshDue(now: Date): boolean {
    if (this.offline) return false;
    const c = this.#current;
    if (c === undefined) return true;
    const half = (c.nextUpdate.getTime() - c.thisUpdate.getTime()) / 2;
    return now.getTime() >= c.thisUpdate.getTime() + half;
  }

  /** Builds, numbers and publishes a new CRL. Calls during a build share one build that starts after it. */
  rebuild(): Promise<BuiltCrl> {
    if (this.#queued) return this.#queued;
    if (this.#running === undefined) return this.#start();
    const after = this.#running.then(
      () => undefined,
      () => undefined,
    );
    this.#queued = after.then(() => {
      this.#queued = undefined;
      return this.#start();
    });
    return this.#queued;
  }

  #start(): Promise<BuiltCrl> {
    const p = this.#build().finally(() => {
      if (this.#running === p) this.#running = undefined;
    });
    this.#running = p;
    return p;
  }

  async #build(
    validityMs = this.#o.validityMs,
    commit?: (tx: StoreTx, crl: BuiltCrl) => void,
  ): Promise<BuiltCrl> {
    const signer = await this.#o.signer();
    const previous = this.#state();
    const crlNumber = (previous ? BigInt(previous.crlNumber) : 0n) + 1n;
    const crl = buildCrl({
      issuer: signer,
      entries: entriesOf(this.#o.revoked()),
      crlNumber,
      clock: this.#o.clock,
      validityMs,
    });
    // the number is durable before anyone sees the CRL: a crash can skip a number, never reuse one
    await this.#o.store.tx((tx) => {
      const state: CrlStateRecord = {
        id: this.ca,
        crlNumber: crl.crlNumber.toString(),
        thisUpdate: crl.thisUpdate.toISOString(),
        nextUpdate: crl.nextUpdate.toISOString(),
      };
      tx.collection<CrlStateRecord>(CRL_STATE_COLLECTION).put(state);
      commit?.(tx, crl);
    });
    this.#current = crl;
    this.#logger.info(
      { ca: this.ca, crlNumber: crl.crlNumber.toString(), entries: crl.count, nextUpdate: crl.nextUpdate },
      'published a CRL',
    );
    return crl;
  }

  /**
   * Signs the CA's last CRL (valid for `validityMs`) and stores it with `commit`'s changes in one
   * transaction (disable-key removes the key blob there). From then on that CRL is served.
   */
  async finalize(validityMs: number, commit: (tx: StoreTx) => void): Promise<BuiltCrl> {
    await this.#running?.catch(() => undefined);
    const crl = await this.#build(validityMs, (tx, built) => {
      tx.putBlob(finalBlobKey(this.ca), built.der);
      tx.collection<CrlStateRecord>(CRL_STATE_COLLECTION).update(this.ca, (s) => ({
        ...s,
        finalCrlBlob: finalBlobKey(this.ca),
      }));
      commit(tx);
    });
    return crl;
  }

  async #finalCrl(): Promise<BuiltCrl> {
    if (this.#current) return this.#current;
    const state = this.#state()!;
    const der = await this.#o.store.getBlob(state.finalCrlBlob!);
    if (der === undefined) {
      throw new CaError('CA_KEY_UNAVAILABLE', `CA ${this.ca} is offline and its final CRL is missing`, {
        details: { ca: this.ca },
      });
    }
    const parsed = parseCrl(der);
    this.#current = {
      der,
      pem: encodePem('X509 CRL', der),
      crlNumber: parsed.crlNumber ?? BigInt(state.crlNumber),
      thisUpdate: parsed.thisUpdate,
      nextUpdate: parsed.nextUpdate ?? new Date(state.nextUpdate),
      count: parsed.entries.length,
    };
    return this.#current;
  }
}
