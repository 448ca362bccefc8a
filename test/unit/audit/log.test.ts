import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FakeClock } from '../../../src/core/clock.js';
import { isAppError } from '../../../src/core/errors.js';
import type { AuditInput } from '../../../src/audit/entry.js';
import type { AuditAppendHandle, AuditFileIo } from '../../../src/audit/io.js';
import { nodeAuditIo } from '../../../src/audit/io.js';
import { AuditLog, type ExportDurability } from '../../../src/audit/audit-log.js';
import { verifyAuditLog } from '../../../src/audit/verify.js';
import { tempDir } from '../../helpers/tmp.js';

function input(i: number, extra: Partial<AuditInput> = {}): AuditInput {
  return {
    actor: 'system',
    action: 'cert.issue',
    subject: `cert:c${i}`,
    outcome: 'success',
    details: { i },
    ...extra,
  };
}

type Fault = 'write' | 'half-write' | 'sync' | 'truncate' | undefined;

/** The real file operations, counted, with one-shot faults on demand. */
class TestIo implements AuditFileIo {
  opens = 0;
  syncs = 0;
  writes = 0;
  faults: Fault[] = [];
  truncateFails = false;
  /** While set, every fdatasync waits for it (to observe what resolves before the sync ends). */
  syncGate: Promise<void> | undefined;
  async openAppend(path: string): Promise<AuditAppendHandle> {
    this.opens += 1;
    const real = await nodeAuditIo.openAppend(path);
    return {
      size: () => real.size(),
      write: async (data) => {
        this.writes += 1;
        const fault = this.faults[0];
        if (fault === 'write') {
          this.faults.shift();
          throw Object.assign(new Error('injected'), { code: 'ENOSPC' });
        }
        if (fault === 'half-write') {
          this.faults.shift();
          await real.write(data.subarray(0, Math.floor(data.length / 2)));
          throw Object.assign(new Error('injected'), { code: 'EIO' });
        }
        await real.write(data);
      },
      sync: async () => {
        this.syncs += 1;
        await this.syncGate;
        if (this.faults[0] === 'sync') {
          this.faults.shift();
          throw Object.assign(new Error('injected'), { code: 'EIO' });
        }
        await real.sync();
      },
      truncate: async (n) => {
        if (this.truncateFails) throw Object.assign(new Error('injected'), { code: 'EIO' });
        await real.truncate(n);
      },
      close: () => real.close(),
    };
  }
}

async function openLog(
  t: Parameters<typeof tempDir>[0],
  io = new TestIo(),
  recentEntries?: number,
  exportDurability?: ExportDurability,
) {
  const dir = await tempDir(t);
  const path = join(dir, 'audit.log');
  const clock = new FakeClock();
  const log = await AuditLog.open({
    path,
    clock,
    io,
    ...(recentEntries === undefined ? {} : { recentEntries }),
    ...(exportDurability === undefined ? {} : { exportDurability }),
  });
  t.after(() => log.close()); // its append handle, not left for the garbage collector
  return { log, path, io, clock };
}

describe('AuditLog append', () => {
  test('creates the log 0600 and chains the first entry to 64 zeros', async (t) => {
    const { log, path } = await openLog(t);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const e = await log.append(input(1));
    assert.equal(e.seq, 1);
    assert.equal(e.prev, '0'.repeat(64));
    assert.equal(e.time, '2026-01-01T00:00:00.000Z');
    assert.deepEqual(log.head, { seq: 1, hash: e.hash });
    const lines = (await readFile(path, 'utf8')).split('\n');
    assert.deepEqual(JSON.parse(lines[0]!), e);
    assert.equal(lines[1], '');
  });

  test('appends in one tick share one write and one fsync, in call order', async (t) => {
    const { log, path, io } = await openLog(t);
    const entries = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(input(i))));
    assert.deepEqual(
      entries.map((e) => e.seq),
      entries.map((_, i) => i + 1),
    );
    assert.deepEqual(
      entries.map((e) => e.subject),
      entries.map((_, i) => `cert:c${i}`),
    );
    assert.equal(io.syncs, 1);
    assert.equal(log.stats.batches, 1);
    assert.deepEqual(await verifyAuditLog(path), { ok: true, entries: 200, head: log.head });
  });

  test('appends arriving while an fsync is in flight are grouped, keeping each caller in order', async (t) => {
    const { log, path, io } = await openLog(t);
    const workers = 20;
    const perWorker = 25;
    const seen: number[][] = [];
    await Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        const mine: number[] = [];
        seen.push(mine);
        for (let k = 0; k < perWorker; k++) {
          await new Promise((r) => setImmediate(r)); // each append from its own macrotask
          mine.push((await log.append(input(w * 1000 + k))).seq);
        }
      }),
    );
    const total = workers * perWorker;
    for (const mine of seen)
      assert.deepEqual(
        mine,
        [...mine].sort((a, b) => a - b),
      );
    assert.equal(log.head.seq, total);
    assert.ok(io.syncs < total, `expected group commit: ${io.syncs} fsyncs for ${total} appends`);
    assert.equal(io.syncs, log.stats.batches);
    t.diagnostic(`${total} appends from ${workers} concurrent callers took ${io.syncs} fsyncs`);
    assert.deepEqual(await verifyAuditLog(path), { ok: true, entries: total, head: log.head });
  });

  test('refuses secret-looking details before anything is written', async (t) => {
    const { log, path } = await openLog(t);
    await assert.rejects(log.append(input(1, { details: { privateKey: 'x' } })), (err) =>
      isAppError(err, 'INTERNAL'),
    );
    assert.equal(log.head.seq, 0);
    assert.equal(await readFile(path, 'utf8'), '');
  });
});

