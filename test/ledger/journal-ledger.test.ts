import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal } from 'decimal.js';
import { afterAll, describe, expect, it } from 'vitest';
import {
  discountsFromTiers,
  JournalLedger,
  LedgerError,
  openLedger,
  type Ledger,
  type LedgerOptions,
  type LedgerRecord,
} from '../../src/ledger/index.js';
import { DedupKeys, readIdWords } from '../../src/ledger/dedup-keys.js';
import { CommitEncoder, decodeEntry, encodePrune } from '../../src/ledger/journal-entry.js';
import { LimbSum } from '../../src/money/index.js';
import { ManualClock } from '../../src/plans/index.js';
import { findPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { addDecimalStrings, hex, makeRecord } from './fixtures.js';

const hasPostgres = findPostgres() !== undefined;

const tmp = mkdtempSync(join(tmpdir(), 'tokenmeter-journal-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let dirCounter = 0;
const freshDir = () => join(tmp, `l${++dirCounter}`);
const PERIOD = '2030-07-01T00:00:00.000Z';
const DAY = 24 * 60 * 60 * 1000;

const segments = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('journal-')).sort();
const snapshots = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('snapshot-')).sort();

/** Everything the ledger can answer about a period, to compare two ledgers or one ledger before and after. */
async function everything(ledger: Ledger, periodStart: string) {
  const rollups = await ledger.loadPeriodRollups(periodStart);
  const users = await Promise.all([...new Set(rollups.map((r) => r.userId))].map((u) => ledger.userPeriodUsage(u, periodStart)));
  return { rollups, users, summary: await ledger.periodSummary(periodStart), spend: await ledger.providerPeriodSpend(periodStart) };
}

function someRecords(n: number, seed: number, periodStart = PERIOD): LedgerRecord[] {
  return Array.from({ length: n }, (_, i) =>
    makeRecord({
      periodStart,
      userId: `u${(i * 7 + seed) % 5}`,
      plan: i % 3 === 0 ? 'pro' : 'free',
      provider: i % 4 === 0 ? 'anthropic' : 'openai',
      model: i % 4 === 0 ? 'claude-sonnet-4' : i % 2 ? 'gpt-4o' : 'gpt-4o-mini',
      tokens: { input: i + seed, output: 2 * i, cache_write: i % 5, cache_write_1h: i % 3 === 0 ? i % 5 : 0 },
      costs: { input: `0.${String(i * 13 + seed).padStart(9, '0')}1`, output: `${i % 3}.000000000000000000000000000003`, cache_write: i % 5 ? '0.25' : '0' },
      estimated: i % 6 === 0,
      priced: i % 11 !== 0,
      feature: i % 2 ? 'chat' : undefined,
    }),
  );
}

describe('journal ledger (embedded): durability', () => {
  it('kill -9 in the middle of ingest: every acknowledged span is there exactly once, nothing counted twice', async () => {
    const dir = freshDir();
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'journal-crash-child.ts'), dir, PERIOD], {
      cwd: join(import.meta.dirname, '..', '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const sent: [string, string, string, number, string][] = [];
    const acked = new Set<string>();
    let buffered = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) {
          if (line.startsWith('SENT ')) sent.push(...JSON.parse(line.slice(5)));
          else if (line.startsWith('ACK ')) for (const s of JSON.parse(line.slice(line.indexOf(' ', 4) + 1)) as string[]) acked.add(s);
        }
        // Several snapshots and segments in, with commits still in flight.
        if (acked.size >= 3000) resolve();
      });
      child.on('exit', (code) => reject(new Error(`child exited ${code}: ${stderr}`)));
    });
    // 'close', not 'exit': every line the child wrote before it died (still in the pipe at exit) is read first.
    const exited = new Promise((r) => child.once('close', r));
    child.kill('SIGKILL');
    await exited;
    expect(sent.length).toBeGreaterThan(acked.size);

    const ledger = await openLedger(dir);
    try {
      const before = (await ledger.loadPeriodRollups(PERIOD)).reduce((s, r) => s + r.requests, 0);
      expect(before).toBeGreaterThanOrEqual(acked.size);
      expect(before).toBeLessThanOrEqual(sent.length);
      // The sender retries everything it sent: each acknowledged span is a duplicate, the rest commit once.
      const records = sent.map(([traceId, spanId, userId, input, cost]) =>
        makeRecord({ periodStart: PERIOD, traceId, spanId, userId, tokens: { input, output: 1 }, costs: { input: cost, output: '0.5' } }),
      );
      const res = await ledger.commit(records);
      records.forEach((r, i) => {
        if (acked.has(r.spanId)) expect(res.outcomes![i]).toBe('duplicate');
      });
      expect(res.committed.length).toBe(sent.length - before);
      const after = await ledger.loadPeriodRollups(PERIOD);
      expect(after.reduce((s, r) => s + r.requests, 0)).toBe(sent.length);
      expect(addDecimalStrings(after.map((r) => r.costUsd))).toBe(addDecimalStrings(records.map((r) => r.totalCostUsd)));
      expect(after.reduce((s, r) => s + r.tokens.input, 0)).toBe(records.reduce((s, r) => s + r.usage.input, 0));
    } finally {
      await ledger.close();
    }
  }, 60_000);

  it('a torn last write is truncated on open (it was never acknowledged)', async () => {
    const dir = freshDir();
    const a = await JournalLedger.open(dir, {}, { snapshotOnClose: false });
    await a.commit(someRecords(10, 1));
    const expected = await everything(a, PERIOD);
    await a.close();
    const seg = join(dir, segments(dir).at(-1)!);
    const size = statSync(seg).size;
    // Half of a second entry: a header that promises more bytes than follow, then a partial payload.
    const header = Buffer.alloc(8);
    header.writeUInt32LE(5000, 0);
    appendFileSync(seg, Buffer.concat([header, Buffer.from('C\u00001234\u0000')]));
    const b = await openLedger(dir);
    expect(statSync(seg).size).toBe(size);
    expect(await everything(b, PERIOD)).toEqual(expected);
    // A whole last entry whose checksum does not match (a torn page) is dropped the same way.
    await b.commit(someRecords(3, 2));
    await b.close();
    const dir2 = freshDir();
    const c = await JournalLedger.open(dir2, {}, { snapshotOnClose: false });
    await c.commit(someRecords(4, 3));
    const kept = await everything(c, PERIOD);
    await c.commit(someRecords(4, 4));
    await c.close();
    const seg2 = join(dir2, segments(dir2).at(-1)!);
    const bytes = readFileSync(seg2);
    bytes[bytes.length - 3] ^= 0xff;
    writeFileSync(seg2, bytes);
    const d = await openLedger(dir2);
    expect(await everything(d, PERIOD)).toEqual(kept);
    await d.close();
  });

  it('a corrupt entry in the middle is a clear error naming the file and offset, never skipped', async () => {
    const dir = freshDir();
    const a = await JournalLedger.open(dir, {}, { snapshotOnClose: false });
    await a.commit(someRecords(5, 1));
    await a.commit(someRecords(5, 2));
    await a.close();
    const seg = join(dir, segments(dir)[0]);
    const bytes = readFileSync(seg);
    bytes[20] ^= 0x01; // inside the first entry's payload
    writeFileSync(seg, bytes);
    const err = await openLedger(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LedgerError);
    expect((err as Error).message).toContain(seg);
    expect((err as Error).message).toMatch(/corrupt at byte offset 0: checksum mismatch/);
    // The failed open released the directory.
    expect(existsSync(join(dir, 'tokenmeter.lock'))).toBe(false);
  });

  it('a corrupt newest snapshot is skipped with a message naming it: the journal is replayed instead, totals exact', async () => {
    const dir = freshDir();
    const a = await openLedger(dir);
    await a.commit(someRecords(5, 1));
    const live = await everything(a, PERIOD);
    await a.close();
    const snap = join(dir, snapshots(dir).at(-1)!);
    const bytes = readFileSync(snap);
    bytes[bytes.length - 10] ^= 0x01;
    writeFileSync(snap, bytes);
    const said: string[] = [];
    const b = await openLedger(dir, { journal: { log: (m) => said.push(m), snapshotOnClose: false } });
    expect(await everything(b, PERIOD)).toEqual(live);
    await b.close();
    expect(said).toHaveLength(1);
    expect(said[0]).toContain(`skipped the journal ledger snapshot ${snap}`);
    expect(said[0]).toContain('the whole journal is replayed instead');
  });

  it('snapshot + replay gives the same state as a replay of the whole journal, and dedup survives both', async () => {
    const clock = new ManualClock('2030-07-02T00:00:00Z');
    const dir = freshDir();
    const discounts = discountsFromTiers({ openai: [{ above_usd: '3', percent_off: '12.5' }] });
    // Small snapshot threshold: several snapshots and segments during the commits below.
    const a = await JournalLedger.open(dir, { clock, discounts }, { snapshotEveryBytes: 4096 });
    const all: LedgerRecord[] = [];
    for (let k = 0; k < 12; k++) {
      const batch = someRecords(25, k);
      all.push(...batch);
      await a.commit(batch);
      if (k === 5) clock.set('2030-07-03T00:00:00Z'); // a new day: a new segment
    }
    await a.checkpoint();
    const tail = someRecords(7, 99);
    all.push(...tail);
    await a.commit(tail);
    const live = await everything(a, PERIOD);
    await a.close();
    expect(snapshots(dir).length).toBe(2); // the newest and the one before it (a fallback)
    expect(segments(dir).length).toBeGreaterThan(2);

    const b = await JournalLedger.open(dir, { clock, discounts }, { snapshotOnClose: false });
    expect(await everything(b, PERIOD)).toEqual(live);
    await b.close();
    for (const s of snapshots(dir)) rmSync(join(dir, s));
    const c = await JournalLedger.open(dir, { clock, discounts }, { snapshotOnClose: false });
    expect(await everything(c, PERIOD)).toEqual(live);
    expect((await c.commit(all)).committed).toEqual([]);
    await c.close();
  });

  it('restart keeps the period gauges exact and keeps deduplicating, across checkpoints', async () => {
    const dir = freshDir();
    const a = await openLedger(dir);
    const first = someRecords(30, 5);
    await a.commit(first);
    await (a as JournalLedger).checkpoint();
    const second = someRecords(30, 6);
    await a.commit(second);
    const live = await everything(a, PERIOD);
    await a.close();
    const b = await openLedger(dir);
    expect(await everything(b, PERIOD)).toEqual(live);
    const all = [...first, ...second];
    expect((await b.loadPeriodRollups(PERIOD)).reduce((s, r) => s + r.requests, 0)).toBe(60);
    expect(addDecimalStrings((await b.loadPeriodRollups(PERIOD)).map((r) => r.costUsd))).toBe(addDecimalStrings(all.map((r) => r.totalCostUsd)));
    const again = await b.commit(all);
    expect(again.outcomes).toEqual(all.map(() => 'duplicate'));
    await b.close();
  });

  it('dedup keys older than the window are forgotten as whole days; newer ones are kept across restart', async () => {
    const clock = new ManualClock('2030-07-01T10:00:00Z');
    const dir = freshDir();
    const options: LedgerOptions = { clock, dedupWindowMillis: 2 * DAY };
    const a = await openLedger(dir, options);
    const old = someRecords(3, 1);
    await a.commit(old);
    clock.set('2030-07-02T10:00:00Z');
    const recent = someRecords(3, 2);
    await a.commit(recent);
    await a.close();
    clock.set('2030-07-04T01:00:00Z'); // day of `old` (07-01) ended more than 2 days ago; 07-02 did not
    const b = await openLedger(dir, options);
    expect((await b.commit([...old, ...recent])).outcomes).toEqual(['committed', 'committed', 'committed', 'duplicate', 'duplicate', 'duplicate']);
    await b.close();
  });

  it('prune deletes whole old segments outside the dedup window, keeps totals, and rollupsBefore survives a restart', async () => {
    const clock = new ManualClock('2030-07-01T10:00:00Z');
    const dir = freshDir();
    const options: LedgerOptions = { clock };
    const a = await openLedger(dir, options);
    await a.commit(someRecords(10, 1));
    await a.commit(someRecords(10, 1, '2030-06-01T00:00:00.000Z'));
    clock.set('2030-07-20T10:00:00Z');
    await a.commit(someRecords(5, 2));
    const totals = await everything(a, PERIOD);
    expect(await a.prune({ olderThan: new Date('2030-07-10T00:00:00Z') })).toEqual({ callsDeleted: 20, rollupRowsDeleted: 0 });
    expect(await everything(a, PERIOD)).toEqual(totals);
    const r = await a.prune({ olderThan: new Date('2030-07-10T00:00:00Z'), rollupsBefore: new Date(PERIOD) });
    expect(r.callsDeleted).toBe(0);
    expect(r.rollupRowsDeleted).toBeGreaterThan(0);
    await a.close();
    const b = await openLedger(dir, options);
    expect(await b.loadPeriodRollups('2030-06-01T00:00:00.000Z')).toEqual([]);
    expect(await everything(b, PERIOD)).toEqual(totals);
    await b.close();
  });
});

