import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import { createMemoryStore } from '../../../src/store/memory/index.js';
import { hashToken } from '../../../src/access/token-format.js';
import type { TokenRecord } from '../../../src/access/token-service.js';
import { TOKENS_COLLECTION, TokenService } from '../../../src/access/token-service.js';

const HOUR = 3_600_000;

function setup() {
  const clock = new FakeClock();
  const store = createMemoryStore({ clock });
  return { clock, store, tokens: new TokenService({ store, clock }) };
}

function assertInvalid(fn: () => unknown, label: string): string {
  let message = '';
  assert.throws(
    fn,
    (err) => {
      if (!isAppError(err, 'AUTH_INVALID')) return false;
      message = err.message;
      return Object.keys(err.details).length === 0;
    },
    label,
  );
  return message;
}

describe('TokenService.create', () => {
  test('returns kw_ + 43 base64url characters (256 bits) and a record with a tok_ id', async () => {
    const { tokens, clock } = setup();
    const { token, record } = await tokens.create({
      role: 'operator',
      description: 'ci',
      createdBy: 'cli:init',
    });
    assert.match(token, /^kw_[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(token.slice(3), 'base64url').length, 32);
    assert.match(record.id, /^tok_[0-9a-f]{16}$/);
    assert.equal(record.hash, hashToken(token));
    // The stored form is plain SHA-256 hex of the token: hashes kept by earlier releases still match.
    assert.equal(record.hash, createHash('sha256').update(token).digest('hex'));
    assert.deepEqual(
      {
        role: record.role,
        scopes: record.scopes,
        createdAt: record.createdAt,
        createdBy: record.createdBy,
        description: record.description,
      },
      {
        role: 'operator',
        scopes: [],
        createdAt: clock.now().toISOString(),
        createdBy: 'cli:init',
        description: 'ci',
      },
    );
    assert.equal(record.expiresAt, undefined);
    assert.deepEqual(tokens.get(record.id), record);
  });

  test('every token is different', async () => {
    const { tokens } = setup();
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++)
      seen.add((await tokens.create({ role: 'reader', createdBy: 'system' })).token);
    assert.equal(seen.size, 50);
  });

  test('the store never holds the plaintext token, only its hash', async () => {
    const { tokens, store } = setup();
    const created = [];
    for (const role of ['admin', 'service', 'issuer'] as const) {
      created.push(
        await tokens.create({
          role,
          ...(role === 'admin' ? {} : { scopes: ['cert:web'] }),
          createdBy: 'system',
        }),
      );
    }
    const serialized = JSON.stringify(store.collection<TokenRecord>(TOKENS_COLLECTION).list());
    for (const { token, record } of created) {
      assert.ok(!serialized.includes(token), 'plaintext token found in the store');
      assert.ok(!serialized.includes(token.slice(3)), 'token body found in the store');
      assert.ok(
        !serialized.includes(Buffer.from(token.slice(3), 'base64url').toString('hex')),
        'token bytes (hex) found',
      );
      assert.ok(serialized.includes(record.hash));
    }
  });

  test('validates role, scopes, ttl and description, naming the bad one', () => {
    const { tokens } = setup();
    const bad: [Parameters<TokenService['prepare']>[0], RegExp][] = [
      [{ role: 'root' as never, createdBy: 'x' }, /role "root"/],
      [{ role: 'service', scopes: ['cert:web', 'cert:Bad'], createdBy: 'x' }, /scope "cert:Bad"/],
      [{ role: 'admin', scopes: ['cert:web'], createdBy: 'x' }, /admin tokens cannot be scoped/],
      [{ role: 'reader', ttlMs: 0, createdBy: 'x' }, /ttl/],
      [{ role: 'reader', ttlMs: 1.5, createdBy: 'x' }, /ttl/],
      [{ role: 'reader', description: 'a\nb', createdBy: 'x' }, /description/],
      [{ role: 'reader', createdBy: '' }, /createdBy/],
    ];
    for (const [input, message] of bad) {
      assert.throws(
        () => tokens.prepare(input),
        (err) => isAppError(err, 'INVALID_ARGUMENT') && message.test(err.message),
        String(message),
      );
    }
    assert.equal(tokens.list().length, 0);
  });

  test('a prepared token authenticates only once committed', async () => {
    const { tokens } = setup();
    const prepared = tokens.prepare({ role: 'reader', createdBy: 'system' });
    assertInvalid(() => tokens.authenticate(prepared.token), 'before commit');
    await tokens.commit(prepared);
    assert.equal(tokens.authenticate(prepared.token).tokenId, prepared.record.id);
  });
});

