import { ValidationError } from './errors.js';

/** Durations are parsed here and only here: `90d`, `12h`, `30m`, `45s`, `500ms`, compounds like `1d12h`, or ISO-8601 `P90D`, `PT12H`. */

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const SHORT = /^(\d+)(ms|s|m|h|d|w)/;
const ISO = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

export function parseDuration(input: string, field = 'duration'): number {
  const text = input.trim();
  const fail = (): never => {
    throw new ValidationError(
      'DURATION_INVALID',
      `${field}: "${input}" is not a duration; use e.g. 90d, 12h, 30m, 1d12h or P90D`,
      {
        details: { field, value: input },
      },
    );
  };
  if (text.length === 0 || text.length > 64) fail();
  if (text.startsWith('P')) {
    const m = ISO.exec(text);
    if (!m || text === 'P' || text.endsWith('T')) return fail();
    const [, w, d, h, min, s] = m;
    const ms =
      num(w) * UNIT_MS.w +
      num(d) * UNIT_MS.d +
      num(h) * UNIT_MS.h +
      num(min) * UNIT_MS.m +
      Math.round(num(s) * 1000);
    return ms > 0 ? ms : fail();
  }
  let rest = text;
  let total = 0;
  while (rest.length > 0) {
    const m = SHORT.exec(rest);
    if (!m) return fail();
    total += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
    rest = rest.slice(m[0].length);
  }
  return total > 0 && Number.isSafeInteger(total) ? total : fail();
}

function num(v: string | undefined): number {
  return v === undefined ? 0 : Number(v);
}

/** The largest exact unit: 7776000000 → "90d", 5400000 → "90m". */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}

export const MS = UNIT_MS;