describe('journal ledger (embedded): a big commit group does not hold the event loop', () => {
  it('applies a group in slices: reads in between see part of it, a caller is told durable only once all of it is in', async () => {
    const ledger = await JournalLedger.open(freshDir(), {}, { snapshotOnClose: false });
    try {
      // One group of three callers, 30,000 records: far more than one ~4 ms slice of work anywhere.
      const callers = [0, 1, 2].map((c) =>
        Array.from({ length: 10_000 }, (_, i) => makeRecord({ periodStart: PERIOD, userId: `u${(c * 10_000 + i) % 3000}`, tokens: { input: 1 }, costs: { input: '0.001' } })),
      );
      const seen: number[] = [];
      let done = false;
      const watch = async () => {
        while (!done) {
          seen.push((await ledger.periodSummary(PERIOD)).requests);
          await new Promise((r) => setImmediate(r));
        }
      };
      const watching = watch();
      const atDurable: number[] = [];
      const results = ledger.commitEach(callers, {}, callers.map(() => () => void ledger.periodSummary(PERIOD).then((s) => atDurable.push(s.requests))))!;
      const settled = await Promise.all(results);
      done = true;
      await watching;
      expect(settled.map((r) => r.committed.length)).toEqual([10_000, 10_000, 10_000]);
      // Reads ran while the group was being applied (a count strictly between none and all of it)...
      expect(seen.some((n) => n > 0 && n < 30_000)).toBe(true);
      expect(Math.max(...seen)).toBeLessThanOrEqual(30_000);
      // ...but each caller was told durable only with the whole group in the totals (the exporter acknowledges then).
      expect(atDurable).toEqual([30_000, 30_000, 30_000]);
      expect((await ledger.periodSummary(PERIOD)).requests).toBe(30_000);
      // Each caller's rollups are the totals after the whole group.
      const all = new Map((await ledger.loadPeriodRollups(PERIOD)).map((r) => [`${r.userId}/${r.plan}`, r.requests]));
      for (const r of settled) for (const u of r.rollups) expect(u.requests).toBe(all.get(`${u.userId}/${u.plan}`));
    } finally {
      await ledger.close();
    }
  });
});

