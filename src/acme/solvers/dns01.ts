/**
 * dns-01 (RFC 8555 §8.4) through exec hooks, as certbot's manual hooks and lego's exec provider do: a
 * `present` hook publishes `_acme-challenge.<domain> TXT <value>`, keywright then waits until the
 * configured resolvers see it (the CA asks only once it is told to), and a `cleanup` hook removes it.
 */
import { createHash } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { AcmeError } from '../../core/errors.js';
import { hookEnvironment, runHook } from './exec.js';
import type { ChallengeSolver, ChallengeTask, SolverContext } from './port.js';

export interface DnsHookSettings {
  /** argv of the present hook, e.g. `[/usr/local/bin/dns-hook, present]`. */
  readonly present: readonly string[];
  readonly cleanup?: readonly string[] | undefined;
  readonly timeoutMs: number;
  /** `host` or `host:port` (`[v6]:port`); empty: the system's resolvers. */
  readonly resolvers: readonly string[];
  readonly checkPropagation: boolean;
  readonly propagationTimeoutMs: number;
  readonly propagationIntervalMs: number;
}

/** §8.4: the record name and the TXT value, base64url(SHA-256(key authorization)). */
export function dns01Record(task: Pick<ChallengeTask, 'identifier' | 'keyAuthorization'>): {
  name: string;
  value: string;
} {
  return {
    name: `_acme-challenge.${task.identifier.value}`,
    value: createHash('sha256').update(task.keyAuthorization).digest('base64url'),
  };
}

export class DnsHookSolver implements ChallengeSolver {
  readonly type = 'dns-01' as const;
  readonly description: string;

  constructor(private readonly settings: DnsHookSettings) {
    this.description = `dns-01 hook ${settings.present[0] ?? ''}`;
  }

  #env(task: ChallengeTask, action: 'present' | 'cleanup'): Record<string, string> {
    const record = dns01Record(task);
    return hookEnvironment({
      KEYWRIGHT_ACME_ACTION: action,
      KEYWRIGHT_ACME_DOMAIN: task.identifier.value,
      KEYWRIGHT_ACME_RECORD_NAME: record.name,
      KEYWRIGHT_ACME_RECORD_VALUE: record.value,
      ...(task.certificateName ? { KEYWRIGHT_ACME_CERTIFICATE: task.certificateName } : {}),
      // certbot --manual-auth-hook compatibility
      CERTBOT_DOMAIN: task.identifier.value,
      CERTBOT_VALIDATION: record.value,
    });
  }

  async present(task: ChallengeTask, ctx: SolverContext): Promise<void> {
    await runHook({
      label: `dns-01 present hook for ${task.identifier.value}`,
      argv: this.settings.present,
      env: this.#env(task, 'present'),
      timeoutMs: this.settings.timeoutMs,
      logger: ctx.logger,
      signal: ctx.signal,
    });
    if (this.settings.checkPropagation) {
      const record = dns01Record(task);
      await waitForTxt({
        name: record.name,
        value: record.value,
        resolvers: this.settings.resolvers,
        timeoutMs: this.settings.propagationTimeoutMs,
        intervalMs: this.settings.propagationIntervalMs,
        signal: ctx.signal,
      });
    }
  }

  async cleanup(task: ChallengeTask, ctx: SolverContext): Promise<void> {
    if (!this.settings.cleanup) return;
    await runHook({
      label: `dns-01 cleanup hook for ${task.identifier.value}`,
      argv: this.settings.cleanup,
      env: this.#env(task, 'cleanup'),
      timeoutMs: this.settings.timeoutMs,
      logger: ctx.logger,
      signal: ctx.signal,
    });
  }
}

export interface TxtWait {
  readonly name: string;
  readonly value: string;
  readonly resolvers: readonly string[];
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly signal?: AbortSignal | undefined;
}

async function lookup(resolver: Resolver, name: string): Promise<string[]> {
  try {
    // A TXT record may be split into 255-byte strings (RFC 1035 §3.3.14); they join into one value.
    return (await resolver.resolveTxt(name)).map((chunks) => chunks.join(''));
  } catch {
    return []; // NXDOMAIN, SERVFAIL, timeout: not visible yet
  }
}

/** Polls every resolver until each one answers the value, or fails naming those that do not. */
export async function waitForTxt(wait: TxtWait): Promise<void> {
  const resolvers =
    wait.resolvers.length === 0
      ? [{ label: 'system resolver', resolver: new Resolver({ timeout: 2000, tries: 1 }) }]
      : wait.resolvers.map((server) => {
          const resolver = new Resolver({ timeout: 2000, tries: 1 });
          resolver.setServers([server]);
          return { label: server, resolver };
        });
  const deadline = performance.now() + wait.timeoutMs;
  let pending = resolvers;
  let seen = new Map<string, string[]>();
  for (;;) {
    seen = new Map();
    const results = await Promise.all(
      pending.map(async (r) => ({ r, values: await lookup(r.resolver, wait.name) })),
    );
    for (const { r, values } of results) seen.set(r.label, values);
    pending = results.filter(({ values }) => !values.includes(wait.value)).map(({ r }) => r);
    if (pending.length === 0) return;
    const left = deadline - performance.now();
    if (left <= 0) break;
    await sleep(
      Math.min(wait.intervalMs, left),
      undefined,
      wait.signal ? { signal: wait.signal } : undefined,
    );
  }
  throw new AcmeError(
    'ACME_SOLVER_FAILED',
    `dns-01: TXT ${wait.name} with the expected value is not visible at ${pending.map((r) => r.label).join(', ')} after ${wait.timeoutMs} ms (check the present hook; resolvers answered: ${pending
      .map((r) => `${r.label}: ${JSON.stringify(seen.get(r.label) ?? [])}`)
      .join('; ')})`,
    { details: { record: wait.name, resolvers: pending.map((r) => r.label) } },
  );
}
