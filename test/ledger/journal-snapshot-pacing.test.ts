// Issue 15 point 1: a snapshot written while commits go on is paced (snapshotLoopShare), may be flushed in small
// steps (snapshotSyncEveryBytes), and the JournalTrace hook reports what each commit group and snapshot did.
import { readFileSync, mkdtempSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { open as openFile, rename, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JournalLedger, LedgerError, type JournalTrace, type LedgerRecord } from '../../src/ledger/index.js';
import { writeSnapshotFile, type SnapshotFileHandle, type SnapshotFileSystem } from '../../src/ledger/journal-format.js';
import { makeRecord } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'tokenmeter-pacing-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let dirCounter = 0;
const freshDir = () => join(tmp, `l${++dirCounter}`);
const PERIOD = '2030-07-01T00:00:00.000Z';

/** node:fs/promises, counting syncs and the bytes written before each. */
class CountingDisk implements SnapshotFileSystem {
  syncsAt: number[] = [];
  written = 0;
  async open(path: string, flags: 'w' | 'r'): Promise<SnapshotFileHandle> {
    const fh = await openFile(path, flags);
    return {
      write: async (buffer, offset, length, position) => {
        const r = await fh.write(buffer, offset, length, position);
        this.written += r.bytesWritten;
        return r;
      },
      read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
      sync: async () => {
        this.syncsAt.push(this.written);
        await fh.sync();
      },
      close: () => fh.close(),
    };
  }
  rename(from: string, to: string): Promise<void> {
    return rename(from, to);
  }
  unlink(path: string): Promise<void> {
    return unlink(path);
  }
}

function batch(from: number, n: number, users: number): LedgerRecord[] {
  return Array.from({ length: n }, (_, i) =>
    makeRecord({ periodStart: PERIOD, userId: `user-${(from + i) % users}`, tokens: { input: 1 + ((from + i) % 7) }, costs: { input: '0.001' } }),
  );
}

describe('journal ledger snapshots while commits go on', () => {
  it('writeSnapshotFile syncs after every syncEveryBytes written, then once more before verifying', async () => {
    const dir = freshDir();
    await JournalLedger.open(dir).then((l) => l.close());
    const disk = new CountingDisk();
    const parts = [Buffer.alloc(2500, 1), Buffer.alloc(3000, 2), Buffer.alloc(100, 3)];
    await writeSnapshotFile(dir, 'x.snap', parts, disk, async () => {}, 2000);
    // After the first part (2,500 ≥ 2,000), after the second (3,000), not after the third (100), and the final sync.
    expect(disk.syncsAt).toEqual([2500, 5500, 5600]);
    expect(readFileSync(join(dir, 'x.snap'))).toEqual(Buffer.concat(parts));
    // By default: one sync, at the end.
    const once = new CountingDisk();
    await writeSnapshotFile(dir, 'y.snap', parts, once);
    expect(once.syncsAt).toEqual([5600]);
  });

  it('a snapshot taken during sustained commits completes paced, reopens exact; the trace reports every group and the snapshot I/O', async () => {
    const dir = freshDir();
    const groups: Parameters<NonNullable<JournalTrace['group']>>[0][] = [];
    const io: { kind: string; start: number; end: number; bytes: number }[] = [];
    const snaps: { start: number; end: number; busyMillis: number; pausedMillis: number }[] = [];
    const trace: JournalTrace = {
      group: (t) => groups.push(t),
      snapshotIo: (kind, start, end, bytes) => io.push({ kind, start, end, bytes }),
      snapshot: (start, end, busyMillis, pausedMillis) => snaps.push({ start, end, busyMillis, pausedMillis }),
    };
    const disk = new CountingDisk();
    // 3,000 users: several period chunks per snapshot; a snapshot every 256 KiB of journal, flushed every 16 KiB.
    const opts = { snapshotEveryBytes: 256 * 1024, snapshotSyncEveryBytes: 16 * 1024, snapshotLoopShare: 0.25, fileSystem: disk, trace };
    const ledger = await JournalLedger.open(dir, {}, opts);
    const users = 3000;
    let next = 0;
    const sender = async () => {
      while (next < 24_000) {
        const from = next;
        next += 400;
        await ledger.commit(batch(from, 400, users));
      }
    };
    await Promise.all([sender(), sender(), sender(), sender()]);
    const before = await ledger.periodSummary(PERIOD);
    const rollups = await ledger.loadPeriodRollups(PERIOD);
    await ledger.close();
    expect(before.requests).toBe(24_000);

    // Snapshots were begun during the commits and every one ended (the last by close).
    expect(snaps.length).toBeGreaterThanOrEqual(2);
    for (const s of snaps) {
      expect(s.end).toBeGreaterThanOrEqual(s.start);
      expect(s.busyMillis).toBeGreaterThan(0);
      expect(s.busyMillis + s.pausedMillis).toBeLessThanOrEqual(s.end - s.start + 1);
    }
    // Paced while commits went on (the last one, by close, has nothing to leave the loop to).
    expect(snaps.slice(0, -1).some((s) => s.pausedMillis > 0)).toBe(true);
    expect(snaps[snaps.length - 1].pausedMillis).toBe(0);
    // Flushed in steps: more syncs than snapshots, each after at most 16 KiB plus one part more.
    expect(disk.syncsAt.length).toBeGreaterThan(snaps.length);
    expect(io.filter((x) => x.kind === 'sync').length).toBe(disk.syncsAt.length);
    expect(io.some((x) => x.kind === 'read' && x.bytes > 0)).toBe(true);
    expect(io.filter((x) => x.kind === 'write').reduce((n, x) => n + x.bytes, 0)).toBe(disk.written);

    // Every group's steps in order; their fresh records add up to every call.
    expect(groups.reduce((n, g) => n + g.fresh, 0)).toBe(24_000);
    for (const g of groups) {
      expect(g.start).toBeLessThanOrEqual(g.appendStart);
      expect(g.appendStart).toBeLessThanOrEqual(g.written);
      expect(g.written).toBeLessThanOrEqual(g.synced);
      expect(g.synced).toBeLessThanOrEqual(g.end);
      expect(g.records).toBeGreaterThanOrEqual(g.fresh);
      expect(g.callers).toBeGreaterThanOrEqual(1);
    }

    // The snapshots hold the state exactly: reopened from the newest, nothing to replay, same totals.
    expect(readdirSync(dir).some((n) => n.endsWith('.tmp'))).toBe(false);
    const again = await JournalLedger.open(dir, {}, { snapshotOnClose: false });
    expect(again.journalBytesSinceSnapshot).toBe(0);
    expect(await again.periodSummary(PERIOD)).toEqual(before);
    expect(await again.loadPeriodRollups(PERIOD)).toEqual(rollups);
    await again.close();
  });

  it('with snapshotSyncEveryBytes = 1 MiB a snapshot is fsynced every 1 MiB, so no fsync of it holds more (and it still reopens exact)', async () => {
    const dir = freshDir();
    const disk = new CountingDisk();
    const ledger = await JournalLedger.open(dir, {}, { fileSystem: disk, snapshotOnClose: false, snapshotSyncEveryBytes: 1024 * 1024 });
    for (let from = 0; from < 80_000; from += 8_000) await ledger.commit(batch(from, 8_000, 3000)); // ~1.9 MB of dedup keys
    await ledger.checkpoint();
    const summary = await ledger.periodSummary(PERIOD);
    await ledger.close();
    const size = disk.written;
    expect(size).toBeGreaterThan(2 * 1024 * 1024);
    expect(disk.syncsAt.length).toBeGreaterThanOrEqual(Math.floor(size / (1024 * 1024)));
    // Between two syncs: at most 1 MiB plus one part (the biggest part here: a key chunk, ≤ 1.5 MiB + framing).
    let prev = 0;
    for (const at of disk.syncsAt) {
      expect(at - prev).toBeLessThanOrEqual(1024 * 1024 + 65536 * 24 + 64);
      prev = at;
    }
    expect(disk.syncsAt[disk.syncsAt.length - 1]).toBe(size);
    const again = await JournalLedger.open(dir, {}, { snapshotOnClose: false });
    expect(await again.periodSummary(PERIOD)).toEqual(summary);
    await again.close();
  });

  it('by default a snapshot is written as before: one fsync at the end, never paced', async () => {
    const disk = new CountingDisk();
    const paused: number[] = [];
    const trace: JournalTrace = { snapshot: (_s, _e, _busy, pausedMillis) => paused.push(pausedMillis) };
    const ledger = await JournalLedger.open(freshDir(), {}, { fileSystem: disk, snapshotEveryBytes: 128 * 1024, snapshotOnClose: false, trace });
    let next = 0;
    const sender = async () => {
      while (next < 12_000) {
        const from = next;
        next += 400;
        await ledger.commit(batch(from, 400, 3000));
      }
    };
    await Promise.all([sender(), sender(), sender()]);
    await ledger.close();
    expect(paused.length).toBeGreaterThanOrEqual(1);
    expect(paused.every((p) => p === 0)).toBe(true);
    expect(disk.syncsAt.length).toBe(paused.length);
  });

  it('a checkpoint, which holds commits back, is not paced by the commits queued behind it', async () => {
    const paused: number[] = [];
    const trace: JournalTrace = { snapshot: (_s, _e, _busy, pausedMillis) => paused.push(pausedMillis) };
    const ledger = await JournalLedger.open(freshDir(), {}, { snapshotLoopShare: 0.01, snapshotEveryBytes: 1e12, snapshotOnClose: false, trace });
    for (let from = 0; from < 30_000; from += 3_000) await ledger.commit(batch(from, 3_000, 6000));
    const checkpoint = ledger.checkpoint();
    const queued = [0, 1, 2].map((k) => ledger.commit(batch(30_000 + k * 500, 500, 6000)));
    await checkpoint;
    await Promise.all(queued);
    expect((await ledger.periodSummary(PERIOD)).requests).toBe(31_500);
    await ledger.close();
    expect(paused).toEqual([0]);
  });

  it('snapshotLoopShare outside (0, 1] and a snapshotSyncEveryBytes that is not positive are refused naming the option', async () => {
    for (const bad of [0, -0.5, 1.5, Number.NaN]) {
      const dir = freshDir();
      await expect(JournalLedger.open(dir, {}, { snapshotLoopShare: bad })).rejects.toThrow(LedgerError);
      await expect(JournalLedger.open(dir, {}, { snapshotLoopShare: bad })).rejects.toThrow(/snapshotLoopShare must be a number in \(0, 1\]/);
      expect(existsSync(join(dir, 'tokenmeter.lock'))).toBe(false);
    }
    for (const bad of [0, -1, Number.NaN]) {
      await expect(JournalLedger.open(freshDir(), {}, { snapshotSyncEveryBytes: bad })).rejects.toThrow(/snapshotSyncEveryBytes must be a positive number of bytes/);
    }
  });
});
