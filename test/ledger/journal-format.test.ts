/**
 * The journal ledger's on-disk format: versions (a directory written by format 1 opens, newer formats are refused
 * with a clear message) and disk full (a snapshot that cannot be written whole never replaces a good one; a bad
 * snapshot at open falls back to an older one or a full replay).
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { open as openFile, rename, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal } from 'decimal.js';
import { afterAll, describe, expect, it } from 'vitest';
import { JournalLedger, LedgerError, openLedger, type Ledger } from '../../src/ledger/index.js';
import { ENTRY_COMMIT, ENTRY_LAYOUT } from '../../src/ledger/journal-entry.js';
import { frameEntry, readEntries, writeSnapshotFile, type SnapshotFileHandle, type SnapshotFileSystem } from '../../src/ledger/journal-format.js';
import { ManualClock } from '../../src/plans/index.js';
import { makeRecord } from './fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'tokenmeter-journal-format-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let dirCounter = 0;
const freshDir = () => join(tmp, `d${++dirCounter}`);
const FIXTURE = new URL('./fixtures/journal-v1', import.meta.url).pathname;
const EXPECTED = JSON.parse(readFileSync(new URL('./fixtures/journal-v1.expected.json', import.meta.url), 'utf8')) as {
  clock: string;
  ids: number;
  jan: { rollups: unknown; summary: unknown };
  feb: { rollups: unknown; summary: unknown; alice: unknown };
};
const JAN = '2030-01-01T00:00:00.000Z';
const FEB = '2030-02-01T00:00:00.000Z';
const PERIOD = '2030-07-01T00:00:00.000Z';
const snapshots = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('snapshot-')).sort();
const segments = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('journal-')).sort();
/** The fixture's discount function (see test/ledger/fixtures/README.md). */
const discounts = (_p: string, prior: Decimal, gross: Decimal) => (prior.gt(0) ? gross.div(10) : new Decimal(0));
/** The ids the fixture's generator gave its calls, in order. */
const fixtureId = (n: number) => ({ traceId: n.toString(16).padStart(32, '0'), spanId: (n * 7).toString(16).padStart(16, '0') });

async function fixtureState(l: Ledger) {
  return {
    jan: { rollups: await l.loadPeriodRollups(JAN, { unpriced: true }), summary: await l.periodSummary(JAN) },
    feb: { rollups: await l.loadPeriodRollups(FEB, { unpriced: true }), summary: await l.periodSummary(FEB), alice: await l.userPeriodUsage('alice', FEB) },
  };
}

async function everything(l: Ledger) {
  const rollups = await l.loadPeriodRollups(PERIOD, { unpriced: true });
  return { rollups, summary: await l.periodSummary(PERIOD), spend: await l.providerPeriodSpend(PERIOD) };
}

function records(n: number, seed: number) {
  return Array.from({ length: n }, (_, i) =>
    makeRecord({
      periodStart: PERIOD,
      userId: `u${(i * 7 + seed) % 13}`,
      plan: i % 3 === 0 ? 'pro' : 'free',
      tokens: { input: i + seed, output: 2 * i },
      costs: { input: `0.${String(i * 13 + seed).padStart(9, '0')}1`, output: `${i % 3}.000000000000000000000000000003` },
    }),
  );
}