describe('AuditLog fails closed', () => {
  for (const fault of ['write', 'half-write', 'sync'] as const) {
    test(`a failing ${fault} rejects every append of the batch with AUDIT_WRITE_FAILED and leaves the head`, async (t) => {
      const { log, path, io } = await openLog(t);
      await log.append(input(0));
      const head = log.head;
      const before = await readFile(path);
      io.faults.push(fault);
      const results = await Promise.allSettled([log.append(input(1)), log.append(input(2))]);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.ok(isAppError(r.reason, 'AUDIT_WRITE_FAILED'));
      }
      assert.deepEqual(log.head, head);
      assert.deepEqual(await readFile(path), before, 'the partial write was cut back off');
      const next = await log.append(input(3));
      assert.equal(next.seq, 2);
      assert.equal(next.prev, head.hash);
      assert.equal((await verifyAuditLog(path)).ok, true);
    });
  }

  test('when the partial write cannot be removed, every later append is refused until reopened', async (t) => {
    const { log, path, io } = await openLog(t);
    await log.append(input(0));
    io.faults.push('half-write');
    io.truncateFails = true;
    await assert.rejects(log.append(input(1)), (err) => isAppError(err, 'AUDIT_WRITE_FAILED'));
    io.truncateFails = false;
    await assert.rejects(
      log.append(input(2)),
      (err) => isAppError(err, 'AUDIT_WRITE_FAILED') && /restart/.test(err.message),
    );
    assert.ok(isAppError(log.refusal, 'AUDIT_WRITE_FAILED'), 'refused for good, and says so');
    assert.equal(log.head.seq, 1);
    const reopened = await AuditLog.open({ path, clock: new FakeClock() });
    assert.equal(reopened.head.seq, 2, 'the torn half line was cut and audit.recovered appended');
    assert.equal((await reopened.tail(1))[0]!.action, 'audit.recovered');
    await reopened.close();
  });

  test('one handle serves every commit; after a failed one the next commit opens a new handle', async (t) => {
    const { log, path, io } = await openLog(t);
    for (let i = 0; i < 5; i++) await log.append(input(i));
    assert.equal(io.opens, 1);
    assert.equal(io.syncs, 5);
    io.faults.push('sync');
    await assert.rejects(log.append(input(5)), (err) => isAppError(err, 'AUDIT_WRITE_FAILED'));
    assert.equal((await log.append(input(6))).seq, 6);
    assert.equal(io.opens, 2, 'reopened once after the failure');
    assert.equal(log.refusal, undefined, 'a failure that was rolled back refuses nothing for good');
    assert.deepEqual(await verifyAuditLog(path), { ok: true, entries: 6, head: log.head });
  });

  test('an append after close is refused', async (t) => {
    const { log } = await openLog(t);
    const pending = log.append(input(1));
    await log.close();
    assert.equal((await pending).seq, 1, 'queued appends are drained by close');
    await assert.rejects(log.append(input(2)), (err) => isAppError(err, 'AUDIT_WRITE_FAILED'));
  });
});

