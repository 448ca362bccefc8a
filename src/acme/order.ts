/**
 * One certificate order, RFC 8555 §7.4, on acme-client's low-level calls rather than `auto()`, so the
 * order can carry IP identifiers (RFC 8738), a profile and `replaces` (RFC 9773 §5):
 * newOrder → authorizations → challenges (solvers) → poll → finalize with keywright's CSR → download.
 */
import type { Authorization, Order } from 'acme-client';
import { AcmeError, ValidationError, isAppError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { csrToPem, parseCsr } from '../pki/csr.js';
import { parseSanText } from '../pki/general-name.js';
import { formatIp, parseIp } from '../pki/ip.js';
import { decodePemBlocks, encodePem } from '../pki/pem.js';
import type { AcmeSession } from './accounts.js';
import { ariCertId } from './ari.js';
import { checkProfile } from './directory.js';
import { problemTypeOf } from './problems.js';
import { selectSolver, type SolverRule } from './solvers/select.js';
import {
  CHALLENGE_TYPES,
  type AcmeIdentifier,
  type ChallengeSolver,
  type ChallengeTask,
  type ChallengeType,
} from './solvers/port.js';
import { inBranch, step } from './transport.js';

export interface OrderRequest {
  readonly csrDer: Buffer;
  readonly sans: readonly string[];
  readonly certificateName?: string | undefined;
  readonly profile?: string | undefined;
  /** The certificate this order renews (RFC 9773 §5), PEM. */
  readonly replacesPem?: string | undefined;
  readonly preferredChain?: string | undefined;
}

export interface OrderResult {
  readonly leaf: ParsedCertificate;
  readonly certificatePem: string;
  /** Issuing CA first, as the CA sent it. */
  readonly chainPem: readonly string[];
  readonly orderUrl: string;
  readonly profile?: string;
  /** Whether `replaces` was sent and accepted. */
  readonly replaced: boolean;
}

/** SANs as given (`web.example`, `DNS:…`, `10.0.0.5`, `IP:…`) → ACME identifiers, deduplicated. */
export function identifiersFor(sans: readonly string[]): AcmeIdentifier[] {
  const seen = new Set<string>();
  const out: AcmeIdentifier[] = [];
  for (const san of sans) {
    const name = parseSanText(san.trim());
    let id: AcmeIdentifier;
    if (name.type === 'dns') id = { type: 'dns', value: name.value.toLowerCase().replace(/\.$/, '') };
    else if (name.type === 'ip') {
      const bytes = parseIp(name.value);
      if (bytes === undefined) throw badSan(san, 'not an IP address');
      id = { type: 'ip', value: formatIp(bytes) }; // RFC 8738 §3: the textual form, v6 compressed
    } else throw badSan(san, 'ACME certifies DNS names and IP addresses only');
    const key = `${id.type}:${id.value}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(id);
    }
  }
  if (out.length === 0) throw badSan('', 'an ACME order needs at least one DNS name or IP address');
  return out;
}

function badSan(san: string, why: string): ValidationError {
  return new ValidationError('INVALID_ARGUMENT', `SAN "${san}": ${why}`, { details: { field: 'sans' } });
}

interface Presented {
  readonly solver: ChallengeSolver;
  readonly task: ChallengeTask;
}

export async function runOrder(
  session: AcmeSession,
  request: OrderRequest,
  rules: readonly SolverRule[],
  logger: Logger,
  signal?: AbortSignal,
): Promise<OrderResult> {
  const { client, directory } = session;
  const identifiers = identifiersFor(request.sans);
  const csr = parseCsr(request.csrDer); // its signature is checked before anything is sent
  if (request.profile !== undefined) checkProfile(directory, request.profile);
  // RFC 9773 §5: `replaces` only towards a CA that speaks ARI.
  const replaces =
    request.replacesPem !== undefined && directory.renewalInfo !== undefined
      ? ariCertId(parseCertificate(request.replacesPem, 'the certificate being replaced'))
      : undefined;
  const payload = {
    identifiers,
    ...(request.profile !== undefined ? { profile: request.profile } : {}),
  };
  const log = logger.child({ account: session.account.id, certificate: request.certificateName });

  let order: Order;
  let replaced = false;
  try {
    order = await step('creating the ACME order', () =>
      // acme-client passes the payload through untouched; its type knows only identifiers/notBefore/notAfter.
      client.createOrder({ ...payload, ...(replaces ? { replaces } : {}) }),
    );
    replaced = replaces !== undefined;
  } catch (err) {
    // §7.4 of RFC 9773: a CA that will not accept this predecessor says alreadyReplaced; order without it.
    if (replaces === undefined || !isProblem(err, 'alreadyReplaced')) throw err;
    log.warn({ replaces }, 'the CA says the certificate was already replaced; ordering without "replaces"');
    order = await step('creating the ACME order', () => client.createOrder(payload));
  }

  const presented: Presented[] = [];
  try {
    const authorizations = await step('fetching the authorizations', () => client.getAuthorizations(order));
    const outcomes = await Promise.allSettled(
      authorizations.map((authz) =>
        inBranch(() => authorize(session, authz, request.certificateName, rules, presented, log, signal)),
      ),
    );
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;

    const url = order.url;
    // acme-client's waitForValidStatus returns the body without the order URL that finalize needs.
    order = {
      ...(await step('waiting for the order to become ready', () => client.waitForValidStatus(order))),
      url,
    };
  } finally {
    await cleanupAll(presented, log, signal);
  }

  const finalized = await step('finalizing the order', () =>
    client.finalizeOrder(order, csrToPem(request.csrDer)),
  );
  const pem = await step('downloading the certificate', () =>
    client.getCertificate(finalized, request.preferredChain),
  );
  const blocks = decodePemBlocks(pem, 'CERTIFICATE', 'the certificate chain from the CA');
  if (blocks.length === 0)
    throw new AcmeError('ACME_ERROR', 'the CA returned no certificate', { retryable: true });
  const leaf = parseCertificate(blocks[0]!, 'the certificate from the CA');
  if (!leaf.spkiDer.equals(csr.spkiDer)) {
    throw new AcmeError('ACME_ERROR', "the CA returned a certificate for a key other than the CSR's", {
      retryable: false,
      details: { serial: leaf.serialHex },
    });
  }
  const profile = (finalized as { profile?: unknown }).profile;
  return {
    leaf,
    certificatePem: leaf.pem,
    chainPem: blocks.slice(1).map((der) => encodePem('CERTIFICATE', der)),
    orderUrl: order.url,
    ...(typeof profile === 'string' ? { profile } : request.profile ? { profile: request.profile } : {}),
    replaced,
  };
}

function isProblem(err: unknown, short: string): boolean {
  return isAppError(err) && problemTypeOf(err) === short;
}

async function authorize(
  session: AcmeSession,
  authz: Authorization,
  certificateName: string | undefined,
  rules: readonly SolverRule[],
  presented: Presented[],
  log: Logger,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { client } = session;
  const identifier = authz.identifier as AcmeIdentifier;
  if (authz.status === 'valid') return; // reused authorization (§7.1.4)
  if (authz.status !== 'pending') {
    throw new AcmeError(
      'ACME_CHALLENGE_FAILED',
      `the authorization for ${identifier.value} is ${authz.status}`,
      {
        details: { identifier: identifier.value, status: authz.status },
      },
    );
  }
  const wildcard = authz.wildcard === true;
  const offered = authz.challenges
    .map((c): string => c.type)
    .filter((t): t is ChallengeType => (CHALLENGE_TYPES as readonly string[]).includes(t));
  const solver = selectSolver(rules, { identifier, wildcard, certificateName, offered });
  const challenge = authz.challenges.find((c) => c.type === solver.type)!;
  // §8.1 key authorization; acme-client returns the dns-01 digest for dns-01, so ask for the raw form.
  const keyAuthorization = await client.getChallengeKeyAuthorization({ ...challenge, type: 'http-01' });
  const task: ChallengeTask = {
    type: solver.type,
    identifier,
    wildcard,
    token: challenge.token,
    keyAuthorization,
    ...(certificateName !== undefined ? { certificateName } : {}),
  };
  const what = `${wildcard ? '*.' : ''}${identifier.value} by ${solver.type}`;
  log.debug({ identifier: identifier.value, solver: solver.description }, 'presenting challenge');
  presented.push({ solver, task });
  await solver.present(task, { logger: log, ...(signal ? { signal } : {}) });
  await step(`asking the CA to validate ${what}`, () => client.completeChallenge(challenge));
  await step(`validating ${what}`, () => client.waitForValidStatus(authz));
}

/** Always runs; a failure is logged and never replaces the order's own result. */
async function cleanupAll(
  presented: readonly Presented[],
  log: Logger,
  signal: AbortSignal | undefined,
): Promise<void> {
  const results = await Promise.allSettled(
    presented.map((p) => p.solver.cleanup(p.task, { logger: log, ...(signal ? { signal } : {}) })),
  );
  results.forEach((r, i) => {
    if (r.status === 'rejected') {
      const p = presented[i]!;
      log.error(
        { err: r.reason as unknown, identifier: p.task.identifier.value, solver: p.solver.description },
        'challenge cleanup failed',
      );
    }
  });
}
