import type { Server, ServerResponse } from 'node:http';

/**
 * Runs `fn` once, on the event-loop turn after `server` has finished its first response, or after
 * `maxWaitMs`, whichever comes first. The daemon starts its catch-up sweeps this way, so their CPU does
 * not hold up the answer to the first readiness probe. Returns a cancel function (a stop before either).
 */
export function afterFirstAnswer(server: Server, maxWaitMs: number, fn: () => void): () => void {
  let pending = true;
  const cancel = () => {
    pending = false;
    clearTimeout(timer);
    server.off('request', onRequest);
  };
  const fire = () => {
    if (!pending) return;
    cancel();
    setImmediate(fn);
  };
  // 'close' also covers a response whose client went away before it was sent
  const onRequest = (_req: unknown, res: ServerResponse) => res.once('close', fire);
  const timer = setTimeout(fire, maxWaitMs);
  server.on('request', onRequest);
  return cancel;
}
