import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal } from 'decimal.js';
import { afterEach, describe, expect, it } from 'vitest';
import { GroupCommitter, LedgerError, openLedger, type CommitResult, type Ledger, type LedgerRecord } from '../../src/ledger/index.js';
import { ManualClock } from '../../src/plans/index.js';
import { hex, makeRecord } from './fixtures.js';

const PERIOD = '2030-06-01T00:00:00.000Z';
const dirs: string[] = [];
const open: Ledger[] = [];

async function journal(): Promise<Ledger> {
  const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-group-'));
  dirs.push(dir);
  const ledger = await openLedger(dir, { clock: new ManualClock('2030-06-02T00:00:00Z') });
  open.push(ledger);
  return ledger;
}

/** The journal ledger seen through the plain Ledger interface only: the GroupCommitter joins and splits batches. */
function withoutCommitEach(ledger: Ledger): Ledger {
  return {
    kind: ledger.kind,
    dedupWindowMillis: ledger.dedupWindowMillis,
    commit: (records, options) => ledger.commit(records, options),
    ping: () => ledger.ping(),
    loadPeriodRollups: (s) => ledger.loadPeriodRollups(s),
    userPeriodUsage: (u, s) => ledger.userPeriodUsage(u, s),
    userModelUsage: (u, s) => ledger.userModelUsage(u, s),
    periodModelUsage: (s) => ledger.periodModelUsage(s),
    periodSummary: (s) => ledger.periodSummary(s),
    providerPeriodSpend: (s) => ledger.providerPeriodSpend(s),
    prune: (o) => ledger.prune(o),
    scanCalls: (f) => ledger.scanCalls(f),
    scanPeriodRollups: (s, o) => ledger.scanPeriodRollups(s, o),
    applyReprice: (r) => ledger.applyReprice(r),
    repriceAudits: (s) => ledger.repriceAudits(s),
    close: () => ledger.close(),
  };
}

