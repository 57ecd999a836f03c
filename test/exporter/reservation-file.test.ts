/**
 * The embedded ledger's holds file (issue 16): holds granted before a restart are loaded again, ended ones are not,
 * holds that expired while the exporter was down are counted once, and a damaged, torn or hostile file never stops
 * the exporter (its bad lines are skipped and counted).
 */
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { HoldFile, openHoldFile, readHolds, RESERVATIONS_FILE } from '../../src/exporter/reservation-file.js';
import { MemoryReservationStore, type NewReservation, type UserSnapshot } from '../../src/exporter/reservations.js';

const T0 = new Date('2026-12-03T12:00:00Z');
const PERIOD = new Date('2026-12-01T00:00:00Z');
const dir = () => mkdtempSync(join(tmpdir(), 'tm-holds-'));

function hold(n: number, expiresInMillis = 60_000, user = 'u1'): NewReservation {
  return {
    id: `r_${n.toString(16).padStart(24, '0')}`,
    userId: user,
    plan: 'free',
    periodStart: PERIOD,
    hold: { tokens: 100 + n, requests: 1, costUsd: '0.000123' },
    expiresAt: new Date(T0.getTime() + expiresInMillis),
    traceId: 'a'.repeat(32),
    spanId: n.toString(16).padStart(16, '0'),
  };
}

/** A store over an empty ledger, with the holds file of `d` (what the exporter builds at start). */
function store(d: string, now: Date, log: string[] = []): MemoryReservationStore {
  return new MemoryReservationStore({ userModelUsage: async () => [] }, openHoldFile(d, now, (l) => log.push(l)));
}

/** Grants one hold (whatever the snapshot) and returns the snapshot the decision saw. */
async function grant(s: MemoryReservationStore, r: NewReservation, now = T0): Promise<UserSnapshot> {
  let seen: UserSnapshot | undefined;
  await s.reserve(r.userId, r.periodStart, now, (snap) => {
    seen = snap;
    return r;
  });
  return seen!;
}

