import { constants } from 'node:fs';
import { open, stat } from 'node:fs/promises';

/**
 * The file operations the audit log appends through. A seam so tests can make a write or an fsync fail
 * (root ignores permission bits, so a read-only file is no test) and count fsyncs; the daemon uses
 * `nodeAuditIo`. The log keeps one handle open between commits and opens a new one after any failure.
 */
export interface AuditAppendHandle {
  /**
   * The size of the file at the log's path. Rejects when the path no longer names the file this handle
   * has open (removed, moved or replaced since), so appends never go to a file nobody will read.
   */
  size(): Promise<number>;
  /** Writes all of `data` at the end of the file. */
  write(data: Buffer): Promise<void>;
  /** Makes the written bytes and the new size durable (fdatasync: an append needs no other metadata). */
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
    let opened: { dev: number; ino: number };
    try {
      opened = await fh.stat();
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    return {
      async size() {
        // By path, not fstat: only the path tells whether the file we hold is still the log.
        const named = await stat(path);
        if (named.ino !== opened.ino || named.dev !== opened.dev) {
          throw Object.assign(new Error(`${path} is no longer the file that was opened`), { code: 'ESTALE' });
        }
        return named.size;
      },
      async write(data) {
        let done = 0;
        while (done < data.length) {
          const { bytesWritten } = await fh.write(data, done, data.length - done);
          if (bytesWritten === 0) throw new Error('write made no progress');
          done += bytesWritten;
        }
      },
      // fdatasync flushes the size change with the data (it is needed to read the data back), which
      // is all an append or a truncate changes; the mtime it skips is not worth a second journal write.
      sync: () => fh.datasync(),
      truncate: (length) => fh.truncate(length),
      close: () => fh.close(),
    };
  },
};
