import { join } from 'node:path';

/** Files the app layer owns in the data directory (the store, keys and audit modules name their own). */
export function appPaths(dataDir: string) {
  return {
    /** Where a running daemon says how to reach it: URL and pid (no secrets). */
    daemonInfo: join(dataDir, 'daemon.json'),
    /** The internal root certificate: the trust anchor for the daemon's HTTPS and for clients. */
    rootCertificate: join(dataDir, 'ca.pem'),
    auditLog: join(dataDir, 'audit.log'),
  };
}