describe('the holds file', () => {
  it('a hold granted before a restart counts after it; a settled one does not; each hold is settled once', async () => {
    const d = dir();
    const a = store(d, T0);
    await grant(a, hold(1));
    await grant(a, hold(2));
    await grant(a, hold(3));
    expect(a.settleNow([{ traceId: 'a'.repeat(32), spanId: hold(1).spanId!, usage: { input: 10, output: 5 } as never }])).toHaveLength(1);
    // No close: as after a kill -9 (what write() handed the kernel is in the file).
    await new Promise((r) => setTimeout(r, 20));
    const log: string[] = [];
    const b = store(d, T0, log);
    expect(b.activeCount()).toBe(2);
    expect(await b.reserved('u1', PERIOD, T0)).toEqual({ tokens: 205, requests: 2, costUsd: '0.000246' });
    expect(log).toEqual(['reservations: 2 hold(s) still active after the restart, 0 expired meanwhile']);
    // The span of hold 2 arrives after the restart (and again, replayed): settled once.
    const rec = { traceId: 'a'.repeat(32), spanId: hold(2).spanId!, usage: { input: 10, output: 5 } as never };
    expect(b.settleNow([rec])).toEqual([{ estimateTokens: 102, actualTokens: 15 }]);
    expect(b.settleNow([rec])).toEqual([]);
    // The next decision sees what is left.
    expect((await grant(b, hold(4))).reserved).toEqual({ tokens: 103, requests: 1, costUsd: '0.000123' });
    await b.close();
    const c = store(d, T0);
    expect((await c.reserved('u1', PERIOD, T0)).requests).toBe(2);
    await c.close();
  });

  it('holds that expired while the exporter was down are counted as expired once (the file is rewritten without them)', async () => {
    const d = dir();
    const a = store(d, T0);
    await grant(a, hold(1, 1_000));
    await grant(a, hold(2, 60_000));
    const later = new Date(T0.getTime() + 5_000);
    const b = store(d, later);
    expect(b.activeCount()).toBe(1);
    expect(await b.expire(later)).toBe(1);
    expect(await b.expire(later)).toBe(0);
    const c = store(d, later);
    expect(await c.expire(later)).toBe(0);
    expect(c.activeCount()).toBe(1);
    // Expired in the running exporter: recorded, so the next start does not count it again.
    const end = new Date(T0.getTime() + 120_000);
    expect(await c.expire(end)).toBe(1);
    await new Promise((r) => setTimeout(r, 20));
    const e = store(d, end);
    expect(e.activeCount()).toBe(0);
    expect(await e.expire(end)).toBe(0);
    await e.close();
  });

  it('a line cut short by a crash, a damaged line and hostile lines are skipped and counted; the good holds load', () => {
    const d = dir();
    const { file } = HoldFile.open(d, T0);
    void file;
    const path = join(d, RESERVATIONS_FILE);
    const good = readFileSync(path, 'utf8');
    expect(good).toBe('tokenmeter reservations, format 1\n');
    const line = (json: string, crc?: string) => `${crc ?? crcOf(json)} ${json}\n`;
    const g = (o: Record<string, unknown>) => JSON.stringify({ g: 'r_1', u: 'u1', p: 'free', s: PERIOD.getTime(), t: 10, r: 1, c: '0.5', e: T0.getTime() + 60_000, ...o });
    appendFileSync(
      path,
      line(g({})) +
        line(g({ g: 'r_2' }), '00000000') + // checksum wrong
        line(g({ g: 'r_3', t: -5 })) + // negative tokens
        line(g({ g: 'r_4', c: '1e400' })) + // not a decimal string
        line(g({ g: 'r_5', u: 'x'.repeat(300) })) + // user id too long
        line(g({ g: 'r_6', ti: 'zz', si: 'yy' })) + // a bad span id is dropped (the hold still counts)
        line('[1,2,3]') +
        line('{"g":') + // not JSON
        'no checksum at all\n' +
        line(g({ g: 'r_7' })).slice(0, 30), // cut short by a crash
    );
    const loaded = readHolds(path, T0);
    expect(loaded.live.map((h) => h.id)).toEqual(['r_1', 'r_6']);
    expect(loaded.live[1]!.traceId).toBeUndefined();
    expect(loaded.skipped).toBe(8);
    const log: string[] = [];
    const s = store(d, T0, log);
    expect(s.activeCount()).toBe(2);
    expect(log[0]).toMatch(/^reservations: 8 damaged line\(s\) of .*reservations\.log skipped/);
  });

  it('an oversized file is refused, not read into memory: holds in memory only, said in the log', () => {
    const d = dir();
    const path = join(d, RESERVATIONS_FILE);
    writeFileSync(path, 'x'.repeat(2000));
    expect(() => readHolds(path, T0, 1000)).toThrow(/is 2000 bytes, more than the 1000 a holds file can be/);
    expect(readHolds(path, T0).skipped).toBe(1);
  });

  it('a directory it cannot write to: holds in memory only, said in the log; the store still works', async () => {
    const d = dir();
    writeFileSync(join(d, `${RESERVATIONS_FILE}.tmp`), '');
    const log: string[] = [];
    // A file where the directory should be.
    const s = new MemoryReservationStore({ userModelUsage: async () => [] }, openHoldFile(join(d, `${RESERVATIONS_FILE}.tmp`), T0, (l) => log.push(l)));
    expect(log[0]).toMatch(/cannot use .*holds are kept in memory only/);
    await grant(s, hold(1));
    expect(s.activeCount()).toBe(1);
  });

  it('a grant that cannot be written is taken back and the reservation fails (the app then applies its fail mode)', async () => {
    const d = dir();
    const opened = openHoldFile(d, T0, () => {})!;
    const s = new MemoryReservationStore({ userModelUsage: async () => [] }, opened);
    await opened.file.close(); // every later write fails
    await expect(grant(s, hold(1))).rejects.toThrow(/could not write the reservation to disk/);
    expect(s.activeCount()).toBe(0);
    expect(await s.reserved('u1', PERIOD, T0)).toEqual({ tokens: 0, requests: 0, costUsd: '0' });
  });

  it.each([false, true])('concurrent grants share writes and all reach the file before they are answered (sync_each_grant: %s)', async (syncEachGrant) => {
    const d = dir();
    const s = new MemoryReservationStore({ userModelUsage: async () => [] }, openHoldFile(d, T0, () => {}, { syncEachGrant }));
    const path = join(d, RESERVATIONS_FILE);
    const answered = await Promise.all(Array.from({ length: 200 }, (_, i) => grant(s, hold(i + 1)).then(() => readHolds(path, T0).live.some((h) => h.id === hold(i + 1).id))));
    expect(answered.every(Boolean)).toBe(true);
    expect(readHolds(path, T0).live).toHaveLength(200);
    await s.close();
  });
});

function crcOf(json: string): string {
  return crc32(json).toString(16).padStart(8, '0');
}
