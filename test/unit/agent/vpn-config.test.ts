import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { completeConfig } from '../../../src/agent/index.js';
import { CLIENT_KEY_LINE_PREFIX } from '../../../src/agent/vpn.js';
import { isAppError } from '../../../src/core/errors.js';
import { CLIENT_KEY_PLACEHOLDER } from '../../../src/vpn/index.js';

const KEY = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=';
const held = `[Interface]\nPrivateKey = ${'A'.repeat(43)}=\nAddress = 10.8.0.2/32\n`;
const clientSide = `[Interface]\n${CLIENT_KEY_PLACEHOLDER}\nAddress = 10.8.0.3/32\n`;

describe('agent: completing a VPN config', () => {
  test("the agent's placeholder prefix is the daemon's placeholder line", () => {
    assert.ok(CLIENT_KEY_PLACEHOLDER.startsWith(CLIENT_KEY_LINE_PREFIX));
  });

  test('a client-side key replaces the placeholder line, nothing else changes', () => {
    assert.equal(
      completeConfig(clientSide, KEY, 'vpn:n/p'),
      `[Interface]\nPrivateKey = ${KEY}\nAddress = 10.8.0.3/32\n`,
    );
  });

  test('a config the daemon completed is written as sent', () => {
    assert.equal(completeConfig(held, undefined, 'vpn:n/p'), held);
  });

  test('placeholder without a key, or a key for a held-key peer, is refused without the key in the message', () => {
    for (const [text, key] of [
      [clientSide, undefined],
      [held, KEY],
    ] as const) {
      assert.throws(
        () => completeConfig(text, key, 'vpn:n/p'),
        (err) => isAppError(err) && err.code === 'INVALID_ARGUMENT' && !err.message.includes(KEY),
      );
    }
    assert.throws(() => completeConfig('[Interface]\nAddress = x\n', undefined, 'vpn:n/p'), isAppError);
  });
});