describe('journal ledger (embedded): directory', () => {
  it('a directory in use by a live process is a clear error; a dead owner is taken over', async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, 'tokenmeter.lock'), `${holder.pid}\n`);
      await expect(openLedger(dir)).rejects.toThrow(new RegExp(`in use by process ${holder.pid}`));
    } finally {
      const exited = new Promise((r) => holder.once('exit', r));
      holder.kill('SIGKILL');
      await exited;
    }
    const l = await openLedger(dir);
    await l.close();
  });

  it('a lock file naming this process but not held by it is stale (a restarted container has pid 1 again)', async () => {
    // Regression: the pid in the lock file was this process's own pid, so the exporter refused to start after a
    // container restart (kill -9 leaves the lock; the new process gets the same pid).
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tokenmeter.lock'), `${process.pid}\n`);
    const l = await openLedger(dir);
    await expect(openLedger(dir)).rejects.toThrow(/in use by process \d+ \(this process\)/);
    await l.close();
    expect(existsSync(join(dir, 'tokenmeter.lock'))).toBe(false);
  });

  it('PGlite is retired: a PGlite directory and pglite: storage are refused naming the last version that reads them', async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'PG_VERSION'), '17\n');
    const retired = /holds a PGlite ledger \(the embedded store of tokenmeter 0\.1\.0 and earlier\), which this tokenmeter no longer reads\. To read its data, run tokenmeter 0\.1\.0, the last version with PGlite, with storage "pglite:/;
    await expect(openLedger(dir)).rejects.toThrow(retired);
    await expect(openLedger(`pglite:${dir}`)).rejects.toThrow(retired);
    await expect(openLedger('PGLITE:')).rejects.toThrow(retired);
    expect(readdirSync(dir)).toEqual(['PG_VERSION']); // nothing written into it (no lock, no FORMAT)
  });

  it('stores hostile strings verbatim through the journal and back (restart)', async () => {
    const dir = freshDir();
    const weird = ['=x', '', 'a\u0001b\nc\td', '{"json":[1]}', '🚀 ünïcödé', 'NULL', ' '];
    const records = weird.map((w, i) => makeRecord({ periodStart: PERIOD, userId: `${w}|${i}`, model: w || 'm', feature: w, tokens: { input: 1 }, costs: { input: '1' } }));
    const a = await JournalLedger.open(dir, {}, { snapshotOnClose: false });
    await a.commit(records);
    const live = await everything(a, PERIOD);
    await a.close();
    const b = await openLedger(dir);
    expect(await everything(b, PERIOD)).toEqual(live);
    expect(live.rollups.map((r) => r.userId).sort()).toEqual(records.map((r) => r.userId).sort());
    await b.close();
  });
});

