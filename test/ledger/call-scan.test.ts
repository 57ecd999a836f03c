import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_TYPES } from '../../src/contract/names.js';
import {
  discountsFromTiers,
  JournalLedger,
  LedgerError,
  LedgerUnavailableError,
  openLedger,
  type Ledger,
  type LedgerCall,
  type LedgerOptions,
  type LedgerRecord,
  type PeriodRollup,
} from '../../src/ledger/index.js';
import { ManualClock } from '../../src/plans/index.js';
import { findPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { addDecimalStrings, makeRecord } from './fixtures.js';

const hasPostgres = findPostgres() !== undefined;
const tmp = mkdtempSync(join(tmpdir(), 'tokenmeter-scan-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let dirCounter = 0;
const freshDir = () => join(tmp, `l${++dirCounter}`);

const P1 = '2030-07-01T00:00:00.000Z';
const P2 = '2030-08-01T00:00:00.000Z';

async function collect(it: AsyncIterable<LedgerCall>): Promise<LedgerCall[]> {
  const out: LedgerCall[] = [];
  for await (const c of it) out.push(c);
  return out;
}

const byId = (a: LedgerRecord, b: LedgerRecord) => (a.traceId + a.spanId < b.traceId + b.spanId ? -1 : 1);
const strip = ({ receivedAtMillis: _r, ...rec }: LedgerCall): LedgerRecord => rec;

/** A mix: two periods, three users, a feature and service tier on some, unpriced and estimated calls. */
function mixedRecords(n: number, periodStart: string): LedgerRecord[] {
  const t0 = Date.parse(periodStart);
  return Array.from({ length: n }, (_, i) => {
    const r = makeRecord({
      periodStart,
      userId: ['ann', 'bob', 'cé'][i % 3],
      plan: i % 5 === 0 ? 'pro' : 'free',
      provider: i % 4 === 0 ? 'acme' : 'openai',
      endTimeMillis: t0 + 1000 * (i + 1),
      tokens: { input: 10 + i, output: i % 7, cache_write: 4, cache_write_1h: i % 2 },
      costs: { input: `0.${String(i + 1).padStart(6, '0')}`, output: i % 7 === 0 ? '0' : `0.0${i % 7}1`, cache_write: '0.000000000000000001' },
      priced: i % 9 !== 8,
      estimated: i % 6 === 1,
      feature: i % 3 === 0 ? 'search' : undefined,
    });
    if (!r.priced) {
      for (const t of TOKEN_TYPES) r.costUsd[t] = '0';
      r.totalCostUsd = '0';
      delete r.priceId;
    }
    if (i % 8 === 3) r.serviceTier = 'priority';
    return r;
  });
}

/** The rollups recomputed from the calls alone, to compare with what the ledger holds. */
function rollupsFromCalls(calls: readonly LedgerCall[], periodStart: string): PeriodRollup[] {
  const m = new Map<string, { r: PeriodRollup; costs: string[] }>();
  for (const c of calls) {
    if (c.periodStart !== periodStart) continue;
    const k = `${c.userId}\u0000${c.plan}`;
    let e = m.get(k);
    if (!e) {
      e = { r: { periodStart, userId: c.userId, plan: c.plan, tokens: { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 }, requests: 0, costUsd: '0' }, costs: [] };
      m.set(k, e);
    }
    for (const t of TOKEN_TYPES) e.r.tokens[t] += c.usage[t];
    e.r.requests += 1;
    e.costs.push(c.totalCostUsd);
  }
  return [...m.values()]
    .map((e) => ({ ...e.r, costUsd: addDecimalStrings(e.costs) }))
    .sort((a, b) => (a.userId === b.userId ? (a.plan < b.plan ? -1 : 1) : a.userId < b.userId ? -1 : 1));
}

describe.each([
  { name: 'journal' as const, skip: false },
  { name: 'postgres' as const, skip: !hasPostgres },
])('scanCalls on $name', ({ name, skip }) => {
  const clock = new ManualClock('2030-08-05T10:00:00Z');
  const discounts = discountsFromTiers({ acme: [{ above_usd: '0.00001', percent_off: '10' }] });
  const options: LedgerOptions = { clock, discounts, journal: { segmentMaxBytes: 4096, snapshotEveryBytes: 8192 } };
  let pg: TestPostgres | undefined;
  let storage = '';
  let ledger: Ledger;
  const committed: LedgerRecord[] = [];

  beforeAll(async () => {
    if (skip) return;
    if (name === 'journal') storage = freshDir();
    else {
      pg = await startPostgres();
      storage = pg.url;
    }
    ledger = await openLedger(storage, options);
    // Many small groups: several segments and snapshots on the journal, several keyset pages on PostgreSQL.
    const all = [...mixedRecords(2500, P1), ...mixedRecords(1700, P2)];
    for (let k = 0; k < all.length; k += 250) {
      const res = await ledger.commit(all.slice(k, k + 250));
      committed.push(...res.committed);
      await ledger.commit(all.slice(k, k + 3)); // repeats: never yielded twice
    }
  }, 120_000);

  afterAll(async () => {
    await ledger?.close();
    await pg?.cleanup();
  });

  it.skipIf(skip)('yields every committed call once, as commit returned it, with its received time', async () => {
    if (name === 'journal') expect(readdirSync(storage).filter((n) => n.startsWith('snapshot-')).length).toBeGreaterThan(0);
    const calls = await collect(ledger.scanCalls());
    expect(calls).toHaveLength(4200);
    expect(calls.every((c) => c.receivedAtMillis === clock.now().getTime())).toBe(true);
    expect(calls.map(strip).sort(byId)).toEqual([...committed].sort(byId));
    // Discounted calls carry their discount; the net per-type costs add up to the net total.
    const discounted = calls.filter((c) => c.discountUsd !== undefined);
    expect(discounted.length).toBeGreaterThan(100);
    for (const c of discounted.slice(0, 50)) {
      expect(addDecimalStrings(TOKEN_TYPES.map((t) => c.costUsd[t]))).toBe(c.totalCostUsd);
      expect(addDecimalStrings([c.totalCostUsd, c.discountUsd!])).toBe(c.grossCostUsd);
    }
  });

  it.skipIf(skip)('totals recomputed from the scanned calls equal the ledger totals', async () => {
    const calls = await collect(ledger.scanCalls());
    for (const p of [P1, P2]) expect(rollupsFromCalls(calls, p)).toEqual(await ledger.loadPeriodRollups(p));
  });

  it.skipIf(skip)('filters by period, user and end time (from inclusive, to exclusive), combined', async () => {
    const p2 = await collect(ledger.scanCalls({ periodStart: new Date(P2) }));
    expect(p2).toHaveLength(1700);
    expect(p2.every((c) => c.periodStart === P2)).toBe(true);
    const bob = await collect(ledger.scanCalls({ periodStart: P1, userId: 'bob' }));
    expect(bob.map(strip).sort(byId)).toEqual(committed.filter((r) => r.periodStart === P1 && r.userId === 'bob').sort(byId));
    const from = Date.parse(P1) + 1000 * 10;
    const to = Date.parse(P1) + 1000 * 20;
    const window = await collect(ledger.scanCalls({ from: new Date(from), to: new Date(to).toISOString() }));
    expect(window.map((c) => c.endTimeMillis).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => from + 1000 * i));
    const unicode = await collect(ledger.scanCalls({ userId: 'cé', from: new Date(from), to: new Date(to) }));
    expect(unicode.map((c) => c.userId)).toEqual(['cé', 'cé', 'cé']);
    expect(await collect(ledger.scanCalls({ userId: 'nobody' }))).toEqual([]);
    expect(await collect(ledger.scanCalls({ userId: "x' OR '1'='1" }))).toEqual([]);
  });

  it.skipIf(skip)('a bad filter is a LedgerError naming the field', async () => {
    expect(() => ledger.scanCalls({ periodStart: 'yesterday' })).toThrow(/periodStart must be a valid Date/);
    expect(() => ledger.scanCalls({ from: new Date(NaN) })).toThrow(LedgerError);
    expect(() => ledger.scanCalls({ to: 5 as unknown as string })).toThrow(/to must be/);
    expect(() => ledger.scanCalls({ userId: 7 as unknown as string })).toThrow(/userId must be a string/);
    expect(() => ledger.scanCalls(null as unknown as object)).toThrow(/filter must be an object/);
  });
});

describe('scanCalls on the journal: lifecycle', () => {
  it('reads the same calls after a restart (snapshot + replay), skips pruned segments, and refuses when closed', async () => {
    const clock = new ManualClock('2030-07-01T10:00:00Z');
    const dir = freshDir();
    const options: LedgerOptions = { clock, journal: { segmentMaxBytes: 2048 } };
    const a = await openLedger(dir, options);
    const old = mixedRecords(30, P1);
    await a.commit(old);
    clock.set('2030-07-20T10:00:00Z');
    const recent = mixedRecords(40, P2);
    await a.commit(recent.slice(0, 20));
    await (a as JournalLedger).checkpoint();
    await a.commit(recent.slice(20));
    const before = await collect(a.scanCalls());
    expect(before.map(strip)).toEqual([...old, ...recent]); // commit order
    await a.close();
    expect(() => a.scanCalls()).toThrow(LedgerUnavailableError);

    const b = await openLedger(dir, options);
    expect(await collect(b.scanCalls())).toEqual(before);
    // Pruning deletes old's segment: its calls are gone from the scan, its totals stay in the ledger.
    expect((await b.prune({ olderThan: new Date('2030-07-10T00:00:00Z') })).callsDeleted).toBe(30);
    expect((await collect(b.scanCalls())).map(strip)).toEqual(recent);
    expect((await b.loadPeriodRollups(P1)).reduce((s, r) => s + r.requests, 0)).toBe(30);
    await b.close();
  });

  it('a scan started before more commits yields what was committed when it started, and a segment pruned meanwhile is skipped', async () => {
    const clock = new ManualClock('2030-07-01T10:00:00Z');
    const dir = freshDir();
    const ledger = await openLedger(dir, { clock, journal: { segmentMaxBytes: 1024 } });
    const first = mixedRecords(10, P1);
    await ledger.commit(first);
    const it = ledger.scanCalls()[Symbol.asyncIterator]();
    const head = await it.next();
    expect(head.done).toBe(false);
    clock.set('2030-07-20T10:00:00Z');
    await ledger.commit(mixedRecords(5, P2)); // after the scan started: not in it
    const rest: LedgerCall[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect([head.value as LedgerCall, ...rest].map(strip)).toEqual(first);

    const pruning = ledger.scanCalls();
    await ledger.prune({ olderThan: new Date('2030-07-10T00:00:00Z') });
    expect((await collect(pruning)).map((c) => c.periodStart)).toEqual(Array(5).fill(P2));
    await ledger.close();
  });
});
