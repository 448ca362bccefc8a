import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isAppError } from '../../../src/core/errors.js';
import { SEALED_BLOB_PREFIX } from '../../../src/store/port.js';
import { ACME_ACCOUNTS_COLLECTION } from '../../../src/acme/accounts.js';
import { startPebble } from '../../helpers/pebble.js';
import { acmeFixture, registerInput } from './fixture.js';

describe('External Account Binding (RFC 8555 §7.3.4) against pebble requiring it', () => {
  test('without EAB refused before newAccount; a wrong HMAC refused by the CA; the right one registers; the HMAC is never kept', async (t) => {
    const hmac = randomBytes(48).toString('base64url');
    const pebble = await startPebble(t, { eab: { 'kid-1': hmac } });
    if (!pebble) return;
    const f = await acmeFixture(t);

    await assert.rejects(f.service.accounts.register(registerInput(pebble, 'zero')), (err) => {
      assert.ok(isAppError(err, 'INVALID_ARGUMENT'));
      assert.match(err.message, /requires External Account Binding: pass --eab-kid and --eab-hmac/);
      return true;
    });

    const wrong = randomBytes(48).toString('base64url');
    await assert.rejects(
      f.service.accounts.register({
        ...registerInput(pebble, 'zero'),
        eab: { kid: 'kid-1', hmacKey: wrong },
      }),
      (err) => {
        assert.ok(isAppError(err, 'ACME_ERROR'), String(err));
        assert.equal(err.retryable, false);
        assert.match(err.message, /registering ACME account "zero"/);
        assert.ok(!err.message.includes(wrong));
        return true;
      },
    );
    await assert.rejects(
      f.service.accounts.register({
        ...registerInput(pebble, 'zero'),
        eab: { kid: 'kid-unknown', hmacKey: hmac },
      }),
      (err) => isAppError(err, 'ACME_ERROR') && /kid/i.test(err.message),
    );
    assert.deepEqual(f.service.accounts.list(), [], 'nothing stored by the failed registrations');
    assert.deepEqual(await f.store.listBlobs(SEALED_BLOB_PREFIX), []);

    const account = await f.service.accounts.register({
      ...registerInput(pebble, 'zero'),
      eab: { kid: 'kid-1', hmacKey: hmac },
    });
    assert.equal(account.eabKid, 'kid-1');
    const stored = JSON.stringify(f.store.collection(ACME_ACCOUNTS_COLLECTION).list());
    assert.ok(!stored.includes(hmac), 'the HMAC key is not in the account record');
    for (const key of await f.store.listBlobs('')) {
      assert.ok(!(await f.store.getBlob(key))!.toString('utf8').includes(hmac), `not in blob ${key}`);
    }
    assert.ok(!JSON.stringify(f.logger.lines).includes(hmac), 'never logged');

    // A key change works for an EAB-bound account too (the binding is only part of newAccount).
    const rolled = await f.service.accounts.rollover('zero');
    assert.equal(rolled.accountUrl, account.accountUrl);
  });
});
