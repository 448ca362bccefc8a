/**
 * acme-client, loaded on first use. Importing it pulls in axios, @peculiar/x509 and reflect-metadata:
 * 0.25–0.5 s of start-up on the 2-core dev box, which a daemon without ACME accounts never needs.
 * Every value import of acme-client goes through here; type imports stay static (they cost nothing).
 */
import type * as AcmeClient from 'acme-client';

type AcmeClientModule = typeof AcmeClient;

let loading: Promise<AcmeClientModule> | undefined;

/** The acme-client module, imported once per process. */
export function loadAcmeClient(): Promise<AcmeClientModule> {
  loading ??= import('acme-client').catch((err: unknown) => {
    loading = undefined; // a failed import (e.g. a broken install) may be retried by the next call
    throw err;
  });
  return loading;
}
