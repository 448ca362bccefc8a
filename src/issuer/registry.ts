import { IssuerError } from '../core/errors.js';
import type { Issuer, IssuerRef } from './port.js';

/** The issuers the daemon knows, by reference; app/ registers them, lifecycle/ resolves them. */
export class IssuerRegistry {
  readonly #issuers = new Map<string, Issuer>();

  register(issuer: Issuer): void {
    this.#issuers.set(issuer.ref, issuer);
  }

  unregister(ref: IssuerRef): void {
    this.#issuers.delete(ref);
  }

  /** Throws ISSUER_NOT_FOUND naming what exists. */
  resolve(ref: IssuerRef): Issuer {
    const issuer = this.#issuers.get(ref);
    if (issuer === undefined) {
      throw new IssuerError(
        'ISSUER_NOT_FOUND',
        `unknown issuer "${ref}"; known: ${[...this.#issuers.keys()].sort().join(', ') || 'none'}`,
        {
          details: { issuer: ref },
        },
      );
    }
    return issuer;
  }

  refs(): IssuerRef[] {
    return [...this.#issuers.keys()].sort() as IssuerRef[];
  }
}
