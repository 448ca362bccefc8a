import type { z } from 'zod';
import { ApiError } from '../core/errors.js';

/** Validates a body, query or params object at the edge; the error names every bad field. */
export function parseInput<S extends z.ZodType>(
  schema: S,
  input: unknown,
  where: 'body' | 'query' | 'params',
): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.flatMap((issue) => {
    const base = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => ({ field: base ? `${base}.${k}` : k, message: 'unknown field' }));
    }
    return [{ field: base || where, message: issue.message }];
  });
  throw new ApiError(
    'API_BAD_REQUEST',
    `invalid ${where}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`,
    {
      details: { in: where, issues },
    },
  );
}