describe('journal ledger format versions', () => {
  it('opens a directory written by format 1 (the previous format) with exact totals, says it upgraded, and writes format 2 from then on', async () => {
    const dir = freshDir();
    cpSync(FIXTURE, dir, { recursive: true });
    expect(readFileSync(join(dir, 'FORMAT'), 'utf8')).toBe('tokenmeter journal ledger, format 1\n');
    const clock = new ManualClock(EXPECTED.clock);
    const said: string[] = [];
    const l = await JournalLedger.open(dir, { clock, discounts }, { log: (m) => said.push(m) });
    expect(await fixtureState(l)).toEqual({ jan: EXPECTED.jan, feb: EXPECTED.feb });
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/upgraded from format 1 to format 2/);
    expect(readFileSync(join(dir, 'FORMAT'), 'utf8')).toBe('tokenmeter journal ledger, format 2\n');
    // The calls of both format-1 files (the snapshot's and the replayed segment's) are still deduplicated.
    const again = Array.from({ length: EXPECTED.ids }, (_, k) => makeRecord({ ...fixtureId(k + 1), periodStart: FEB }));
    expect((await l.commit(again)).committed).toEqual([]);
    const fresh = makeRecord({ periodStart: FEB, userId: 'erin', tokens: { input: 1 }, costs: { input: '0.000001' } });
    expect((await l.commit([fresh])).committed).toHaveLength(1);
    const after = await fixtureState(l);
    await l.close();
    // The new segment starts with a format-2 header entry; the new snapshot is format 2.
    const newest = join(dir, segments(dir).at(-1)!);
    const firstPayload: Buffer[] = [];
    readEntries(readFileSync(newest), newest, false, (p) => firstPayload.push(p));
    expect(firstPayload[0][0]).toBe(0x48);
    expect(firstPayload[0][1]).toBe(2);
    expect(readFileSync(join(dir, snapshots(dir).at(-1)!)).subarray(0, 29).toString('latin1')).toBe('TOKENMETER-LEDGER-SNAPSHOT-2\n');
    // Reopened (format 2 snapshot + a mix of format-1 and format-2 segments): the same, and no second message.
    said.length = 0;
    const m = await JournalLedger.open(dir, { clock, discounts }, { log: (x) => said.push(x), snapshotOnClose: false });
    expect(await fixtureState(m)).toEqual(after);
    await m.close();
    expect(said).toEqual([]);
    // Without any snapshot: the format-1 and format-2 segments replay to the same totals.
    for (const s of snapshots(dir)) rmSync(join(dir, s));
    const r = await JournalLedger.open(dir, { clock, discounts }, { snapshotOnClose: false });
    expect(await fixtureState(r)).toEqual(after);
    await r.close();
  });

  it('refuses what a newer tokenmeter wrote, saying so: FORMAT, a segment header, an entry layout, a snapshot', async () => {
    const make = async () => {
      const dir = freshDir();
      const l = await openLedger(dir);
      await l.commit(records(3, 1));
      await l.close();
      return dir;
    };
    const newer = /newer tokenmeter.*upgrade tokenmeter/;

    let dir = await make();
    writeFileSync(join(dir, 'FORMAT'), 'tokenmeter journal ledger, format 3\n');
    await expect(openLedger(dir)).rejects.toThrow(newer);
    writeFileSync(join(dir, 'FORMAT'), 'something else\n');
    await expect(openLedger(dir)).rejects.toThrow(/not a journal ledger format/);

    // A segment whose header says format 3 (rewritten with a valid checksum: not corruption, a newer writer).
    dir = await make();
    for (const s of snapshots(dir)) rmSync(join(dir, s));
    const seg = join(dir, segments(dir)[0]);
    const entries: Buffer[] = [];
    readEntries(readFileSync(seg), seg, false, (p) => entries.push(Buffer.from(p)));
    entries[0][1] = 3;
    writeFileSync(seg, Buffer.concat(entries.map((p) => frameEntry([p]))));
    await expect(openLedger(dir)).rejects.toThrow(newer);

    // An entry of a layout this code does not know, and an unknown entry type.
    for (const patch of [(p: Buffer) => (p[1] = ENTRY_LAYOUT + 1), (p: Buffer) => (p[0] = 0x5a)]) {
      dir = await make();
      for (const s of snapshots(dir)) rmSync(join(dir, s));
      const file = join(dir, segments(dir)[0]);
      const es: Buffer[] = [];
      readEntries(readFileSync(file), file, false, (p) => es.push(Buffer.from(p)));
      expect(es[1][0]).toBe(ENTRY_COMMIT);
      patch(es[1]);
      writeFileSync(file, Buffer.concat(es.map((p) => frameEntry([p]))));
      await expect(openLedger(dir)).rejects.toThrow(/holds an entry at byte offset \d+ that a newer tokenmeter wrote.*upgrade tokenmeter/);
    }

    // A snapshot of a newer format is not "corrupt": it is refused, never skipped.
    dir = await make();
    const snap = join(dir, snapshots(dir).at(-1)!);
    const bytes = readFileSync(snap);
    bytes[27] = '3'.charCodeAt(0);
    writeFileSync(snap, bytes);
    const said: string[] = [];
    await expect(openLedger(dir, { journal: { log: (m) => said.push(m) } })).rejects.toThrow(/format 3, written by a newer tokenmeter/);
  });

  it('reads commit records with optional trailing fields a later layout appends (record size in the entry)', async () => {
    const dir = freshDir();
    const l = await JournalLedger.open(dir, {}, { snapshotOnClose: false });
    await l.commit(records(4, 2));
    const before = await everything(l);
    await l.close();
    // Rewrite the commit entry with 8 more bytes per record (zeros), as a later version adding a field would.
    const seg = join(dir, segments(dir)[0]);
    const es: Buffer[] = [];
    readEntries(readFileSync(seg), seg, false, (p) => es.push(Buffer.from(p)));
    const c = es[1];
    const calls = c.readUInt32LE(16);
    const recordsAt = c.length - calls * 160;
    const wider = Buffer.alloc(recordsAt + calls * 168);
    c.copy(wider, 0, 0, recordsAt);
    wider.writeUInt16LE(168, 2);
    for (let k = 0; k < calls; k++) c.copy(wider, recordsAt + k * 168, recordsAt + k * 160, recordsAt + (k + 1) * 160);
    es[1] = wider;
    writeFileSync(seg, Buffer.concat(es.map((p) => frameEntry([p]))));
    const m = await JournalLedger.open(dir, {}, { snapshotOnClose: false });
    expect(await everything(m)).toEqual(before);
    await m.close();
  });
});