describe.skipIf(!hasPostgres)('journal ledger (embedded) against PostgreSQL', () => {
  let pg: TestPostgres | undefined;
  afterAll(async () => {
    await pg?.cleanup();
  });

  it('volume discounts: the same inputs give the same committed records, spend and totals (also across a restart)', async () => {
    const clock = new ManualClock('2030-07-05T00:00:00Z');
    const discounts = discountsFromTiers({
      openai: [
        { above_usd: '2', percent_off: '7.5' },
        { above_usd: '9', percent_off: '15' },
      ],
      anthropic: [{ above_usd: '1.5', percent_off: '33.3' }],
    });
    const dirJ = freshDir();
    pg = await startPostgres();
    let journal = await openLedger(dirJ, { clock, discounts });
    const sql = await openLedger(pg.url, { clock, discounts });
    try {
      for (let k = 0; k < 6; k++) {
        const batch = someRecords(20, k).map((r, i) => ({ ...r, endTimeMillis: Date.parse(PERIOD) + 1000 * (k * 20 + ((i * 7) % 20)) }));
        batch.push(batch[3]); // a repeat inside the batch
        const [j, p] = await Promise.all([journal.commit(batch), sql.commit(batch)]);
        expect(j.outcomes).toEqual(p.outcomes);
        expect(j.committed).toEqual(p.committed);
        expect(j.rollups).toEqual(p.rollups);
        if (k === 2) {
          await journal.close();
          journal = await openLedger(dirJ, { clock, discounts });
        }
      }
      expect(await everything(journal, PERIOD)).toEqual(await everything(sql, PERIOD));
      const spend = await journal.providerPeriodSpend(PERIOD);
      expect(spend.every((s) => new Decimal(s.discountUsd).gt(0))).toBe(true);
    } finally {
      await journal.close();
      await sql.close();
    }
  }, 60_000);
});

