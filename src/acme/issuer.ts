/**
 * `acme:<account>` as an Issuer: a CSR in, a certificate and its chain out, with revocation through the
 * account (RFC 8555 §7.6) and renewal advice from ARI (RFC 9773) when the directory offers it.
 */
import type { Clock } from '../core/clock.js';
import { AcmeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type {
  IssueRequest,
  IssueResult,
  Issuer,
  IssuerRef,
  OpContext,
  RenewalAdvisor,
  RevokeRequest,
  Revoker,
} from '../issuer/port.js';
import { parseCertificate } from '../pki/certificate.js';
import { REVOCATION_REASONS } from '../pki/revocation.js';
import type { Store, StoredRecord } from '../store/port.js';
import type { AcmeAccounts, AcmeSession } from './accounts.js';
import { ariCertId, fetchRenewalInfo, pickRenewalTime, type RenewalInfo } from './ari.js';
import { runOrder } from './order.js';
import type { SolverRule } from './solvers/select.js';
import { step } from './transport.js';

export const ACME_RENEWAL_INFO_COLLECTION = 'acmeRenewalInfo';

/** What ARI said about one certificate, kept so Retry-After is honoured across restarts (§4.3.2). */
export interface RenewalInfoRecord extends StoredRecord {
  /** The RFC 9773 certificate id. */
  readonly id: string;
  readonly account: string;
  readonly serialHex: string;
  readonly windowStart: string;
  readonly windowEnd: string;
  readonly explanationUrl?: string;
  /** A uniformly random moment inside the window (§4.3.1), re-drawn only when the window moves. */
  readonly renewAt: string;
  /** Not before this is the CA asked again. */
  readonly nextCheckAt: string;
  readonly checkedAt: string;
  /** Consecutive failed checks: the next one backs off exponentially (§4.3.3). */
  readonly failures: number;
}

const ARI_FAILURE_BACKOFF_MS = 60_000;
const ARI_FAILURE_BACKOFF_MAX_MS = 6 * 3_600_000;

export interface AcmeIssuerDeps {
  readonly accounts: AcmeAccounts;
  readonly rules: () => readonly SolverRule[];
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly random: () => number;
  /** Registers a declared account that is not registered yet (AcmeService); `actor` is recorded. */
  readonly ensureAccount?: (name: string, actor: string) => Promise<void>;
}

export class AcmeIssuer implements Issuer, Revoker, RenewalAdvisor {
  readonly ref: IssuerRef;

  constructor(
    private readonly deps: AcmeIssuerDeps,
    readonly accountName: string,
  ) {
    this.ref = `acme:${accountName}`;
  }

  async issue(request: IssueRequest, ctx: OpContext): Promise<IssueResult> {
    await this.deps.ensureAccount?.(this.accountName, ctx.actor);
    const account = this.deps.accounts.get(this.accountName);
    return this.deps.accounts.session(account, ctx.signal, async (session) => {
      const started = this.deps.clock.nowMs();
      const result = await runOrder(
        session,
        {
          csrDer: request.csrDer,
          sans: request.sans,
          certificateName: request.certificateName,
          profile: request.profile,
          replacesPem: request.replaces?.certificatePem,
          preferredChain: session.account.preferredChain,
        },
        this.deps.rules(),
        ctx.logger,
        ctx.signal,
      );
      const window = await this.#check(session, result.certificatePem).catch((err: unknown) => {
        ctx.logger.warn({ err, account: this.accountName }, 'ARI check of the new certificate failed');
        return undefined;
      });
      ctx.logger.info(
        {
          account: this.accountName,
          certificate: request.certificateName,
          serial: result.leaf.serialHex,
          ms: this.deps.clock.nowMs() - started,
          requests: session.stats.requests,
          badNonces: session.stats.badNonces,
          replaced: result.replaced,
        },
        'ACME certificate issued',
      );
      return {
        issuer: this.ref,
        certificatePem: result.certificatePem,
        chainPem: result.chainPem,
        serialHex: result.leaf.serialHex,
        notBefore: result.leaf.notBefore,
        notAfter: result.leaf.notAfter,
        ...(window ? { renewalWindow: window } : {}),
      };
    });
  }

  async revoke(request: RevokeRequest, ctx: OpContext): Promise<void> {
    const account = this.deps.accounts.get(this.accountName);
    await this.deps.accounts.session(account, ctx.signal, ({ client }) =>
      step(`revoking certificate ${request.serialHex}`, () =>
        client.revokeCertificate(request.certificatePem, { reason: REVOCATION_REASONS[request.reason] }),
      ),
    );
  }

  /**
   * RFC 9773: the CA's suggested window for `certificatePem`, or undefined when its directory has no
   * renewalInfo. The CA is asked only once the stored Retry-After has passed.
   */
  async renewalWindow(certificatePem: string, ctx: OpContext): Promise<IssueResult['renewalWindow']> {
    const record = this.renewalInfo(certificatePem);
    if (record && this.deps.clock.nowMs() < Date.parse(record.nextCheckAt)) return windowOf(record);
    const account = this.deps.accounts.get(this.accountName);
    return this.deps.accounts.session(account, ctx.signal, (session) => this.#check(session, certificatePem));
  }

  /** The stored ARI state of a certificate, with the chosen renewal moment (`renewAt`). */
  renewalInfo(certificatePem: string): RenewalInfoRecord | undefined {
    const certId = ariCertId(parseCertificate(certificatePem));
    return this.deps.store.collection<RenewalInfoRecord>(ACME_RENEWAL_INFO_COLLECTION).find(certId);
  }

  async #check(session: AcmeSession, certificatePem: string): Promise<IssueResult['renewalWindow']> {
    const url = session.directory.renewalInfo;
    if (url === undefined) return undefined;
    const cert = parseCertificate(certificatePem);
    const certId = ariCertId(cert);
    const collection = this.deps.store.collection<RenewalInfoRecord>(ACME_RENEWAL_INFO_COLLECTION);
    const previous = collection.find(certId);
    const now = this.deps.clock.now();
    let info: RenewalInfo;
    try {
      info = await fetchRenewalInfo(url, certId, () => this.deps.clock.now());
    } catch (err) {
      const failures = (previous?.failures ?? 0) + 1;
      const wait = Math.min(ARI_FAILURE_BACKOFF_MS * 2 ** (failures - 1), ARI_FAILURE_BACKOFF_MAX_MS);
      if (previous) {
        await this.deps.store.tx((tx) =>
          tx.collection<RenewalInfoRecord>(ACME_RENEWAL_INFO_COLLECTION).put({
            ...previous,
            failures,
            nextCheckAt: new Date(now.getTime() + wait).toISOString(),
          }),
        );
        this.deps.logger.warn({ err, certId, failures }, 'ARI check failed; keeping the last window');
        return windowOf({ ...previous, nextCheckAt: new Date(now.getTime() + wait).toISOString() });
      }
      throw err;
    }
    const sameWindow =
      previous !== undefined &&
      Date.parse(previous.windowStart) === info.window.start.getTime() &&
      Date.parse(previous.windowEnd) === info.window.end.getTime();
    const renewAt = sameWindow
      ? previous.renewAt
      : pickRenewalTime(info.window, this.deps.random).toISOString();
    const record: RenewalInfoRecord = {
      id: certId,
      account: this.accountName,
      serialHex: cert.serialHex,
      windowStart: info.window.start.toISOString(),
      windowEnd: info.window.end.toISOString(),
      ...(info.explanationUrl ? { explanationUrl: info.explanationUrl } : {}),
      renewAt,
      nextCheckAt: info.retryAfter.toISOString(),
      checkedAt: now.toISOString(),
      failures: 0,
    };
    await this.deps.store.tx((tx) =>
      tx.collection<RenewalInfoRecord>(ACME_RENEWAL_INFO_COLLECTION).put(record),
    );
    if (!sameWindow && previous !== undefined) {
      this.deps.logger.info({ certId, windowStart: record.windowStart, renewAt }, 'ARI window moved');
    }
    return windowOf(record);
  }
}

function windowOf(record: RenewalInfoRecord): NonNullable<IssueResult['renewalWindow']> {
  return {
    start: new Date(record.windowStart),
    end: new Date(record.windowEnd),
    retryAfter: new Date(record.nextCheckAt),
  };
}

export function isAcmeRef(ref: string): ref is `acme:${string}` {
  return ref.startsWith('acme:');
}

export function accountOfRef(ref: string): string {
  if (!isAcmeRef(ref)) {
    throw new AcmeError(
      'ACME_ACCOUNT_NOT_FOUND',
      `"${ref}" is not an ACME issuer reference (acme:<account>)`,
    );
  }
  return ref.slice('acme:'.length);
}