describe('TokenService.authenticate', () => {
  test('returns the principal with role and scopes as granted', async () => {
    const { tokens } = setup();
    const { token, record } = await tokens.create({
      role: 'service',
      scopes: ['cert:web', 'vpn:office/*'],
      createdBy: 'system',
    });
    assert.deepEqual(tokens.authenticate(token), {
      kind: 'token',
      tokenId: record.id,
      role: 'service',
      scopes: ['cert:web', 'vpn:office/*'],
    });
  });

  test('malformed, forged, expired and revoked tokens all fail with one generic AUTH_INVALID', async () => {
    const { tokens, clock } = setup();
    const { token } = await tokens.create({ role: 'admin', createdBy: 'system' });
    const expiring = await tokens.create({ role: 'reader', ttlMs: HOUR, createdBy: 'system' });
    const revoked = await tokens.create({ role: 'reader', createdBy: 'system' });
    await tokens.revoke(revoked.record.id, 'system');
    clock.advance(HOUR);
    const flipLast = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    const candidates: [string, unknown][] = [
      ['empty', ''],
      ['no prefix', token.slice(3)],
      ['other prefix', `kx_${token.slice(3)}`],
      ['too short', token.slice(0, -1)],
      ['too long', `${token}A`],
      ['with Bearer', `Bearer ${token}`],
      ['trailing newline', `${token}\n`],
      ['bad character', `${token.slice(0, -1)}=`],
      ['one character changed', flipLast],
      ['random well-formed', `kw_${Buffer.alloc(32, 7).toString('base64url')}`],
      ['the hash instead of the token', hashToken(token)],
      ['expired at exactly expiresAt', expiring.token],
      ['revoked', revoked.token],
      ['not a string', 42],
    ];
    const messages = new Set<string>();
    for (const [label, bearer] of candidates)
      messages.add(assertInvalid(() => tokens.authenticate(bearer as string), label));
    assert.equal(messages.size, 1, 'one message for every kind of bad token');
    const [message] = [...messages];
    assert.ok(!message!.includes(token.slice(3, 10)));
    assert.equal(tokens.authenticate(token).role, 'admin', 'the real one still works');
  });

  test('a token with a ttl works until its expiry, then fails', async () => {
    const { tokens, clock } = setup();
    const { token, record } = await tokens.create({ role: 'reader', ttlMs: 2 * HOUR, createdBy: 'system' });
    assert.equal(record.expiresAt, new Date(clock.nowMs() + 2 * HOUR).toISOString());
    clock.advance(2 * HOUR - 1);
    assert.equal(tokens.authenticate(token).tokenId, record.id);
    assert.equal(tokens.status(record), 'active');
    clock.advance(1);
    assertInvalid(() => tokens.authenticate(token), 'expired');
    assert.equal(tokens.status(record), 'expired');
  });

  test('builds its index from the collection; tokens another service wrote appear after reload()', async () => {
    const { tokens, store, clock } = setup();
    const early = await new TokenService({ store, clock }).create({ role: 'reader', createdBy: 'cli:init' });
    assert.equal(
      tokens.authenticate(early.token).role,
      'reader',
      'first use builds the index from the store',
    );
    const late = await new TokenService({ store, clock }).create({ role: 'operator', createdBy: 'cli:init' });
    assertInvalid(() => tokens.authenticate(late.token), 'a miss does not rescan the store');
    tokens.reload();
    assert.equal(tokens.authenticate(late.token).role, 'operator');
  });
});

describe('TokenService.revoke and list', () => {
  test('revoke marks the token, stops it authenticating and is idempotent', async () => {
    const { tokens, clock } = setup();
    const { token, record } = await tokens.create({ role: 'operator', createdBy: 'system' });
    clock.advance(1000);
    const revoked = await tokens.revoke(record.id, 'tok_aaaaaaaaaaaaaaaa');
    assert.equal(revoked.revokedAt, clock.now().toISOString());
    assert.equal(revoked.revokedBy, 'tok_aaaaaaaaaaaaaaaa');
    assertInvalid(() => tokens.authenticate(token), 'revoked');
    clock.advance(1000);
    const again = await tokens.revoke(record.id, 'someone-else');
    assert.deepEqual(again, revoked, 'a second revoke changes nothing');
    assert.equal(tokens.status(again), 'revoked');
  });

  test('revoke and get of an unknown id throw TOKEN_NOT_FOUND', async () => {
    const { tokens } = setup();
    await assert.rejects(tokens.revoke('tok_0000000000000000', 'system'), (err) =>
      isAppError(err, 'TOKEN_NOT_FOUND'),
    );
    assert.throws(
      () => tokens.get('tok_0000000000000000'),
      (err) => isAppError(err, 'TOKEN_NOT_FOUND'),
    );
  });

  test('list returns every token oldest first, revoked ones included', async () => {
    const { tokens, clock } = setup();
    const ids = [];
    for (const role of ['admin', 'reader', 'operator'] as const) {
      ids.push((await tokens.create({ role, createdBy: 'system' })).record.id);
      clock.advance(1000);
    }
    await tokens.revoke(ids[1]!, 'system');
    assert.deepEqual(
      tokens.list().map((r) => r.id),
      ids,
    );
  });
});