describe('LimbSum (exact running sums)', () => {
  it('adds exactly like decimal.js: carries, 36+ fraction digits, beyond 24 integer digits', () => {
    const Exact = Decimal.clone({ precision: 300 });
    const values = [
      '0', '1', '0.1', '0.2', '999999999999.999999999999999999999999999999', '0.000000000000000000000000000000000001',
      '123456789012345678901234', '0.5', '1000', '0.30', '0.0000000000000000000000000000000000001234', '99999999999999999999999999.5', '999999999999999999999999999.000000001',
    ];
    const m = new LimbSum();
    let e = new Exact(0);
    for (let round = 0; round < 3; round++) {
      for (const v of values) {
        m.addString(v);
        e = e.plus(v);
        expect(m.toFixed()).toBe(e.toFixed());
      }
    }
    // Random money-shaped values, summed both ways and through add().
    const sum = new LimbSum();
    let exact = new Exact(0);
    for (let i = 0; i < 2000; i++) {
      const v = `${i % 3 === 0 ? String(i * 977) : '0'}.${String(Number.parseInt(hex(6), 16)).padStart(i % 30 + 1, '0')}`;
      sum.add(LimbSum.of(v));
      exact = exact.plus(v);
    }
    expect(sum.toFixed()).toBe(exact.toFixed());
    expect(LimbSum.of('0.30').toFixed()).toBe('0.3');
    expect(new LimbSum().toFixed()).toBe('0');
    expect(() => new LimbSum().addString('abc')).toThrow();
  });
});

