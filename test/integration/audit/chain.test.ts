import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import type { AuditEntry } from '../../../src/audit/entry.js';
import { entryHash, serializeEntry } from '../../../src/audit/entry.js';
import { AuditLog } from '../../../src/audit/audit-log.js';
import { verifyAuditLog } from '../../../src/audit/verify.js';
import { tempDir } from '../../helpers/tmp.js';

const N = 12;

/** A real log of N entries written by AuditLog; returns its lines (without newlines). */
async function writeLog(
  t: TestContext,
  n = N,
): Promise<{ path: string; lines: string[]; entries: AuditEntry[] }> {
  const path = join(await tempDir(t), 'audit.log');
  const clock = new FakeClock();
  const log = await AuditLog.open({ path, clock });
  const entries: AuditEntry[] = [];
  for (let i = 1; i <= n; i++) {
    clock.advance(1000);
    entries.push(
      await log.append({
        actor: i % 2 === 0 ? 'tok_00112233445566aa' : 'system',
        action: i % 4 === 0 ? 'key.export' : 'cert.issue',
        subject: `cert:web-${i}`,
        outcome: 'success',
        requestId: `req-${i}`,
        details: { serial: `0${i}`, days: 90 },
      }),
    );
  }
  await log.close();
  const lines = (await readFile(path, 'utf8')).split('\n');
  assert.equal(lines.pop(), '', 'the file ends with a newline');
  return { path, lines, entries };
}

const save = (path: string, lines: string[], trailingNewline = true) =>
  writeFile(path, lines.join('\n') + (trailingNewline && lines.length > 0 ? '\n' : ''));

function expectProblem(actual: unknown, problem: string, line: number, label: string): void {
  assert.ok(
    typeof actual === 'object' && actual !== null && 'ok' in actual && actual.ok === false,
    `${label}: expected a problem`,
  );
  const found = actual as unknown as { problem: string; line: number };
  assert.equal(found.problem, problem, `${label}: ${JSON.stringify(actual)}`);
  assert.equal(found.line, line, `${label}: ${JSON.stringify(actual)}`);
}

/** A different value of the same JSON type, so only the hash can tell. */
function altered(value: unknown): unknown {
  if (typeof value === 'number') return value + 1;
  if (typeof value === 'string')
    return value.length === 64 ? value.replace(/.$/, (c) => (c === '0' ? '1' : '0')) : `${value}x`;
  if (typeof value === 'object' && value !== null) return { ...value, days: 91 };
  return value;
}

