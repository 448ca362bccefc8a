import type { Resource } from '../access/scopes.js';

/** What services are told about: the changes that make them pull again (DESIGN §4 /v1/events). */
export const DISTRIBUTION_EVENT_TYPES = [
  'issued',
  'renewed',
  'revoked',
  'deployed',
  'rotated',
  'expiry-alert',
] as const;
export type DistributionEventType = (typeof DISTRIBUTION_EVENT_TYPES)[number];

export interface DistributionEvent {
  /** Increasing within one daemon run; SSE clients resume from it with Last-Event-ID. */
  readonly id: number;
  readonly type: DistributionEventType;
  /** `cert:<name>` or `vpn:<network>` (a rotation may touch every peer of the network). */
  readonly resource: Resource;
  readonly at: string;
  /** Non-secret facts: version, serial, generation, peers. */
  readonly details: Readonly<Record<string, string | number | boolean | readonly string[]>>;
}

export type DistributionListener = (event: DistributionEvent) => void;

/**
 * The one in-process fan-out of distribution events: the certificate and VPN services publish after a
 * change commits, and the API's server-sent events and long polls listen. Synchronous on purpose: a long
 * poll checks its ETag and subscribes in the same tick, so no commit can slip between the two.
 */
export class EventBus {
  readonly #listeners = new Set<DistributionListener>();
  readonly #history: DistributionEvent[] = [];
  readonly #historySize: number;
  readonly #onListenerError: (err: unknown) => void;
  #nextId = 1;

  constructor(
    options: {
      historySize?: number;
      /** Start ids above any earlier run's (e.g. the start time × 1000), so Last-Event-ID survives a restart. */
      firstId?: number;
      onListenerError?: (err: unknown) => void;
    } = {},
  ) {
    this.#historySize = options.historySize ?? 256;
    this.#nextId = options.firstId ?? 1;
    this.#onListenerError = options.onListenerError ?? (() => undefined);
  }

  publish(event: Omit<DistributionEvent, 'id'>): DistributionEvent {
    const published: DistributionEvent = { id: this.#nextId++, ...event };
    this.#history.push(published);
    if (this.#history.length > this.#historySize) this.#history.shift();
    for (const listener of [...this.#listeners]) {
      try {
        listener(published);
      } catch (err) {
        // One broken subscriber (a closed socket) must not keep the others, or the publisher, from going on.
        this.#onListenerError(err);
      }
    }
    return published;
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: DistributionListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Events after `id` still in the history (oldest first), for a client that reconnects. */
  since(id: number): DistributionEvent[] {
    return this.#history.filter((e) => e.id > id);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  /**
   * Resolves with the first event `match` accepts, or undefined after `timeoutMs` or when `signal`
   * aborts. Subscribes synchronously, before returning.
   */
  waitFor(
    match: (event: DistributionEvent) => boolean,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<DistributionEvent | undefined> {
    return new Promise((resolve) => {
      const finish = (event: DistributionEvent | undefined) => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener('abort', onAbort);
        resolve(event);
      };
      const onAbort = () => finish(undefined);
      const unsubscribe = this.subscribe((event) => {
        if (match(event)) finish(event);
      });
      const timer = setTimeout(onAbort, Math.max(0, timeoutMs));
      signal?.addEventListener('abort', onAbort);
      if (signal?.aborted) finish(undefined);
    });
  }
}
