/** dns-01 hook scripts for the tests: node scripts driving challtestsrv's set-txt / clear-txt API. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * argv: <present|cleanup> <challtestsrv url> <log file>. Publishes KEYWRIGHT_ACME_RECORD_NAME/VALUE and
 * appends the environment it was given (names and values keywright promised) to the log file.
 */
export function writeChalltestHook(dir: string): string {
  const path = join(dir, 'dns-hook.mjs');
  writeFileSync(
    path,
    `import { appendFileSync } from 'node:fs';
const [action, url, log] = process.argv.slice(2);
const e = process.env;
appendFileSync(log, JSON.stringify({ action, name: e.KEYWRIGHT_ACME_RECORD_NAME, value: e.KEYWRIGHT_ACME_RECORD_VALUE,
  domain: e.KEYWRIGHT_ACME_DOMAIN, certbotDomain: e.CERTBOT_DOMAIN, certbotValidation: e.CERTBOT_VALIDATION,
  kwAction: e.KEYWRIGHT_ACME_ACTION, leaked: Object.keys(e).filter((k) => k.startsWith('KEYWRIGHT_') && !k.startsWith('KEYWRIGHT_ACME_')) }) + '\\n');
const host = e.KEYWRIGHT_ACME_RECORD_NAME + '.';
const res = await fetch(url + (action === 'present' ? '/set-txt' : '/clear-txt'), {
  method: 'POST', body: JSON.stringify(action === 'present' ? { host, value: e.KEYWRIGHT_ACME_RECORD_VALUE } : { host }),
});
process.exit(res.ok ? 0 : 3);
`,
  );
  return path;
}

/** A hook that fails (exit code) or hangs (sleeps in a child, so the whole group must be killed). */
export function writeBadHook(dir: string, kind: 'fail' | 'hang' | 'silent'): string {
  const path = join(dir, `hook-${kind}.sh`);
  const body =
    kind === 'fail' ? 'echo "provider said no" >&2; exit 7' : kind === 'hang' ? 'sleep 30 & wait' : 'exit 0';
  writeFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return path;
}
