import type { ErrorCategory } from '../core/errors.js';

/** The one mapping of error categories to process exit codes (docs/errors.md). */
export const EXIT_CODE_BY_CATEGORY: Readonly<Record<ErrorCategory, number>> = {
  internal: 1,
  invalid: 2,
  too_large: 2,
  unauthenticated: 3,
  forbidden: 4,
  not_found: 5,
  conflict: 6,
  rate_limited: 7,
  unavailable: 8,
  integrity: 9,
  upstream: 10,
};
