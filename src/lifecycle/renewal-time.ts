import type { RenewBefore } from './records.js';

/**
 * When to renew a certificate (cert-manager's RenewalTime, with step-ca's jitter): by default once 2/3 of
 * its lifetime has passed; or `renewBefore` the end (a duration, or a percentage of the lifetime). A
 * renewBefore at or beyond the lifetime falls back to the default, so a short-lived certificate is not
 * renewed the moment it is issued. Jitter (a fraction in [0, 1), scaled to 1/20 of the lifetime, only
 * ever earlier) spreads renewals of certificates issued together. Truncated to the second.
 */
export function renewalTime(
  notBefore: Date,
  notAfter: Date,
  renewBefore: RenewBefore | undefined,
  jitter = 0,
): Date {
  const start = notBefore.getTime();
  const end = notAfter.getTime();
  const lifetime = end - start;
  if (lifetime <= 0) return new Date(Math.floor(start / 1000) * 1000);
  let before = lifetime / 3;
  if (renewBefore !== undefined) {
    const wanted = 'ms' in renewBefore ? renewBefore.ms : (lifetime * renewBefore.percent) / 100;
    if (wanted > 0 && wanted < lifetime) before = wanted;
  }
  const spread = (lifetime / 20) * Math.min(Math.max(jitter, 0), 0.999_999);
  const at = Math.max(start, end - before - spread);
  return new Date(Math.floor(at / 1000) * 1000);
}