describe('verifyAuditLog on real files', () => {
  test('a chain of many entries verifies, and the head is the last entry', async (t) => {
    const { path, entries } = await writeLog(t, 500);
    assert.deepEqual(await verifyAuditLog(path), {
      ok: true,
      entries: 500,
      head: { seq: 500, hash: entries.at(-1)!.hash },
    });
  });

  test('an empty log verifies with head seq 0', async (t) => {
    const path = join(await tempDir(t), 'audit.log');
    await writeFile(path, '');
    assert.deepEqual(await verifyAuditLog(path), {
      ok: true,
      entries: 0,
      head: { seq: 0, hash: '0'.repeat(64) },
    });
  });

  test('editing any field of any entry is reported as edited at that line', async (t) => {
    const { path, lines } = await writeLog(t);
    const fields = [
      'seq',
      'time',
      'actor',
      'action',
      'subject',
      'outcome',
      'requestId',
      'details',
      'prev',
      'hash',
    ];
    for (let i = 0; i < lines.length; i++) {
      for (const field of fields) {
        const obj = JSON.parse(lines[i]!) as Record<string, unknown>;
        obj[field] = altered(obj[field]);
        const copy = [...lines];
        copy[i] = JSON.stringify(obj);
        await save(path, copy);
        expectProblem(await verifyAuditLog(path), 'edited', i + 1, `line ${i + 1} field ${field}`);
      }
    }
  });

  test('a byte-level edit that keeps the JSON meaning (a space, a duplicate member) is still edited', async (t) => {
    const { path, lines } = await writeLog(t);
    const copy = [...lines];
    copy[4] = copy[4]!.replace('"outcome":', '"outcome": ');
    await save(path, copy);
    expectProblem(await verifyAuditLog(path), 'edited', 5, 'space');
    copy[4] = lines[4]!.replace('"outcome":"success"', '"outcome":"denied","outcome":"success"');
    await save(path, copy);
    expectProblem(await verifyAuditLog(path), 'edited', 5, 'duplicate member');
  });

  test('an entry rewritten with a recomputed hash breaks the link of the next line (edited there)', async (t) => {
    const { path, lines } = await writeLog(t);
    const obj = JSON.parse(lines[5]!) as AuditEntry & Record<string, unknown>;
    const forged = { ...obj, outcome: 'failure' as const };
    const rehashed = { ...forged, hash: entryHash(forged) };
    const copy = [...lines];
    copy[5] = serializeEntry(rehashed).trimEnd();
    await save(path, copy);
    expectProblem(await verifyAuditLog(path), 'edited', 7, 'recomputed hash');
  });

  test('deleting any line but the last is reported as removed at that line', async (t) => {
    const { path, lines } = await writeLog(t);
    for (let i = 0; i < lines.length - 1; i++) {
      await save(
        path,
        lines.filter((_, k) => k !== i),
      );
      expectProblem(await verifyAuditLog(path), 'removed', i + 1, `delete line ${i + 1}`);
    }
    await save(
      path,
      lines.filter((_, k) => k !== 3 && k !== 4),
    );
    const r = await verifyAuditLog(path);
    expectProblem(r, 'removed', 4, 'delete two lines');
    assert.match((r as { message: string }).message, /seq 4\.\.5 missing/);
  });

  test('deleting the last line is not detectable from the file alone (documented limitation)', async (t) => {
    const { path, lines } = await writeLog(t);
    await save(path, lines.slice(0, -1));
    assert.equal((await verifyAuditLog(path)).ok, true);
  });

  test('swapping two lines is reported as reordered at the first of them', async (t) => {
    const { path, lines } = await writeLog(t);
    for (let i = 0; i < lines.length - 1; i++) {
      const copy = [...lines];
      [copy[i], copy[i + 1]] = [copy[i + 1]!, copy[i]!];
      await save(path, copy);
      expectProblem(await verifyAuditLog(path), 'reordered', i + 1, `swap ${i + 1} and ${i + 2}`);
    }
    const copy = [...lines];
    [copy[1], copy[8]] = [copy[8]!, copy[1]!];
    await save(path, copy);
    expectProblem(await verifyAuditLog(path), 'reordered', 2, 'swap 2 and 9');
  });

  test('a duplicated line is reported as reordered', async (t) => {
    const { path, lines } = await writeLog(t);
    await save(path, [...lines.slice(0, 4), lines[3]!, ...lines.slice(4)]);
    expectProblem(await verifyAuditLog(path), 'reordered', 5, 'duplicate');
  });

  test('truncating the file in the middle of any line is reported as truncated at that line', async (t) => {
    const { path, lines } = await writeLog(t);
    const whole = await readFile(path);
    let offset = 0;
    for (let i = 0; i < lines.length; i++) {
      const len = Buffer.byteLength(lines[i]!) + 1;
      for (const cut of [1, Math.floor(len / 2), len - 1]) {
        await writeFile(path, whole.subarray(0, offset + cut));
        expectProblem(await verifyAuditLog(path), 'truncated', i + 1, `cut line ${i + 1} at ${cut}/${len}`);
      }
      offset += len;
    }
  });

  test('a line that is not JSON is malformed; as the last line it is a torn write', async (t) => {
    const { path, lines } = await writeLog(t);
    await save(path, [...lines.slice(0, 3), 'not json', ...lines.slice(3)]);
    expectProblem(await verifyAuditLog(path), 'malformed', 4, 'garbage line');
    await save(path, [...lines.slice(0, 3), '', ...lines.slice(3)]);
    expectProblem(await verifyAuditLog(path), 'malformed', 4, 'blank line');
    await save(path, [...lines.slice(0, 3), '{"seq":4}', ...lines.slice(3)]);
    expectProblem(await verifyAuditLog(path), 'malformed', 4, 'JSON but no entry');
    await save(path, [...lines, '\0\0\0\0']);
    expectProblem(await verifyAuditLog(path), 'truncated', N + 1, 'NUL-filled last line');
  });

  test('verify only reads: the file is byte-identical afterwards', async (t) => {
    const { path, lines } = await writeLog(t);
    await save(path, [...lines, lines[0]!.slice(0, 20)], false);
    const before = await readFile(path);
    expectProblem(await verifyAuditLog(path), 'truncated', N + 1, 'torn');
    assert.deepEqual(await readFile(path), before);
  });
});

