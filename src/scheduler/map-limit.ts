/**
 * Runs `fn` over items with at most `limit` in flight, results in input order, each settled on its own:
 * one certificate failing to renew never stops the sweep from renewing the others. Once `signal` is
 * aborted no new item starts; those left get a rejected result with the abort reason.
 */
export async function mapLimit<T, R>(
  items: Iterable<T>,
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<PromiseSettledResult<R>[]> {
  const list = [...items];
  const results: PromiseSettledResult<R>[] = new Array<PromiseSettledResult<R>>(list.length);
  const width = Math.max(1, Math.min(Math.floor(limit) || 1, list.length));
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < list.length; i = next++) {
      if (signal?.aborted) {
        results[i] = { status: 'rejected', reason: signal.reason as unknown };
        continue;
      }
      try {
        results[i] = { status: 'fulfilled', value: await fn(list[i] as T, i) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}