describe('DedupKeys (the exact dedup set)', () => {
  it('behaves like a Set of trace id + span id through adds, deletes, growth and a buffer round trip', () => {
    const keys = new DedupKeys(16);
    const ref = new Set<string>();
    const pairs: [string, string][] = [];
    // Shared span ids under different traces, and sequential span ids (some instrumentations use them).
    for (let i = 0; i < 5000; i++) pairs.push([hex(16), i % 3 === 0 ? '0000000000000001' : i % 3 === 1 ? i.toString(16).padStart(16, '0') : hex(8)]);
    for (const [t, s] of pairs) {
      expect(keys.add(t, s)).toBe(!ref.has(t + s));
      ref.add(t + s);
    }
    expect(keys.add(pairs[7][0], pairs[7][1])).toBe(false);
    for (let i = 0; i < pairs.length; i += 3) {
      keys.delete(pairs[i][0], pairs[i][1]);
      ref.delete(pairs[i][0] + pairs[i][1]);
    }
    keys.delete(hex(16), hex(8)); // absent: nothing happens
    expect(keys.size).toBe(ref.size);
    for (const [t, s] of pairs) expect(keys.has(t, s)).toBe(ref.has(t + s));
    expect(keys.has(pairs[1][0], pairs[2][1])).toBe(false); // trace of one key, span of another
    const copy = new DedupKeys();
    copy.addBuffer(Buffer.from(keys.toBuffer()));
    expect(copy.size).toBe(ref.size);
    for (const [t, s] of pairs) expect(copy.has(t, s)).toBe(ref.has(t + s));
  });

  it('answers exactly while a growth is moving keys into the bigger table a few at a time', () => {
    const keys = new DedupKeys(16);
    const ref = new Set<string>();
    const pairs: [string, string][] = Array.from({ length: 9000 }, (_, i) => [hex(16), i % 2 === 0 ? i.toString(16).padStart(16, '0') : hex(8)]);
    let checkedMidMove = 0;
    for (let i = 0; i < pairs.length; i++) {
      const [t, s] = pairs[i];
      expect(keys.add(t, s)).toBe(true);
      ref.add(t + s);
      // Just after a growth (sizes 33, 65, ... 8193), most old keys sit in the old table only: every one must still
      // be found, refused as a repeat, and deletable.
      if (i + 1 > 32 && ((i + 1 - 1) & (i + 1 - 2)) === 0) {
        checkedMidMove++;
        for (let j = 0; j <= i; j++) expect(keys.has(pairs[j][0], pairs[j][1])).toBe(ref.has(pairs[j][0] + pairs[j][1]));
        const old = pairs[i >> 1];
        expect(keys.add(old[0], old[1])).toBe(!ref.has(old[0] + old[1]));
        ref.add(old[0] + old[1]);
        expect(keys.has(hex(16), hex(8))).toBe(false);
      }
      if (i % 97 === 5) {
        const gone = pairs[i - 3];
        keys.delete(gone[0], gone[1]);
        ref.delete(gone[0] + gone[1]);
      }
    }
    expect(checkedMidMove).toBeGreaterThan(5);
    expect(keys.size).toBe(ref.size);
    for (const [t, s] of pairs) expect(keys.has(t, s)).toBe(ref.has(t + s));
    // A snapshot image loads into a set sized once, and into one that already holds keys.
    const copy = new DedupKeys();
    copy.add(pairs[0][0], pairs[0][1]);
    copy.add('f'.repeat(32), 'f'.repeat(16));
    copy.addBuffer(Buffer.from(keys.toBuffer()));
    expect(copy.size).toBe(ref.size + (ref.has(pairs[0][0] + pairs[0][1]) ? 1 : 2));
    for (const [t, s] of pairs) expect(copy.has(t, s)).toBe(ref.has(t + s) || (t === pairs[0][0] && s === pairs[0][1]));
    expect(copy.has('f'.repeat(32), 'f'.repeat(16))).toBe(true);
    // A snapshot's keys loaded as unique (no compare), in two chunks of one day, then used as usual.
    const image = Buffer.from(keys.toBuffer());
    const cut = 24 * 1000;
    const loaded = new DedupKeys();
    loaded.addBuffer(image.subarray(0, cut), true);
    loaded.addBuffer(image.subarray(cut), true);
    expect(loaded.size).toBe(ref.size);
    for (const [t, s] of pairs) expect(loaded.has(t, s)).toBe(ref.has(t + s));
    for (const [t, s] of pairs.slice(0, 50)) expect(loaded.add(t, s)).toBe(!ref.has(t + s));
    expect(loaded.toBuffer().subarray(0, image.length).equals(image)).toBe(true);
  });

  it('keeps keys in pages of 65,536: adds, deletes and images across page boundaries', () => {
    const keys = new DedupKeys();
    const n = 140_000; // three pages
    const id = (i: number): [string, string] => [(i * 2654435761 >>> 0).toString(16).padStart(32, '0'), i.toString(16).padStart(16, '0')];
    for (let i = 0; i < n; i++) expect(keys.add(...id(i))).toBe(true);
    const image = Buffer.from(keys.toBuffer());
    expect(image.length).toBe(n * 24);
    // A range across the first page boundary is the same bytes as the whole image's slice.
    expect(keys.keyBytes(65_000, 66_000).equals(image.subarray(65_000 * 24, 66_000 * 24))).toBe(true);
    expect(() => keys.keyBytes(0, n + 1)).toThrow(RangeError);
    // Deleting a key of the first page moves the last key (third page) into its place.
    keys.delete(...id(10));
    keys.delete(...id(70_000));
    expect(keys.size).toBe(n - 2);
    for (const i of [0, 9, 10, 11, 65_535, 65_536, 69_999, 70_000, 70_001, n - 2, n - 1]) expect(keys.has(...id(i))).toBe(i !== 10 && i !== 70_000);
    expect(keys.add(...id(n - 1))).toBe(false);
    // Loaded as unique, in uneven chunks that do not follow the pages.
    const loaded = new DedupKeys();
    for (const [a, b] of [[0, 1000], [1000, 100_000], [100_000, n]]) loaded.addBuffer(image.subarray(a * 24, b * 24), true);
    expect(loaded.size).toBe(n);
    expect(loaded.toBuffer().equals(image)).toBe(true);
    for (let i = 0; i < n; i += 997) expect(loaded.has(...id(i))).toBe(true);
    expect(loaded.add(...id(n))).toBe(true);
  });
});

