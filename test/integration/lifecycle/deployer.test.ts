import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startApi } from '../../helpers/api-harness.js';
import { tempDir } from '../../helpers/tmp.js';
import { silentLogger } from '../../../src/core/logger.js';
import { systemClock } from '../../../src/core/clock.js';
import { CertificateDeployer } from '../../../src/lifecycle/deployer.js';
import { CERTIFICATES_COLLECTION, type CertificateRecord } from '../../../src/lifecycle/records.js';
import { parseConfig } from '../../../src/config/load.js';

test('a new version reaches its file and exec targets; a failing target records a retry and recovers', async (t) => {
  const api = await startApi(t, { unsealed: true });
  const out = await tempDir(t, 'kw-deploy-');
  const certs = api.unsealed!.certificates;
  const ctx = { clock: systemClock, logger: silentLogger, actor: 'test' };
  await certs.create(
    'web',
    {
      issuer: 'ca:default',
      sans: ['web.internal'],
      keyType: 'ec-p256',
      lifetimeMs: 86_400_000,
      keyRotation: 'always',
    },
    { source: 'api' },
    ctx,
  );
  const marker = join(out, 'reloaded');
  const deploy = parseConfig(
    {
      certificates: [
        {
          name: 'web',
          sans: ['web.internal'],
          deploy: [
            { file: { dir: join(out, 'web') } },
            {
              exec: {
                command: [
                  'sh',
                  '-c',
                  `echo "$KEYWRIGHT_CERT_NAME $RENEWED_DOMAINS" > ${marker}; test ! -e ${out}/fail`,
                ],
              },
            },
          ],
        },
      ],
    },
    'test',
  ).certificates[0]!.deploy;
  await api.store.tx((tx) =>
    tx.collection<CertificateRecord>(CERTIFICATES_COLLECTION).update('web', (c) => ({ ...c, deploy })),
  );
  const deployer = new CertificateDeployer({
    store: api.store,
    audit: api.audit,
    certificates: certs,
    clock: systemClock,
    logger: silentLogger,
    allowedDirs: [out],
  });

  const run = await deployer.deploy('web');
  assert.ok(run?.ok, JSON.stringify(run?.reports));
  const fullchain = await readFile(join(out, 'web', 'fullchain.pem'), 'utf8');
  assert.equal((fullchain.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  assert.equal((await stat(join(out, 'web', 'privkey.pem'))).mode & 0o777, 0o600);
  assert.equal((await readFile(marker, 'utf8')).trim(), 'web web.internal');
  assert.equal(
    certs.get('web').deployState?.every((s) => s.lastDeliveredVersion === 1),
    true,
  );

  // A failing hook: the run fails, a retry is scheduled, the issuance stands.
  await import('node:fs/promises').then((fs) => fs.writeFile(join(out, 'fail'), ''));
  await certs.issue('web', ctx, { reason: 'manual' });
  const failed = await deployer.deploy('web');
  assert.equal(failed?.ok, false);
  assert.equal(certs.current('web').version, 2, 'a deploy failure never undoes a good issuance');
  const state = certs.get('web').deployState!.find((s) => s.kind === 'exec')!;
  assert.equal(state.attempts, 1);
  assert.ok(state.nextRetryAt);
  assert.deepEqual(deployer.dueForRetry(Date.parse(state.nextRetryAt) + 1), ['web']);

  await import('node:fs/promises').then((fs) => fs.rm(join(out, 'fail')));
  const recovered = await deployer.deploy('web');
  assert.ok(recovered?.ok);
  assert.deepEqual(deployer.dueForRetry(Date.now() + 10 * 3_600_000), []);
  const audit = await api.audit.query({ action: 'cert.deploy', limit: 10 });
  assert.deepEqual(audit.map((e) => e.outcome).reverse(), ['success', 'failure', 'success']);
});
