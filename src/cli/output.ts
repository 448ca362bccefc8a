import { isAppError, toAppError, ERROR_CATALOGUE } from '../core/errors.js';
import { EXIT_CODE_BY_CATEGORY } from './exit-codes.js';
import type { CliIo } from './context.js';

/** Prints a command's result: stable JSON with --json, else the human rendering. */
export function emit(io: CliIo, json: boolean | undefined, data: unknown, human: () => string): void {
  io.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

/** Prints an error and returns the exit code of its category. */
export function reportError(io: CliIo, json: boolean | undefined, err: unknown): number {
  const e = toAppError(err);
  const code = EXIT_CODE_BY_CATEGORY[ERROR_CATALOGUE[e.code].category];
  if (json) {
    io.stdout.write(
      `${JSON.stringify({ error: { code: e.code, message: e.message, details: e.details } }, null, 2)}\n`,
    );
  } else {
    io.stderr.write(`keywright: ${e.message} [${e.code}]\n`);
    if (!isAppError(err) || e.code === 'INTERNAL') {
      const cause = err instanceof Error ? err : e.cause;
      if (cause instanceof Error && process.env.KEYWRIGHT_DEBUG)
        io.stderr.write(`${cause.stack ?? cause.message}\n`);
    }
  }
  return code;
}

/** A simple aligned table for human output. */
export function table(rows: ReadonlyArray<Record<string, unknown>>, columns: readonly string[]): string {
  if (rows.length === 0) return '(none)';
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