describe('journal entries (binary codec)', () => {
  it('a commit entry gives back every field of every call exactly', () => {
    const records = [
      ...someRecords(6, 3),
      { ...makeRecord({ periodStart: PERIOD, userId: 'ünï 🚀', feature: '', tokens: { cache_write: 5, cache_write_1h: 2 } }), serviceTier: 'flex', outcome: 'error' as const },
      { ...makeRecord({ periodStart: PERIOD, priced: false }), rawModel: '', source: 'openinference' as const },
    ];
    const enc = new CommitEncoder(records.length);
    records.forEach((r, i) => enc.add(r, PERIOD, i === 2 ? '0.125' : undefined));
    const payload = Buffer.concat(enc.finish(1_800_000_000_123));
    const entry = decodeEntry(payload, (s) => s);
    expect(entry.kind).toBe('commit');
    if (entry.kind !== 'commit') return;
    expect([entry.receivedAtMillis, entry.calls]).toEqual([1_800_000_000_123, records.length]);
    const back: LedgerRecord[] = [];
    const discounts: (string | undefined)[] = [];
    entry.forEach((c) => {
      back.push(c.record());
      discounts.push(c.discount);
    });
    const normal = (r: LedgerRecord) => ({ ...r, usage: { cache_write_1h: 0, ...r.usage } });
    expect(back).toEqual(records.map(normal));
    expect(discounts).toEqual(records.map((_, i) => (i === 2 ? '0.125' : undefined)));
    expect(() => decodeEntry(payload.subarray(0, payload.length - 8), (s) => s)).toThrow(/wrong number of call records/);
    const prune = decodeEntry(Buffer.concat(encodePrune(5, 1_700_000_000_000)), (s) => s);
    expect(prune).toEqual({ kind: 'prune', receivedAtMillis: 5, rollupsBeforeMillis: 1_700_000_000_000 });
  });

  it('an entry encoded with the dedup check\'s id words is byte for byte the one encoded from the id strings', () => {
    const records = someRecords(5, 2);
    const ids = new Uint32Array(records.length * 6);
    records.forEach((r, i) => readIdWords(r.traceId, r.spanId, ids, i * 6));
    const a = new CommitEncoder(records.length);
    const b = new CommitEncoder(records.length);
    records.forEach((r, i) => {
      a.add(r, PERIOD, undefined);
      b.add(r, PERIOD, undefined, ids, i * 6);
    });
    expect(Buffer.concat(b.finish(9)).equals(Buffer.concat(a.finish(9)))).toBe(true);
    const keys = new DedupKeys();
    records.slice(0, 3).forEach((r) => keys.add(r.traceId, r.spanId));
    records.forEach((r, i) => expect(keys.hasWords(ids, i * 6)).toBe(keys.has(r.traceId, r.spanId)));
    expect(records.map((_, i) => keys.hasWords(ids, i * 6))).toEqual(records.map((_, i) => i < 3));
  });

  it('round-trips costs repeated across calls and slots, and strings around the short-ASCII limit', () => {
    const costs = ['0.1', '0.25', '0', '12.5', '0.1'];
    const records = Array.from({ length: 40 }, (_, i) => {
      const pick = (k: number) => costs[(i * 3 + k) % costs.length]!;
      const c = { input: pick(0), cache_read: pick(1), cache_write: '0', output: pick(2), reasoning: i % 7 === 0 ? pick(3) : '0' };
      const r = makeRecord({ periodStart: PERIOD, userId: ['a'.repeat(64), 'b'.repeat(65), `é${'c'.repeat(70)}`, 'ü', `u${i % 3}`][i % 5], costs: c });
      return i % 4 === 0 ? { ...r, feature: 'x'.repeat(63 + (i % 3)) } : r;
    });
    const enc = new CommitEncoder(records.length);
    records.forEach((r, i) => enc.add(r, PERIOD, i % 6 === 0 ? costs[i % costs.length] : undefined));
    const entry = decodeEntry(Buffer.concat(enc.finish(7)), (s) => s);
    if (entry.kind !== 'commit') throw new Error('not a commit entry');
    const back: LedgerRecord[] = [];
    const discounts: (string | undefined)[] = [];
    entry.forEach((c) => {
      back.push(c.record());
      discounts.push(c.discount);
    });
    expect(back).toEqual(records.map((r) => ({ ...r, usage: { cache_write_1h: 0, ...r.usage } })));
    expect(discounts).toEqual(records.map((_, i) => (i % 6 === 0 ? costs[i % costs.length] : undefined)));
  });
});