describe('AuditLog.open on real files', () => {
  for (const [label, tail] of [
    ['a partial line without newline', (l: string) => l.slice(0, 40)],
    ['NUL bytes from a crash mid-extend', () => '\0'.repeat(64)],
    ['a complete entry whose newline never made it', (l: string) => l],
  ] as const) {
    test(`repairs a torn tail (${label}) and records audit.recovered`, async (t) => {
      const { path, lines, entries } = await writeLog(t);
      const torn = tail(lines[0]!.replace('"seq":1', `"seq":${N + 1}`));
      await appendFile(path, torn);
      const log = await AuditLog.open({ path, clock: new FakeClock() });
      t.after(() => log.close());
      const [recovered] = await log.tail(1);
      assert.equal(recovered!.seq, N + 1);
      assert.equal(recovered!.action, 'audit.recovered');
      assert.equal(recovered!.actor, 'system');
      assert.equal(recovered!.prev, entries.at(-1)!.hash);
      assert.deepEqual(recovered!.details, {
        line: N + 1,
        truncatedBytes: Buffer.byteLength(torn),
        reason: recovered!.details!.reason!,
      });
      const text = await readFile(path, 'utf8');
      assert.ok(text.startsWith(lines.join('\n') + '\n'), 'acknowledged entries are untouched');
      assert.deepEqual(await verifyAuditLog(path), { ok: true, entries: N + 1, head: log.head });
      await log.append({
        actor: 'system',
        action: 'daemon.start',
        subject: 'daemon:local',
        outcome: 'success',
      });
      assert.equal((await verifyAuditLog(path)).ok, true);
    });
  }

  test('refuses any other break with AUDIT_INTEGRITY naming line and problem, leaving the file as it was', async (t) => {
    const { path, lines } = await writeLog(t);
    const copy = [...lines];
    copy[6] = copy[6]!.replace('cert:web-7', 'cert:web-8');
    await save(path, copy);
    const before = await readFile(path);
    await assert.rejects(
      AuditLog.open({ path, clock: new FakeClock() }),
      (err) =>
        isAppError(err, 'AUDIT_INTEGRITY') &&
        err.details.line === 7 &&
        err.details.problem === 'edited' &&
        /line 7/.test(err.message),
    );
    assert.deepEqual(await readFile(path), before);
  });

  test('reopening continues the chain from the last entry', async (t) => {
    const { path, entries } = await writeLog(t);
    const log = await AuditLog.open({ path, clock: new FakeClock() });
    t.after(() => log.close());
    assert.deepEqual(log.head, { seq: N, hash: entries.at(-1)!.hash });
    const e = await log.append({
      actor: 'cli:init',
      action: 'token.create',
      subject: 'token:tok_0011223344556677',
      outcome: 'success',
    });
    assert.equal(e.seq, N + 1);
    assert.equal(e.prev, entries.at(-1)!.hash);
  });

  test('a log replaced by a directory: append rejects AUDIT_WRITE_FAILED and the head stays', async (t) => {
    const { path } = await writeLog(t, 3);
    const log = await AuditLog.open({ path, clock: new FakeClock() });
    t.after(() => log.close());
    const head = log.head;
    await rename(path, `${path}.moved`);
    await mkdir(path);
    await assert.rejects(
      log.append({ actor: 'system', action: 'cert.issue', subject: 'cert:x', outcome: 'success' }),
      (err) => isAppError(err, 'AUDIT_WRITE_FAILED') && err.retryable,
    );
    assert.deepEqual(log.head, head);
    await rm(path, { recursive: true });
    await assert.rejects(
      log.append({ actor: 'system', action: 'cert.issue', subject: 'cert:x', outcome: 'success' }),
      (err) => isAppError(err, 'AUDIT_WRITE_FAILED'),
      'a vanished log is not silently recreated',
    );
    await rename(`${path}.moved`, path);
    const e = await log.append({
      actor: 'system',
      action: 'cert.issue',
      subject: 'cert:x',
      outcome: 'success',
    });
    assert.equal(e.seq, head.seq + 1);
    assert.equal((await verifyAuditLog(path)).ok, true);
  });

  test('a log changed on disk by someone else: append refuses with AUDIT_INTEGRITY from then on', async (t) => {
    const { path } = await writeLog(t, 3);
    const log = await AuditLog.open({ path, clock: new FakeClock() });
    t.after(() => log.close());
    await appendFile(path, '{"seq":4}\n');
    const rec = { actor: 'system', action: 'cert.issue', subject: 'cert:x', outcome: 'success' } as const;
    await assert.rejects(log.append(rec), (err) => isAppError(err, 'AUDIT_INTEGRITY'));
    await assert.rejects(log.append(rec), (err) => isAppError(err, 'AUDIT_INTEGRITY'));
    assert.equal(log.head.seq, 3);
  });

  test('a missing log is created 0600 with its directory entry synced', async (t) => {
    const path = join(await tempDir(t), 'audit.log');
    const log = await AuditLog.open({ path, clock: new FakeClock() });
    t.after(() => log.close());
    assert.equal(log.head.seq, 0);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });
});

