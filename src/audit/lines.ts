import { open } from 'node:fs/promises';

/** One line of the log file with its byte range, so a torn tail can be cut at an exact offset. */
export interface LogLine {
  /** 1-based. */
  readonly line: number;
  /** Byte offset of the first byte of the line. */
  readonly start: number;
  /** Byte offset just past the line's newline (or past its last byte when unterminated). */
  readonly end: number;
  /** The line without its newline, decoded as UTF-8. */
  readonly text: string;
  readonly terminated: boolean;
  /** True for the final line of the file (or of the range read). */
  readonly last: boolean;
}

const CHUNK = 64 * 1024;

/**
 * Streams the lines of a file in bounded memory, splitting on bytes (not characters) so offsets are
 * exact. `limit` stops at a byte offset, giving a consistent snapshot while appends continue.
 */
export async function* readLogLines(path: string, limit?: number): AsyncGenerator<LogLine> {
  let previous: Omit<LogLine, 'last'> | undefined;
  for await (const line of splitLines(path, limit)) {
    if (previous !== undefined) yield { ...previous, last: false };
    previous = line;
  }
  if (previous !== undefined) yield { ...previous, last: true };
}

async function* splitLines(path: string, limit: number | undefined): AsyncGenerator<Omit<LogLine, 'last'>> {
  const fh = await open(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(CHUNK);
    let carry: Buffer[] = [];
    let lineStart = 0;
    let pos = 0;
    let lineNo = 0;
    for (;;) {
      const want = limit === undefined ? CHUNK : Math.min(CHUNK, limit - pos);
      if (want <= 0) break;
      const { bytesRead } = await fh.read(chunk, 0, want, pos);
      if (bytesRead === 0) break;
      let from = 0;
      while (from < bytesRead) {
        const nl = chunk.indexOf(0x0a, from);
        if (nl === -1 || nl >= bytesRead) {
          carry.push(Buffer.from(chunk.subarray(from, bytesRead))); // copy: the chunk buffer is reused
          break;
        }
        carry.push(chunk.subarray(from, nl));
        const end = pos + nl + 1;
        yield {
          line: ++lineNo,
          start: lineStart,
          end,
          text: Buffer.concat(carry).toString('utf8'),
          terminated: true,
        };
        carry = [];
        lineStart = end;
        from = nl + 1;
      }
      pos += bytesRead;
    }
    if (carry.length > 0) {
      yield {
        line: ++lineNo,
        start: lineStart,
        end: pos,
        text: Buffer.concat(carry).toString('utf8'),
        terminated: false,
      };
    }
  } finally {
    await fh.close();
  }
}

/** The final line of a file and the file's size; `last` is undefined for an empty file. */
export interface LastLine {
  readonly size: number;
  readonly last: Omit<LogLine, 'line'> | undefined;
}

/**
 * Reads only the final line, backwards from the end in CHUNK-sized reads: what `open` needs to find the
 * head without reading the whole log (its line number is unknown, so it has none).
 */
export async function readLastLine(path: string): Promise<LastLine> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    if (size === 0) return { size, last: undefined };
    const chunk = Buffer.allocUnsafe(CHUNK);
    const parts: Buffer[] = [];
    let terminated: boolean | undefined;
    let pos = size;
    let start = 0;
    for (;;) {
      const from = Math.max(0, pos - CHUNK);
      const want = pos - from;
      const { bytesRead } = await fh.read(chunk, 0, want, from);
      if (bytesRead !== want) throw new Error(`${path} shrank while its last line was read`);
      let until = bytesRead; // exclusive end of this chunk's part of the line
      if (terminated === undefined) {
        terminated = chunk[bytesRead - 1] === 0x0a;
        if (terminated) until -= 1;
      }
      const nl = until === 0 ? -1 : chunk.subarray(0, until).lastIndexOf(0x0a);
      if (nl !== -1) {
        parts.unshift(Buffer.from(chunk.subarray(nl + 1, until)));
        start = from + nl + 1;
        break;
      }
      parts.unshift(Buffer.from(chunk.subarray(0, until)));
      if (from === 0) break;
      pos = from;
    }
    const text = Buffer.concat(parts).toString('utf8');
    return { size, last: { start, end: size, text, terminated, last: true } };
  } finally {
    await fh.close();
  }
}
