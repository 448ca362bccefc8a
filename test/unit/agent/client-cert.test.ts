import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { renewalDue } from '../../../src/agent/index.js';
import { requirePeer } from '../../helpers/peers.js';
import { tempDir } from '../../helpers/tmp.js';

test('renewalDue: false before two thirds of the lifetime, true from then on', async (t) => {
  const openssl = requirePeer(t, 'openssl');
  if (!openssl) return;
  const dir = await tempDir(t, 'kw-due-');
  const pem = execFileSync(openssl, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(dir, 'k.pem'),
    '-subj',
    '/CN=due',
    '-days',
    '3',
  ]).toString();
  const c = new X509Certificate(pem);
  const from = Date.parse(c.validFrom);
  const to = Date.parse(c.validTo);
  const at = from + ((to - from) * 2) / 3;
  assert.equal(renewalDue(pem, from), false);
  assert.equal(renewalDue(pem, at - 1000), false);
  assert.equal(renewalDue(pem, at + 1000), true);
  assert.equal(renewalDue(pem, to + 1000), true);
});