describe('AuditLog.open with deferVerification, then verifyChain', () => {
  const rec = { actor: 'system', action: 'cert.issue', subject: 'cert:x', outcome: 'success' } as const;
  const openDeferred = (path: string) =>
    AuditLog.open({ path, clock: new FakeClock(), deferVerification: true });

  test('open takes the head from the last line; tail and query read the file until verifyChain fills memory', async (t) => {
    const { path, entries } = await writeLog(t);
    const log = await openDeferred(path);
    assert.deepEqual(log.head, { seq: N, hash: entries.at(-1)!.hash });
    assert.deepEqual(
      (await log.tail(3)).map((e) => e.seq),
      [N - 2, N - 1, N],
      'entries before open come from the file',
    );
    const next = await log.append(rec);
    assert.equal(next.seq, N + 1);
    assert.equal(next.prev, entries.at(-1)!.hash);
    assert.deepEqual(
      (await log.query({ afterSeq: 0, limit: 100 })).map((e) => e.seq),
      Array.from({ length: N + 1 }, (_, i) => i + 1),
    );
    assert.equal(await log.verifyChain(), undefined);
    assert.equal(log.refusal, undefined);
    // verified entries joined the in-memory ring: the whole log is served without the file
    await rename(path, `${path}.away`);
    assert.deepEqual(
      (await log.tail(N + 1)).map((e) => e.seq),
      Array.from({ length: N + 1 }, (_, i) => i + 1),
    );
    await rename(`${path}.away`, path);
    assert.equal((await log.append(rec)).seq, N + 2);
    assert.equal((await verifyAuditLog(path)).ok, true);
    await log.close();
  });

  test('a log edited in the middle opens, then verifyChain refuses every append with the error open would give', async (t) => {
    const { path, lines } = await writeLog(t);
    const copy = [...lines];
    copy[6] = copy[6]!.replace('cert:web-7', 'cert:web-8');
    await save(path, copy);
    const atOpen = await AuditLog.open({ path, clock: new FakeClock() }).then(
      () => assert.fail('a full open must refuse it'),
      (err: unknown) => err,
    );
    const log = await openDeferred(path);
    assert.equal(log.head.seq, N);
    const found = await log.verifyChain();
    assert.ok(isAppError(found, 'AUDIT_INTEGRITY'), String(found));
    assert.ok(isAppError(atOpen, 'AUDIT_INTEGRITY'));
    assert.deepEqual(found.details, atOpen.details, 'same line, seq and problem as open reports');
    assert.equal(found.details.line, 7);
    assert.equal(found.details.problem, 'edited');
    assert.equal(log.refusal, found);
    const before = await readFile(path);
    await assert.rejects(log.append(rec), (err) => err === found);
    assert.equal(log.head.seq, N);
    assert.deepEqual(await readFile(path), before, 'nothing more was written');
    assert.equal(await log.verifyChain(), found, 'the result is kept');
    await log.close();
  });

  test('a torn tail is repaired at open as without deferVerification; verifyChain has nothing left to do', async (t) => {
    const { path, lines, entries } = await writeLog(t);
    await appendFile(path, lines[0]!.slice(0, 30));
    const log = await openDeferred(path);
    t.after(() => log.close());
    const [recovered] = await log.tail(1);
    assert.equal(recovered!.action, 'audit.recovered');
    assert.equal(recovered!.details!.line, N + 1);
    assert.equal(recovered!.prev, entries.at(-1)!.hash);
    assert.equal(await log.verifyChain(), undefined);
    assert.equal((await verifyAuditLog(path)).ok, true);
  });

  test('a damaged last entry is refused at open, naming its line', async (t) => {
    const { path, lines } = await writeLog(t);
    const copy = [...lines];
    copy[N - 1] = copy[N - 1]!.replace(`cert:web-${N}`, 'cert:forged');
    await save(path, copy);
    await assert.rejects(
      openDeferred(path),
      (err) => isAppError(err, 'AUDIT_INTEGRITY') && err.details.line === N && /line 12/.test(err.message),
    );
  });

  test('entries cut off the end after open: the chain left is whole, but not the one open trusted', async (t) => {
    const { path, lines } = await writeLog(t);
    const log = await openDeferred(path);
    t.after(() => log.close());
    await truncate(path, Buffer.byteLength(lines.slice(0, N - 2).join('\n') + '\n'));
    assert.equal((await verifyAuditLog(path)).ok, true, 'the file alone cannot show it');
    const found = await log.verifyChain();
    assert.ok(isAppError(found, 'AUDIT_INTEGRITY'));
    assert.match(found.message, /changed on disk/);
    await assert.rejects(log.append(rec), (err) => isAppError(err, 'AUDIT_INTEGRITY'));
  });

  test('an empty log needs no verification; close stops one that is still running', async (t) => {
    const empty = await openDeferred(join(await tempDir(t), 'audit.log'));
    assert.equal(empty.head.seq, 0);
    assert.equal(await empty.verifyChain(), undefined);
    assert.equal((await empty.append(rec)).seq, 1);
    await empty.close();

    const path = join(await tempDir(t), 'audit.log');
    const writer = await AuditLog.open({ path, clock: new FakeClock() });
    await Promise.all(Array.from({ length: 2000 }, () => writer.append(rec))); // two group commits
    await writer.close();
    const log = await openDeferred(path);
    const verifying = log.verifyChain();
    await log.close();
    assert.equal(await verifying, undefined);
    assert.equal(log.refusal, undefined, 'a stopped verification refuses nothing');
  });
});

describe('AuditLog keeps its append handle', () => {
  const rec = { actor: 'system', action: 'cert.issue', subject: 'cert:x', outcome: 'success' } as const;

  test('a log moved away while the handle is open: nothing goes to the moved file, and a log put back is appended to', async (t) => {
    const { path } = await writeLog(t, 3);
    const log = await AuditLog.open({ path, clock: new FakeClock() });
    assert.equal((await log.append(rec)).seq, 4, 'the handle is open now');
    await rename(path, `${path}.moved`);
    const moved = await readFile(`${path}.moved`);
    await assert.rejects(log.append(rec), (err) => isAppError(err, 'AUDIT_WRITE_FAILED') && err.retryable);
    assert.deepEqual(await readFile(`${path}.moved`), moved, 'the moved file was not written');
    assert.equal(await stat(path).catch(() => undefined), undefined, 'the log was not recreated');
    // a copy put in its place is another file of the same length: appended to, the chain goes on
    await writeFile(path, moved, { mode: 0o600 });
    assert.equal((await log.append(rec)).seq, 5);
    assert.deepEqual(await verifyAuditLog(path), { ok: true, entries: 5, head: log.head });
    await log.close();
  });
});
