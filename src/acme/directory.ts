/**
 * ACME directories (RFC 8555 §7.1.1): well-known aliases, fetching and checking the directory object,
 * and the extension fields keywright uses (RFC 9773 `renewalInfo`, draft-ietf-acme-profiles
 * `meta.profiles`).
 */
import { AcmeError, ValidationError } from '../core/errors.js';
import { getJson, step } from './transport.js';

/** Public CAs by short name, for `--directory letsencrypt`. */
export const DIRECTORY_ALIASES: Readonly<Record<string, string>> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
  zerossl: 'https://acme.zerossl.com/v2/DV90',
  google: 'https://dv.acme-v02.api.pki.goog/directory',
  'google-staging': 'https://dv.acme-v02.test-api.pki.goog/directory',
};

/** An alias or an https URL; the alias it came from, when it was one. */
export function resolveDirectoryUrl(input: string): { url: string; alias?: string } {
  const aliased = DIRECTORY_ALIASES[input];
  if (aliased !== undefined) return { url: aliased, alias: input };
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `directory "${input}" is neither a known alias (${Object.keys(DIRECTORY_ALIASES).join(', ')}) nor a URL`,
      { details: { field: 'directory' } },
    );
  }
  // RFC 8555 §6.1: ACME runs over HTTPS only.
  if (url.protocol !== 'https:') {
    throw new ValidationError('INVALID_ARGUMENT', `directory URL must use https://, got ${url.protocol}//`, {
      details: { field: 'directory' },
    });
  }
  return { url: url.toString() };
}

export interface AcmeDirectory {
  readonly url: string;
  readonly newNonce: string;
  readonly newAccount: string;
  readonly newOrder: string;
  readonly revokeCert?: string;
  readonly keyChange?: string;
  /** RFC 9773 §6.1: present when the CA offers ACME Renewal Information. */
  readonly renewalInfo?: string;
  readonly meta: {
    readonly termsOfService?: string;
    readonly website?: string;
    readonly externalAccountRequired: boolean;
    /** draft-ietf-acme-profiles §3: profile name → human-readable description. */
    readonly profiles: Readonly<Record<string, string>>;
  };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Checks a directory body; what is missing is named. Exported for the unit tests. */
export function parseDirectory(url: string, body: unknown): AcmeDirectory {
  const d = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const missing = ['newNonce', 'newAccount', 'newOrder'].filter((k) => str(d[k]) === undefined);
  if (missing.length > 0) {
    throw new AcmeError(
      'ACME_DIRECTORY_UNREACHABLE',
      `${url} is not an ACME directory: it has no ${missing.join(', ')} (RFC 8555 §7.1.1)`,
      { retryable: false, details: { url, missing } },
    );
  }
  const meta = (typeof d.meta === 'object' && d.meta !== null ? d.meta : {}) as Record<string, unknown>;
  const profiles: Record<string, string> = {};
  if (typeof meta.profiles === 'object' && meta.profiles !== null) {
    for (const [name, description] of Object.entries(meta.profiles as Record<string, unknown>)) {
      profiles[name] = typeof description === 'string' ? description : '';
    }
  }
  const optional = (k: string) => (str(d[k]) === undefined ? {} : { [k]: str(d[k])! });
  const termsOfService = str(meta.termsOfService);
  const website = str(meta.website);
  return {
    url,
    newNonce: str(d.newNonce)!,
    newAccount: str(d.newAccount)!,
    newOrder: str(d.newOrder)!,
    ...optional('revokeCert'),
    ...optional('keyChange'),
    ...optional('renewalInfo'),
    meta: {
      ...(termsOfService ? { termsOfService } : {}),
      ...(website ? { website } : {}),
      externalAccountRequired: meta.externalAccountRequired === true,
      profiles,
    },
  };
}

/** GET the directory (inside a withAcmeCall scope); unreachable, non-200 and non-ACME answers are named. */
export async function fetchDirectory(url: string): Promise<AcmeDirectory> {
  const resp = await step(`fetching the ACME directory ${url}`, () => getJson(url));
  if (resp.status !== 200) {
    throw new AcmeError(
      'ACME_DIRECTORY_UNREACHABLE',
      `fetching the ACME directory ${url}: HTTP ${resp.status}; is this the directory URL?`,
      { retryable: resp.status >= 500 || resp.status === 429, details: { url, status: resp.status } },
    );
  }
  return parseDirectory(url, resp.data);
}

/** Checks a requested profile against `meta.profiles` before any order is placed. */
export function checkProfile(directory: AcmeDirectory, profile: string): void {
  const offered = Object.keys(directory.meta.profiles);
  if (offered.includes(profile)) return;
  throw new AcmeError(
    'ACME_PROFILE_UNKNOWN',
    offered.length === 0
      ? `profile "${profile}": the directory ${directory.url} offers no ACME profiles (no meta.profiles)`
      : `profile "${profile}" is not offered by ${directory.url}; it offers: ${offered.join(', ')}`,
    { details: { profile, offered } },
  );
}