afterEach(async () => {
  for (const l of open.splice(0)) await l.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Callers with their own records, a span every caller sends, repeats inside a caller and across callers. */
function callers(round: number): LedgerRecord[][] {
  const shared = makeRecord({ periodStart: PERIOD, userId: 'shared', tokens: { input: 1 }, costs: { input: '0.01' } });
  const out: LedgerRecord[][] = [];
  for (let i = 0; i < 12; i++) {
    const own = Array.from({ length: 1 + (i % 4) }, (_, k) =>
      makeRecord({
        periodStart: PERIOD,
        userId: `u${(i + k) % 5}`,
        plan: k % 2 === 0 ? 'free' : 'pro',
        provider: i % 3 === 0 ? 'anthropic' : 'openai',
        model: i % 2 === 0 ? 'gpt-4o' : 'claude-x',
        tokens: { input: 10 + i, output: k, cache_read: round },
        costs: { input: `0.00${i + 1}7`, output: k > 0 ? `0.000${k}` : '0', cache_read: round > 0 ? '0.0000001' : '0' },
      }),
    );
    const recs = [...own, shared];
    if (i % 5 === 0) recs.push(own[0]); // a repeat inside the caller
    if (i > 0 && i % 4 === 0) recs.push(out[i - 1][0]); // a span another caller of the group sends too
    out.push(recs);
  }
  return out;
}

const discounts = (_provider: string, prior: Decimal, gross: Decimal) => (prior.gt('0.01') ? gross.times('0.125') : new Decimal(0));

async function run(gc: GroupCommitter, groups: LedgerRecord[][][]): Promise<CommitResult[][]> {
  const results: CommitResult[][] = [];
  // All callers of a round in the same turn: one batch.
  for (const g of groups) results.push(await Promise.all(g.map((recs) => gc.commit(recs))));
  return results;
}

describe('GroupCommitter over the journal ledger (callers handed over one by one)', () => {
  it.each([
    ['without discounts', undefined],
    ['with volume discounts (decided across the joined batch)', discounts],
  ])('gives every caller what the joined-batch path gave (%s)', async (_name, fn) => {
    const groups = [callers(0), callers(1)];
    groups.push(groups[0].slice(3, 7)); // a whole round of duplicates
    const direct = await journal();
    const joined = withoutCommitEach(await journal());
    const options = fn ? { commitOptions: { discounts: fn } } : {};
    const a = new GroupCommitter(direct, { maxWaitMillis: 0, ...options });
    const b = new GroupCommitter(joined, { maxWaitMillis: 0, ...options });
    const ra = await run(a, groups);
    const rb = await run(b, groups);
    expect(ra).toEqual(rb);
    expect(a.stats).toEqual(b.stats);
    expect(a.stats.batches).toBe(3);
    expect(await direct.loadPeriodRollups(PERIOD)).toEqual(await joined.loadPeriodRollups(PERIOD));
    expect(await direct.periodSummary(PERIOD)).toEqual(await joined.periodSummary(PERIOD));
    // The shared span counted once, for the first caller of the first round.
    // The span every caller sends is committed once per round.
    for (const [k, round] of ra.slice(0, 2).entries()) {
      const sharedSpan = groups[k][0].find((r) => r.userId === 'shared')!.spanId;
      expect(round.flatMap((r) => r.committed).filter((r) => r.spanId === sharedSpan)).toHaveLength(1);
    }
    expect(ra[2].every((r) => r.committed.length === 0)).toBe(true);
  });

  it('a failed batch rejects every caller in it, then commits on retry', async () => {
    let fail = true;
    const ledger = await journal();
    const gc = new GroupCommitter(ledger, {
      maxWaitMillis: 0,
      commitOptions: {
        discounts: () => {
          if (fail) throw new Error('discount service down');
          return new Decimal(0);
        },
      },
    });
    const group = Array.from({ length: 5 }, (_, i) => [makeRecord({ periodStart: PERIOD, userId: `f${i}`, tokens: { input: 1 }, costs: { input: '1' } })]);
    const settled = await Promise.allSettled(group.map((g) => gc.commit(g)));
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    expect(gc.stats.failedBatches).toBe(1);
    expect(await ledger.loadPeriodRollups(PERIOD)).toEqual([]);
    fail = false;
    const ok = await Promise.all(group.map((g) => gc.commit(g)));
    expect(ok.map((r) => r.outcomes)).toEqual(group.map(() => ['committed']));
  });
});

describe('GroupCommitter.commitTrusted (records built by the exporter pipeline)', () => {
  it('commits well-formed records like commit()', async () => {
    const a = new GroupCommitter(await journal());
    const b = new GroupCommitter(await journal());
    const recs = callers(0)[5];
    expect(await a.commitTrusted(recs)).toEqual(await b.commit(recs));
  });

  it('still refuses a caller whose records are structurally wrong, before batching and alone', async () => {
    const ledger = await journal();
    const gc = new GroupCommitter(ledger);
    const good = makeRecord({ periodStart: PERIOD, userId: 'v', tokens: { input: 1 }, costs: { input: '1' } });
    const base = () => makeRecord({ periodStart: PERIOD });
    const bad: [string, LedgerRecord][] = [
      ['traceId', { ...base(), traceId: 'abc' }],
      ['spanId', { ...base(), spanId: hex(9) }],
      ['traceId', { ...base(), traceId: undefined as unknown as string }],
      ['endTimeMillis', { ...base(), endTimeMillis: -1 }],
      ['periodStart', { ...base(), periodStart: 'last month' }],
      ['userId', { ...base(), userId: 'a\u0000b' }],
      ['userId', { ...base(), userId: 'x'.repeat(5000) }],
      ['feature', { ...base(), feature: 'f\u0000' }],
      ['outcome', { ...base(), outcome: 'maybe' as 'success' }],
      ['usage.output', { ...base(), usage: { input: 0, cache_read: 0, cache_write: 0, output: 1.5, reasoning: 0 } }],
      ['usage.cache_write_1h', { ...base(), usage: { input: 0, cache_read: 0, cache_write: 1, output: 0, reasoning: 0, cache_write_1h: 2 } }],
      ['costUsd', { ...base(), costUsd: { input: 1 as unknown as string, cache_read: '0', cache_write: '0', output: '0', reasoning: '0' } }],
      ['totalCostUsd', { ...base(), totalCostUsd: undefined as unknown as string }],
      ['priced', { ...base(), priced: 'yes' as unknown as boolean }],
    ];
    for (const [field, record] of bad) {
      const other = gc.commit([makeRecord({ periodStart: PERIOD, userId: 'bystander', tokens: { input: 1 }, costs: { input: '1' } })]);
      const err = await gc.commitTrusted([good, record]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LedgerError);
      expect((err as Error).message).toContain(`record 1: ${field}`);
      expect((await other).outcomes).toEqual(['committed']);
    }
    expect((await ledger.loadPeriodRollups(PERIOD)).map((r) => r.userId)).toEqual(['bystander']);
  });

  it('commit() keeps the full check of ids and money (the public API gets any caller)', async () => {
    const gc = new GroupCommitter(await journal());
    const base = () => makeRecord({ periodStart: PERIOD, costs: { input: '0.1' } });
    for (const [field, record] of [
      ['traceId', { ...base(), traceId: 'X'.repeat(32) }],
      ['costUsd.input', { ...base(), costUsd: { input: '1e3', cache_read: '0', cache_write: '0', output: '0', reasoning: '0' }, totalCostUsd: '1000' }],
      ['totalCostUsd', { ...base(), totalCostUsd: '0.2' }],
    ] as [string, LedgerRecord][]) {
      await expect(gc.commit([record])).rejects.toThrow(`record 0: ${field}`);
    }
  });
});

describe('onDurable (the exporter acknowledges when the journal has the records)', () => {
  it('is called once per caller after the journal write and before the promise resolves; not for a refused caller', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-group-'));
    dirs.push(dir);
    const ledger = await openLedger(dir, { clock: new ManualClock('2030-06-02T00:00:00Z') });
    open.push(ledger);
    const gc = new GroupCommitter(ledger, { maxWaitMillis: 0 });
    const journalBytes = () => readdirSync(dir).filter((f) => f.startsWith('journal-')).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    const before = journalBytes();
    const events: string[] = [];
    const bytesAtDurable: number[] = [];
    const group = callers(0).slice(0, 4);
    const pending = group.map((recs, k) =>
      gc
        .commitTrusted(recs, () => {
          events.push(`durable ${k}`);
          bytesAtDurable.push(journalBytes());
        })
        .then(() => events.push(`resolved ${k}`)),
    );
    const refused = gc.commitTrusted([{ ...group[0][0], spanId: 'short' }], () => events.push('durable refused')).catch(() => events.push('refused'));
    await Promise.all([...pending, refused]);
    expect(events.filter((e) => e.startsWith('durable')).sort()).toEqual(['durable 0', 'durable 1', 'durable 2', 'durable 3']);
    for (let k = 0; k < 4; k++) expect(events.indexOf(`durable ${k}`)).toBeLessThan(events.indexOf(`resolved ${k}`));
    expect(events).toContain('refused');
    // Told after the entry was written: the journal had grown by then.
    expect(bytesAtDurable).toHaveLength(4);
    for (const b of bytesAtDurable) expect(b).toBeGreaterThan(before);
    // A round of nothing but duplicates: durable since its first commit, still told.
    let told = 0;
    await gc.commitTrusted(group[1], () => told++);
    expect(told).toBe(1);
  });

  it('is not called on the joined path (volume discounts); the commit still resolves', async () => {
    const gc = new GroupCommitter(await journal(), { maxWaitMillis: 0, commitOptions: { discounts } });
    let told = 0;
    const r = await gc.commitTrusted(callers(0)[2], () => told++);
    expect(r.committed.length).toBeGreaterThan(0);
    expect(told).toBe(0);
  });
});

describe('liveTotals (the exporter metrics read the changed rows, not sorted rollups)', () => {
  /** A caller's result as seen in the turn it resolved: the live rows read into plain values, the rollups read. */
  interface Seen {
    committed: LedgerRecord[];
    duplicates: LedgerRecord[];
    outcomes: CommitResult['outcomes'];
    touched: { periodStart: string; userId: string; plan: string; tokens: number; requests: number; costUsd: string }[] | undefined;
    rollups: CommitResult['rollups'];
  }
  const seen = (r: CommitResult): Seen => ({
    committed: r.committed,
    duplicates: r.duplicates,
    outcomes: r.outcomes,
    touched: r.touched?.flatMap((t) =>
      t.rows.map((row) => ({ periodStart: t.periodStart, userId: row.userId, plan: row.plan, tokens: row.tokenSum(), requests: row.requests, costUsd: row.costUsd() })),
    ),
    rollups: r.rollups,
  });
  const tokensOf = (t: Record<string, number>) => t.input + t.cache_read + t.cache_write + t.output + t.reasoning;

  it.each([
    ['callers handed over one by one', false],
    ['the joined path (volume discounts)', true],
  ])('gives each caller the rows its new records changed, with the totals its rollups hold (%s)', async (_name, withDiscounts) => {
    const groups = [callers(0), callers(1)];
    groups.push(groups[0].slice(3, 7)); // a whole round of duplicates
    const live = new GroupCommitter(await journal(), { maxWaitMillis: 0, commitOptions: withDiscounts ? { liveTotals: true, discounts } : { liveTotals: true } });
    const plain = new GroupCommitter(await journal(), { maxWaitMillis: 0, ...(withDiscounts ? { commitOptions: { discounts } } : {}) });
    for (const [round, g] of groups.entries()) {
      // Read in the turn each commit resolved, as the exporter's pipeline does.
      const a = await Promise.all(g.map((recs) => live.commit(recs).then(seen)));
      const b = await Promise.all(g.map((recs) => plain.commit(recs).then(seen)));
      for (let k = 0; k < g.length; k++) {
        expect(a[k].committed).toEqual(b[k].committed);
        expect(a[k].duplicates).toEqual(b[k].duplicates);
        expect(a[k].outcomes).toEqual(b[k].outcomes);
        expect(a[k].rollups).toEqual(b[k].rollups);
        expect(b[k].touched).toBeUndefined();
        if (withDiscounts && g.length > 1) {
          // Joined and split again: the callers get their rollups (no live rows), which the metrics then use.
          expect(a[k].touched).toBeUndefined();
          continue;
        }
        // Exactly the (user, plan) rows of the caller's new records, once each, with the rollups' totals.
        const keys = new Set(a[k].committed.map((r) => `${r.userId}/${r.plan}`));
        const rows = a[k].touched!;
        expect(rows.map((r) => `${r.userId}/${r.plan}`).sort()).toEqual([...keys].sort());
        for (const r of rows) {
          const rollup = b[k].rollups.find((x) => x.userId === r.userId && x.plan === r.plan)!;
          expect(r).toEqual({ periodStart: rollup.periodStart, userId: rollup.userId, plan: rollup.plan, tokens: tokensOf(rollup.tokens), requests: rollup.requests, costUsd: rollup.costUsd });
        }
        if (round === 2) expect(rows).toEqual([]);
      }
    }
  });

  it('builds the sorted rollups only when read, from the rows as they are then', async () => {
    const ledger = await journal();
    const first = await ledger.commit([makeRecord({ periodStart: PERIOD, userId: 'b', tokens: { input: 1 }, costs: { input: '0.1' } }), makeRecord({ periodStart: PERIOD, userId: 'a', tokens: { input: 2 }, costs: { input: '0.2' } })], { liveTotals: true });
    expect(first.touched!.map((t) => t.rows.map((r) => r.userId))).toEqual([['b', 'a']]);
    expect(first.rollups.map((r) => [r.userId, r.costUsd])).toEqual([['a', '0.2'], ['b', '0.1']]);
    // The rollups, once read, stay as read; the live rows move on with the ledger.
    await ledger.commit([makeRecord({ periodStart: PERIOD, userId: 'a', tokens: { input: 3 }, costs: { input: '0.05' } })]);
    expect(first.rollups.map((r) => [r.userId, r.costUsd])).toEqual([['a', '0.2'], ['b', '0.1']]);
    expect(first.touched![0].rows[1].costUsd()).toBe('0.25');
    expect(first.touched![0].rows[1].tokenSum()).toBe(5);
  });
});
