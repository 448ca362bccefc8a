import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';

/** The longest a client may ask a request to be held; more is refused, not clamped, so typos show. */
export const MAX_WAIT_SECONDS = 300;

/** `?wait=SECONDS` (0–300). Coerced from the query string; anything else is a 400 naming `wait`. */
export const waitParam = z.coerce
  .number({ error: 'wait: give whole seconds from 0 to 300' })
  .int('wait: give whole seconds from 0 to 300')
  .min(0, 'wait: give whole seconds from 0 to 300')
  .max(MAX_WAIT_SECONDS, `wait: at most ${MAX_WAIT_SECONDS} seconds`)
  .optional();

export interface HoldOptions {
  /** Seconds the client allows; 0 or absent answers at once. */
  readonly waitSeconds: number | undefined;
  /** True while the caller's copy is still current (its If-None-Match matches the current ETag). */
  readonly unchanged: () => boolean;
  /**
   * Resolves on a change that may concern the caller, after `ms`, or when `signal` aborts. It must
   * subscribe before returning (synchronously), so a change right after `unchanged()` is not missed.
   */
  readonly waitForChange: (ms: number, signal: AbortSignal) => Promise<unknown>;
}

export type Hold = (reply: FastifyReply, options: HoldOptions) => Promise<void>;

/**
 * Long polls for one plugin: `hold` keeps a request open while the caller's copy is current, until a
 * change, the wait's end, the client going away or the server closing (a graceful stop must not wait
 * minutes for held requests). The caller then answers 304 or the new representation as usual.
 */
export function longPolls(app: FastifyInstance): Hold {
  const held = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const abort of held) abort.abort();
  });
  return async (reply, options) => {
    const { waitSeconds } = options;
    if (waitSeconds === undefined || waitSeconds <= 0 || !options.unchanged()) return;
    const abort = new AbortController();
    held.add(abort);
    const onClose = () => abort.abort(); // the client went away
    reply.raw.once('close', onClose);
    try {
      const deadline = Date.now() + waitSeconds * 1000;
      while (!abort.signal.aborted && options.unchanged()) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        await options.waitForChange(left, abort.signal);
      }
    } finally {
      reply.raw.off('close', onClose);
      held.delete(abort);
    }
  };
}
