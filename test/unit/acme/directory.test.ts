import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { checkProfile, parseDirectory, resolveDirectoryUrl } from '../../../src/acme/directory.js';
import { isAppError } from '../../../src/core/errors.js';

describe('ACME directories', () => {
  test('aliases of the public CAs; URLs must be https', () => {
    assert.deepEqual(resolveDirectoryUrl('letsencrypt'), {
      url: 'https://acme-v02.api.letsencrypt.org/directory',
      alias: 'letsencrypt',
    });
    assert.equal(
      resolveDirectoryUrl('letsencrypt-staging').url,
      'https://acme-staging-v02.api.letsencrypt.org/directory',
    );
    assert.equal(resolveDirectoryUrl('zerossl').url, 'https://acme.zerossl.com/v2/DV90');
    assert.equal(resolveDirectoryUrl('google').url, 'https://dv.acme-v02.api.pki.goog/directory');
    assert.deepEqual(resolveDirectoryUrl('https://ca.internal:14000/dir'), {
      url: 'https://ca.internal:14000/dir',
    });
    assert.throws(
      () => resolveDirectoryUrl('http://ca.internal/dir'),
      (e) => isAppError(e, 'INVALID_ARGUMENT'),
    );
    assert.throws(() => resolveDirectoryUrl('letsencrpyt'), /neither a known alias .* nor a URL/);
  });

  test('a directory needs newNonce, newAccount and newOrder; the extensions are read', () => {
    assert.throws(
      () => parseDirectory('https://x/dir', { newNonce: 'https://x/n' }),
      (e) => isAppError(e, 'ACME_DIRECTORY_UNREACHABLE') && /no newAccount, newOrder/.test(e.message),
    );
    const d = parseDirectory('https://x/dir', {
      newNonce: 'https://x/n',
      newAccount: 'https://x/a',
      newOrder: 'https://x/o',
      revokeCert: 'https://x/r',
      keyChange: 'https://x/k',
      renewalInfo: 'https://x/ri',
      meta: {
        termsOfService: 'https://x/tos',
        externalAccountRequired: true,
        profiles: { classic: 'The same profile you know and love', shortlived: 'A short-lived cert' },
      },
    });
    assert.equal(d.renewalInfo, 'https://x/ri');
    assert.equal(d.meta.externalAccountRequired, true);
    assert.deepEqual(Object.keys(d.meta.profiles), ['classic', 'shortlived']);
    checkProfile(d, 'shortlived');
    assert.throws(
      () => checkProfile(d, 'tlsclient'),
      (e) => isAppError(e, 'ACME_PROFILE_UNKNOWN') && /offers: classic, shortlived/.test(e.message),
    );
    const bare = parseDirectory('https://x/dir', { newNonce: 'n', newAccount: 'a', newOrder: 'o' });
    assert.equal(bare.renewalInfo, undefined);
    assert.equal(bare.meta.externalAccountRequired, false);
    assert.throws(() => checkProfile(bare, 'classic'), /offers no ACME profiles/);
  });
});
