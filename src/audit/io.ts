import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * The file operations the audit log appends through. A seam so tests can make a write or an fsync fail
 * (root ignores permission bits, so a read-only file is no test) and count fsyncs; the daemon uses
 * `nodeAuditIo`.
 */
export interface AuditAppendHandle {
  size(): Promise<number>;
  /** Writes all of `data` at the end of the file. */
  write(data: Buffer): Promise<void>;
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export interface AuditFileIo {
  /** Opens an existing log for appending; never creates it (a vanished log is a failure, not a fresh start). */
  openAppend(path: string): Promise<AuditAppendHandle>;
}

export const nodeAuditIo: AuditFileIo = {
  async openAppend(path) {
    const fh = await open(path, constants.O_WRONLY | constants.O_APPEND);
    return {
      size: async () => (await fh.stat()).size,
      async write(data) {
        let done = 0;
        while (done < data.length) {
          const { bytesWritten } = await fh.write(data, done, data.length - done);
          if (bytesWritten === 0) throw new Error('write made no progress');
          done += bytesWritten;
        }
      },
      sync: () => fh.sync(),
      truncate: (length) => fh.truncate(length),
      close: () => fh.close(),
    };
  },
};