describe('AuditLog export durability', () => {
  const exported = (i: number) => input(i, { action: 'key.export' });
  const gate = () => {
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    return { promise, open };
  };
  const settledSoon = async (p: Promise<unknown>) => {
    let done = false;
    void p.then(
      () => (done = true),
      () => (done = true),
    );
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    return done;
  };

  test("'written': a disclosure resolves once its line is in the file, before its fdatasync ends", async (t) => {
    const { log, path, io } = await openLog(t, new TestIo(), undefined, 'written');
    const held = gate();
    io.syncGate = held.promise;
    const entry = await log.append(exported(1), { disclosure: true });
    assert.equal(entry.seq, 1);
    assert.match(await readFile(path, 'utf8'), /"action":"key\.export"/, 'in the file before the key leaves');
    assert.equal(io.syncs, 1, 'its fdatasync started at once');
    const closing = log.close();
    assert.equal(await settledSoon(closing), false, 'close waits for the fdatasync');
    held.open();
    await closing;
    assert.deepEqual(await verifyAuditLog(path), { ok: true, entries: 1, head: log.head });
  });

  test("'written': a change still waits for its fdatasync, which also covers the disclosures before it", async (t) => {
    const { log, io } = await openLog(t, new TestIo(), undefined, 'written');
    const held = gate();
    io.syncGate = held.promise;
    await log.append(exported(1), { disclosure: true });
    const change = log.append(input(2));
    assert.equal(await settledSoon(change), false, 'a change resolves only after its fdatasync');
    held.open();
    assert.equal((await change).seq, 2);
  });

  test("'synced' (the default): a disclosure waits for its fdatasync like a change", async (t) => {
    const { log, io } = await openLog(t);
    const held = gate();
    io.syncGate = held.promise;
    const pull = log.append(exported(1), { disclosure: true });
    assert.equal(await settledSoon(pull), false);
    held.open();
    assert.equal((await pull).seq, 1);
    assert.equal(io.syncs, 1);
  });

  test("'written': a failed background fdatasync keeps the acknowledged entry and refuses every later append", async (t) => {
    const { log, path, io } = await openLog(t, new TestIo(), undefined, 'written');
    const held = gate();
    io.syncGate = held.promise;
    io.faults.push('sync');
    const entry = await log.append(exported(1), { disclosure: true });
    held.open();
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(isAppError(log.refusal, 'AUDIT_WRITE_FAILED'), 'refused for good after the failed sync');
    await assert.rejects(
      log.append(input(2)),
      (err) => isAppError(err, 'AUDIT_WRITE_FAILED') && /restart/.test(err.message),
    );
    await assert.rejects(log.append(exported(3), { disclosure: true }), (err) =>
      isAppError(err, 'AUDIT_WRITE_FAILED'),
    );
    assert.deepEqual(await verifyAuditLog(path), {
      ok: true,
      entries: 1,
      head: { seq: 1, hash: entry.hash },
    });
  });
});

describe('AuditLog tail and query', () => {
  async function filled(t: Parameters<typeof tempDir>[0], recentEntries?: number) {
    const ctx = await openLog(t, new TestIo(), recentEntries);
    for (let i = 1; i <= 30; i++) {
      await ctx.log.append(
        input(i, {
          action: i % 3 === 0 ? 'key.export' : 'cert.issue',
          outcome: i % 5 === 0 ? 'denied' : 'success',
        }),
      );
      ctx.clock.advance(60_000);
    }
    return ctx;
  }
  for (const recent of [undefined, 4]) {
    const label = recent === undefined ? 'from memory' : 'from the file (small memory ring)';
    test(`tail returns the last n, oldest first, ${label}`, async (t) => {
      const { log } = await filled(t, recent);
      assert.deepEqual(
        (await log.tail(5)).map((e) => e.seq),
        [26, 27, 28, 29, 30],
      );
    });
    test(`query filters by action prefix, outcome and subject ${label}`, async (t) => {
      const { log } = await filled(t, recent);
      assert.deepEqual(
        (await log.query({ action: 'key.*', limit: 3 })).map((e) => e.seq),
        [24, 27, 30],
      );
      assert.deepEqual(
        (await log.query({ outcome: 'denied', limit: 100 })).map((e) => e.seq),
        [5, 10, 15, 20, 25, 30],
      );
      assert.deepEqual(
        (await log.query({ subject: 'cert:c1*', limit: 100 })).map((e) => e.seq),
        [1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
      );
    });
    test(`query pages forward with since and afterSeq ${label}`, async (t) => {
      const { log } = await filled(t, recent);
      const since = new Date(Date.UTC(2026, 0, 1) + 10 * 60_000); // the time of seq 11
      const page1 = await log.query({ since, limit: 4 });
      assert.deepEqual(
        page1.map((e) => e.seq),
        [11, 12, 13, 14],
      );
      const page2 = await log.query({ since: since.toISOString(), afterSeq: page1.at(-1)!.seq, limit: 4 });
      assert.deepEqual(
        page2.map((e) => e.seq),
        [15, 16, 17, 18],
      );
      assert.deepEqual(
        (await log.query({ afterSeq: 28, limit: 10 })).map((e) => e.seq),
        [29, 30],
      );
    });
  }
  test('rejects a limit outside 1..1000 and a bad since', async (t) => {
    const { log } = await openLog(t);
    for (const limit of [0, 1001, 1.5]) {
      await assert.rejects(log.query({ limit }), (err) => isAppError(err, 'INVALID_ARGUMENT'));
    }
    await assert.rejects(log.query({ limit: 1, since: 'yesterday' }), (err) =>
      isAppError(err, 'INVALID_ARGUMENT'),
    );
  });
});