/** A disk that fills up: node:fs/promises underneath, writes shortened, and nothing written past `capacity` bytes. */
class FillingDisk implements SnapshotFileSystem {
  written = 0;
  shortWrites = 0;
  constructor(public capacity: number) {}

  async open(path: string, flags: 'w' | 'r'): Promise<SnapshotFileHandle> {
    const fh = await openFile(path, flags);
    return {
      write: async (buffer, offset, length, position) => {
        // Never more than 1000 bytes at once (short writes), and nothing once the disk is full.
        const n = Math.max(0, Math.min(length, 1000, this.capacity - this.written));
        if (n < length) this.shortWrites++;
        if (n === 0) return { bytesWritten: 0 };
        this.written += n;
        return fh.write(buffer, offset, n, position);
      },
      read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
      sync: () => fh.sync(),
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

/** A disk whose rename is never reached because the file reads back cut short (a lost write). */
class LosingDisk extends FillingDisk {
  override async open(path: string, flags: 'w' | 'r'): Promise<SnapshotFileHandle> {
    const fh = await super.open(path, flags);
    if (flags === 'w') return { ...fh, sync: async () => { await fh.sync(); truncateSync(path, 10); } };
    return fh;
  }
}

describe('journal ledger on a full disk', () => {
  it('writeSnapshotFile continues short writes, and on a full disk removes its temp file and leaves the target alone', async () => {
    const dir = freshDir();
    await openLedger(dir).then((l) => l.close());
    const parts = [Buffer.alloc(2500, 1), Buffer.alloc(3000, 2)];
    const roomy = new FillingDisk(1e9);
    await writeSnapshotFile(dir, 'x.snap', parts, roomy);
    expect(roomy.shortWrites).toBeGreaterThan(0);
    expect(readFileSync(join(dir, 'x.snap'))).toEqual(Buffer.concat(parts));

    const full = new FillingDisk(4000);
    await expect(writeSnapshotFile(dir, 'x.snap', [Buffer.alloc(5500, 3)], full)).rejects.toThrow(/short write.*disk full/);
    expect(readFileSync(join(dir, 'x.snap'))).toEqual(Buffer.concat(parts)); // untouched
    expect(existsSync(join(dir, 'x.snap.tmp'))).toBe(false);

    await expect(writeSnapshotFile(dir, 'x.snap', [Buffer.alloc(5500, 4)], new LosingDisk(1e9))).rejects.toThrow(/reads back 10 bytes/);
    expect(readFileSync(join(dir, 'x.snap'))).toEqual(Buffer.concat(parts));
    expect(existsSync(join(dir, 'x.snap.tmp'))).toBe(false);
  });

  it('a snapshot that hits a full disk never replaces or deletes the good one; commits go on; the next start is exact', async () => {
    const dir = freshDir();
    const disk = new FillingDisk(1e9);
    const said: string[] = [];
    const l = await JournalLedger.open(dir, {}, { fileSystem: disk, log: (m) => said.push(m), snapshotOnClose: false });
    await l.commit(records(50, 1));
    await l.checkpoint();
    const good = snapshots(dir);
    expect(good).toHaveLength(1);
    const goodBytes = readFileSync(join(dir, good[0]));
    disk.capacity = disk.written + 300; // the next snapshot runs out of space part way
    await l.commit(records(50, 2));
    await l.checkpoint();
    await l.checkpoint(); // twice: said once
    expect(snapshots(dir)).toEqual(good);
    expect(readFileSync(join(dir, good[0]))).toEqual(goodBytes);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/cannot write the journal ledger snapshot .*disk full.*the journal still holds every call/);
    await l.commit(records(50, 3)); // commits do not depend on snapshots
    const live = await everything(l);
    await l.close();
    const m = await openLedger(dir, { journal: { snapshotOnClose: false } });
    expect(await everything(m)).toEqual(live);
    await m.close();
  });

  it('at open, a truncated newest snapshot falls back to the previous one and says so; totals and dedup exact', async () => {
    const dir = freshDir();
    const l = await JournalLedger.open(dir, {}, { snapshotOnClose: false });
    const all = [...records(40, 1), ...records(40, 2), ...records(40, 3)];
    await l.commit(all.slice(0, 40));
    await l.checkpoint();
    await l.commit(all.slice(40, 80));
    await l.checkpoint();
    await l.commit(all.slice(80));
    const live = await everything(l);
    await l.close();
    const snaps = snapshots(dir);
    expect(snaps).toHaveLength(2);
    const newest = join(dir, snaps[1]);
    truncateSync(newest, Math.floor(statSync(newest).size / 2)); // what a disk-full rename used to leave
    const said: string[] = [];
    const m = await openLedger(dir, { journal: { log: (x) => said.push(x), snapshotOnClose: false } });
    expect(await everything(m)).toEqual(live);
    expect((await m.commit(all)).committed).toEqual([]);
    await m.close();
    expect(said).toHaveLength(1);
    expect(said[0]).toContain(`skipped the journal ledger snapshot ${newest}`);
    expect(said[0]).toMatch(/cut short/);
    expect(said[0]).toContain(`loaded the older snapshot ${join(dir, snaps[0])}`);
  });

  it('when the journal a fallback needs was pruned, the error says so and what to do', async () => {
    const clock = new ManualClock('2030-07-01T00:00:00Z');
    const dir = freshDir();
    const l = await JournalLedger.open(dir, { clock }, { snapshotOnClose: false });
    await l.commit(records(10, 1));
    clock.advance(30 * 24 * 60 * 60 * 1000);
    await l.commit(records(10, 2));
    await l.prune({ olderThan: new Date(clock.now().getTime() - 8 * 24 * 60 * 60 * 1000) });
    await l.commit(records(10, 3));
    await l.checkpoint();
    await l.close();
    for (const s of snapshots(dir)) writeFileSync(join(dir, s), 'garbage');
    const err = await openLedger(dir, { journal: { log: () => {} } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LedgerError);
    expect((err as Error).message).toMatch(/segments before it were pruned.*restore the directory from a backup/);
  });
});

/** A disk whose snapshot writes wait until `open()` is called on the gate: commits run while a snapshot is being written. */
class GatedDisk extends FillingDisk {
  #open!: () => void;
  readonly gate = new Promise<void>((resolve) => (this.#open = resolve));
  writesStarted = 0;
  constructor() {
    super(1e12);
  }
  release(): void {
    this.#open();
  }
  override async open(path: string, flags: 'w' | 'r'): Promise<SnapshotFileHandle> {
    const fh = await super.open(path, flags);
    return {
      ...fh,
      write: async (buffer, offset, length, position) => {
        this.writesStarted++;
        await this.gate;
        return fh.write(buffer, offset, length, position);
      },
    };
  }
}

describe('journal ledger snapshots written while commits go on', () => {
  it('the snapshot holds exactly the state when it began (changed rows frozen, new rows and keys left out), and open = that + replay', async () => {
    const dir = freshDir();
    const disk = new GatedDisk();
    // One user with two plans and several models, many users (several period chunks), two periods.
    const first = [
      ...Array.from({ length: 4500 }, (_, i) =>
        makeRecord({ periodStart: PERIOD, userId: `user-${i}`, plan: i % 2 ? 'pro' : 'free', model: i % 3 ? 'gpt-4o' : 'gpt-4o-mini', tokens: { input: i }, costs: { input: `0.${String(i).padStart(6, '0')}1` } }),
      ),
      makeRecord({ periodStart: '2030-06-01T00:00:00.000Z', userId: 'user-1', tokens: { input: 5 }, costs: { input: '0.5' } }),
    ];
    const l = await JournalLedger.open(dir, {}, { fileSystem: disk, snapshotEveryBytes: 1, snapshotOnClose: false });
    await l.commit(first); // the group ends with a snapshot begun (threshold 1 byte), held at the gate
    // The group may end a few event-loop turns after its callers are resolved (its work is done in slices).
    for (let waited = 0; disk.writesStarted === 0 && waited < 5000; waited += 5) await new Promise((r) => setTimeout(r, 5));
    expect(disk.writesStarted).toBeGreaterThan(0);
    const atSnapshot = await everything(l);
    const june = await l.loadPeriodRollups('2030-06-01T00:00:00.000Z');
    // While it waits: changes to users the writer has not read yet, a user's new plan and model, new users, a
    // new period, and calls repeated from before the snapshot (duplicates).
    const during = [
      ...Array.from({ length: 300 }, (_, i) =>
        makeRecord({ periodStart: PERIOD, userId: `user-${4499 - i}`, plan: i % 5 === 0 ? 'team' : (4499 - i) % 2 ? 'pro' : 'free', model: i % 7 === 0 ? 'o3' : 'gpt-4o', tokens: { output: 3 }, costs: { output: '1.25' } }),
      ),
      ...Array.from({ length: 50 }, (_, i) => makeRecord({ periodStart: PERIOD, userId: `late-${i}`, tokens: { input: 1 }, costs: { input: '0.01' } })),
      makeRecord({ periodStart: '2030-08-01T00:00:00.000Z', userId: 'user-2', tokens: { input: 1 }, costs: { input: '0.01' } }),
    ];
    const res = await l.commit([...during, ...first.slice(0, 10)]);
    expect(res.committed).toHaveLength(during.length);
    const live = await everything(l);
    expect(live).not.toEqual(atSnapshot);
    disk.release();
    await l.close(); // waits for the snapshot
    const snaps = snapshots(dir);
    expect(snaps).toHaveLength(1);
    const covers = Number(/(\d+)/.exec(snaps[0])![1]);

    // The snapshot alone (the segments it covers, none after it) answers exactly what the ledger held when it began.
    const only = freshDir();
    cpSync(dir, only, { recursive: true });
    for (const s of segments(only)) if (Number(/(\d+)/.exec(s)![1]) >= covers) rmSync(join(only, s));
    const a = await JournalLedger.open(only, {}, { snapshotOnClose: false });
    expect(await everything(a)).toEqual(atSnapshot);
    expect(await a.loadPeriodRollups('2030-06-01T00:00:00.000Z')).toEqual(june);
    expect(await a.loadPeriodRollups('2030-08-01T00:00:00.000Z')).toEqual([]);
    expect((await a.commit(first)).committed).toEqual([]); // its dedup keys
    expect((await a.commit(during.slice(-51))).committed).toHaveLength(51); // keys added later are not in it
    await a.close();
    // The snapshot + the segment after it: exactly the live state, nothing counted twice.
    const b = await JournalLedger.open(dir, {}, { snapshotOnClose: false });
    expect(await everything(b)).toEqual(live);
    expect((await b.commit([...first, ...during])).committed).toEqual([]);
    await b.close();
  });
});
