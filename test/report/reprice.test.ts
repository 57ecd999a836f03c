/**
 * Issue 18, point 3: re-pricing through the real ledgers (the embedded journal and PostgreSQL). A simulated month
 * priced with a wrong override for gpt-4o and no price for a self-hosted model, then re-priced with the corrected
 * prices: exactly the affected calls change, by amounts computed here independently from the price book; per-user
 * and total differences are exact; the audit is recorded; a second run changes nothing; it all survives a restart
 * (snapshot and replay) and the closed period's report says it was re-priced.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type Ledger, type LedgerRecord } from '../../src/ledger/index.js';
import { JournalLedger } from '../../src/ledger/journal-ledger.js';
import { verifyJournalDirectory } from '../../src/ledger/journal-inspect.js';
import { ManualClock } from '../../src/plans/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { calendarOf, periodStatus, planReprice, repricePlanJson, reportLines, writeReport, type ReportFormat } from '../../src/report/index.js';
import { findPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { hex } from '../ledger/fixtures.js';

const hasPostgres = findPostgres() !== undefined;
const D = Decimal.clone({ precision: 200 });
const NOV = '2026-11-01T00:00:00.000Z';
const DEC = '2026-12-01T00:00:00.000Z';
const november = calendarOf({ timezone: 'UTC', anchor_day: 1 }).periodNamed!(2026, 11);

/** The month's prices as first configured: gpt-4o's input 10 times too high, acme-1 (self-hosted) not priced. */
const WRONG = PriceBook.load({ overrides: [{ provider: 'openai', model: 'gpt-4o', prices_usd_per_mtok: { input: '25', cache_read: '1.25', output: '10' } }] });
/** Corrected: the override fixed, acme-1 priced. */
const FIXED = PriceBook.load({
  overrides: [
    { provider: 'openai', model: 'gpt-4o', prices_usd_per_mtok: { input: '2.5', cache_read: '1.25', output: '10' } },
    { provider: 'acme', model: 'acme-1', prices_usd_per_mtok: { input: '0.3', output: '0.9' } },
  ],
});

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

const MODELS = [
  { provider: 'openai', raw: 'gpt-4o-2024-08-06' },
  { provider: 'openai', raw: 'gpt-4o-mini' },
  { provider: 'acme', raw: 'acme-1' },
  { provider: 'anthropic', raw: 'claude-sonnet-4-5' },
];

/** A call priced with `book` the way the exporter prices it (per-type costs, total, price id). */
function priced(book: PriceBook, base: Omit<LedgerRecord, 'priced' | 'costUsd' | 'totalCostUsd' | 'model'>): LedgerRecord {
  const p = book.priceStrings({ provider: base.provider, model: base.rawModel, usage: base.usage, at: new Date(base.endTimeMillis) });
  const rec: LedgerRecord = p.priced
    ? { ...base, provider: p.provider, model: p.model, priced: true, priceId: p.priceId, costUsd: p.costUsd, totalCostUsd: p.totalUsd }
    : { ...base, provider: p.provider, model: p.model, priced: false, costUsd: { input: '0', cache_read: '0', cache_write: '0', output: '0', reasoning: '0' }, totalCostUsd: '0' };
  return rec;
}

/** November (and a few December calls, outside the re-priced range). */
function month(n: number, seed: number): LedgerRecord[] {
  const r = rng(seed);
  const out: LedgerRecord[] = [];
  for (let i = 0; i < n; i++) {
    const m = MODELS[Math.floor(r() * MODELS.length)]!;
    const december = i % 10 === 9;
    const end = Date.parse(december ? DEC : NOV) + Math.floor(r() * (december ? 5 : 30) * 86_400_000);
    const input = 1 + Math.floor(r() * 50_000);
    out.push(
      priced(WRONG, {
        traceId: hex(16),
        spanId: hex(8),
        endTimeMillis: end,
        provider: m.provider,
        rawModel: m.raw,
        operation: 'chat',
        usage: { input, cache_read: Math.floor(input / 7), cache_write: 0, output: 1 + Math.floor(r() * 3000), reasoning: 0 },
        estimated: false,
        userId: `user-${Math.floor(r() * 12)}`,
        outcome: 'success',
        source: 'tokenmeter',
        plan: i % 3 === 0 ? 'pro' : 'free',
        periodStart: december ? DEC : NOV,
      }),
    );
  }
  return out;
}

const CALLS = month(600, 18);

/** What each November gpt-4o / acme-1 call should cost: the fixed book's price, computed here. */
function expected(): { affected: Map<string, { old: string; now: string; rec: LedgerRecord }>; perUser: Map<string, string>; total: string } {
  const affected = new Map<string, { old: string; now: string; rec: LedgerRecord }>();
  const perUser = new Map<string, Decimal>();
  let total = new D(0);
  for (const c of CALLS) {
    if (c.periodStart !== NOV || !(c.rawModel.startsWith('gpt-4o-2024') || c.rawModel === 'acme-1')) continue;
    const p = FIXED.priceStrings({ provider: c.rawModel === 'acme-1' ? 'acme' : 'openai', model: c.rawModel, usage: c.usage, at: new Date(c.endTimeMillis) });
    if (!p.priced) throw new Error('the fixed book must price it');
    affected.set(c.traceId + c.spanId, { old: c.totalCostUsd, now: p.totalUsd, rec: c });
    const d = new D(p.totalUsd).minus(c.totalCostUsd);
    const k = `${c.userId}|${c.plan}`;
    perUser.set(k, (perUser.get(k) ?? new D(0)).plus(d));
    total = total.plus(d);
  }
  return { affected, perUser: new Map([...perUser].map(([k, v]) => [k, v.toFixed()])), total: total.toFixed() };
}

async function report(ledger: Ledger, format: ReportFormat, by: 'user' | 'model' | 'day' = 'user'): Promise<string> {
  let out = '';
  const audits = await ledger.repriceAudits(november.start);
  await writeReport(reportLines(ledger, { period: november, by, audits }), { label: '2026-11', period: november, ...periodStatus(november, new Date('2027-01-05T00:00:00Z'), 6 * 3_600_000), by, repricings: audits }, format, (s) => {
    out += s;
  });
  return out;
}

function backends(): { name: string; skip: boolean; open: () => Promise<Ledger>; cleanup: () => Promise<void> }[] {
  let dir = '';
  let pg: TestPostgres | undefined;
  let url = '';
  const clock = new ManualClock('2026-12-10T00:00:00Z');
  return [
    {
      name: 'journal',
      skip: false,
      open: async () => {
        dir ||= mkdtempSync(join(tmpdir(), 'tokenmeter-reprice-'));
        return openLedger(dir, { clock, dedupWindowMillis: 90 * 86_400_000 });
      },
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    },
    {
      name: 'postgres',
      skip: !hasPostgres,
      open: async () => {
        if (!pg) {
          pg = await startPostgres();
          url = await pg.createDatabase('reprice');
        }
        return openLedger(url, { clock, dedupWindowMillis: 90 * 86_400_000 });
      },
      cleanup: async () => pg?.cleanup(),
    },
  ];
}

for (const b of backends()) {
  describe.skipIf(b.skip)(`re-pricing on the ${b.name} ledger`, () => {
    let ledger: Ledger;
    const exp = expected();
    let auditId = '';
    let beforeDecember: unknown;

    beforeAll(async () => {
      ledger = await b.open();
      for (let i = 0; i < CALLS.length; i += 50) await ledger.commit(CALLS.slice(i, i + 50));
      beforeDecember = await ledger.loadPeriodRollups(DEC);
    }, 120_000);
    afterAll(async () => {
      await ledger?.close();
      await b.cleanup();
    });

    it('plans exactly the affected calls, with exact per-user and total differences', async () => {
      const plan = await planReprice(ledger, FIXED, { from: new Date(NOV), to: new Date(DEC) });
      expect(exp.affected.size).toBeGreaterThan(100);
      expect(plan.adjustments.map((a) => a.traceId + a.spanId).sort()).toEqual([...exp.affected.keys()].sort());
      for (const a of plan.adjustments) {
        const e = exp.affected.get(a.traceId + a.spanId)!;
        expect(a.old.totalCostUsd).toBe(e.old);
        expect(a.new.totalCostUsd).toBe(e.now);
        expect(a.new.priced).toBe(true);
      }
      expect(plan.deltaUsd).toBe(exp.total);
      expect(new Map(plan.users.map((u) => [`${u.userId}|${u.plan}`, u.deltaUsd]))).toEqual(exp.perUser);
      expect(plan.newlyPriced).toBe([...exp.affected.values()].filter((e) => !e.rec.priced).length);
      expect(plan.newlyPriced).toBeGreaterThan(0);
      // --model narrows it to that model's calls.
      const acme = await planReprice(ledger, FIXED, { from: new Date(NOV), to: new Date(DEC), model: 'acme-1' });
      expect(acme.adjustments.length).toBe(plan.newlyPriced);
    });

    it('applies it in one transaction with an audit record; totals, calls and usage reflect it; a second run changes nothing', async () => {
      const before = await ledger.loadPeriodRollups(NOV, { unpriced: true });
      const plan = await planReprice(ledger, FIXED, { from: new Date(NOV), to: new Date(DEC) });
      const audit = await ledger.applyReprice({ by: 'finance@example', arguments: ['--from', '2026-11-01', '--to', '2026-11-30'], adjustments: plan.adjustments });
      auditId = audit.id;
      expect(audit).toMatchObject({ by: 'finance@example', calls: exp.affected.size, deltaUsd: exp.total, periods: [NOV], newlyPriced: plan.newlyPriced });
      expect(audit.priceIds.some(([old]) => old === null)).toBe(true);
      expect(await ledger.repriceAudits(NOV)).toEqual([audit]);
      expect(await ledger.repriceAudits(DEC)).toEqual([]);

      // Per user: the old total + the difference, exactly; the unpriced requests are gone.
      const after = await ledger.loadPeriodRollups(NOV, { unpriced: true });
      for (const r of after) {
        const old = before.find((x) => x.userId === r.userId && x.plan === r.plan)!;
        expect(r.costUsd).toBe(new D(old.costUsd).plus(exp.perUser.get(`${r.userId}|${r.plan}`) ?? '0').toFixed());
        expect(r.requests).toBe(old.requests);
        expect(r.unpricedRequests ?? 0).toBe(0);
      }
      // Every call scanned carries its cost now; the others are untouched; the sum is the summary's total.
      let sum = new D(0);
      for await (const c of ledger.scanCalls({ periodStart: NOV })) {
        const e = exp.affected.get(c.traceId + c.spanId);
        if (e) {
          expect(c.totalCostUsd).toBe(e.now);
          expect(c.repricedBy).toBe(audit.id);
        } else expect(c.repricedBy).toBeUndefined();
        sum = sum.plus(c.totalCostUsd);
      }
      expect((await ledger.periodSummary(NOV)).costUsd).toBe(sum.toFixed());
      const spend = (await ledger.providerPeriodSpend(NOV)).reduce((s, p) => s.plus(p.netUsd), new D(0));
      expect(spend.toFixed()).toBe(sum.toFixed());
      expect(await ledger.loadPeriodRollups(DEC)).toEqual(beforeDecember);
      const acmeRows = (await ledger.periodModelUsage(NOV)).filter((m) => m.provider === 'acme');
      expect(acmeRows.every((m) => m.unpricedRequests === 0)).toBe(true);

      // Idempotent: planned again, nothing changes; the old plan applied again is refused (nothing written).
      expect((await planReprice(ledger, FIXED, { from: new Date(NOV), to: new Date(DEC) })).adjustments).toEqual([]);
      await expect(ledger.applyReprice({ by: 'x', arguments: [], adjustments: plan.adjustments })).rejects.toThrow(/compute the re-pricing again/);
      expect(await ledger.repriceAudits()).toHaveLength(1);
      expect(await ledger.loadPeriodRollups(NOV, { unpriced: true })).toEqual(after);
    });

    it('the closed period report says it was re-priced and shows the adjustment, and is stable', async () => {
      const table = await report(ledger, 'table');
      expect(table).toContain(`re-priced on ${(await ledger.repriceAudits(NOV))[0]!.at} by finance@example, audit id ${auditId}`);
      expect(table).toMatch(/adjustment_usd/);
      const csv = await report(ledger, 'csv');
      expect(csv).toContain(`audit id ${auditId}`);
      const json = JSON.parse(await report(ledger, 'json')) as { repricings: { id: string; delta_usd: string }[]; lines: { adjustment_usd?: string; user: string; plan: string }[] };
      expect(json.repricings).toEqual([expect.objectContaining({ id: auditId, delta_usd: exp.total })]);
      for (const l of json.lines) expect(l.adjustment_usd ?? '0').toBe(exp.perUser.get(`${l.user}|${l.plan}`) ?? '0');
      const byModel = await report(ledger, 'table', 'model');
      expect(byModel).toContain(`audit id ${auditId}`);
      expect(await report(ledger, 'table')).toBe(table);
    });

    it('commits running while a re-pricing is applied: the totals still equal the sum of the calls', async () => {
      const first = month(120, 7).filter((c) => c.periodStart === NOV);
      const second = month(120, 8).filter((c) => c.periodStart === NOV);
      await ledger.commit(first);
      const plan = await planReprice(ledger, FIXED, { from: new Date(NOV), to: new Date(DEC) });
      const firstAffected = first.filter((c) => c.rawModel.startsWith('gpt-4o-2024') || c.rawModel === 'acme-1').length;
      expect(plan.adjustments).toHaveLength(firstAffected);
      await Promise.all([
        ledger.applyReprice({ by: 'concurrent', arguments: [], adjustments: plan.adjustments }),
        ...Array.from({ length: 6 }, (_, k) => ledger.commit(second.slice(k * 20, k * 20 + 20))),
      ]);
      const sums = new Map<string, InstanceType<typeof D>>();
      for await (const c of ledger.scanCalls({ periodStart: NOV })) {
        const k = `${c.userId}|${c.plan}`;
        sums.set(k, (sums.get(k) ?? new D(0)).plus(c.totalCostUsd));
      }
      for (const r of await ledger.loadPeriodRollups(NOV)) expect(r.costUsd).toBe(sums.get(`${r.userId}|${r.plan}`)!.toFixed());
      // The calls committed meanwhile were not in the plan: the next re-pricing finds exactly those.
      const next = await planReprice(ledger, FIXED, { from: new Date(NOV), to: new Date(DEC) });
      expect(next.adjustments).toHaveLength(second.filter((c) => c.rawModel.startsWith('gpt-4o-2024') || c.rawModel === 'acme-1').length);
      await ledger.applyReprice({ by: 'concurrent', arguments: [], adjustments: next.adjustments });
      expect((await planReprice(ledger, FIXED, { from: new Date(NOV), to: new Date(DEC) })).adjustments).toEqual([]);
    });

    it('survives a restart (snapshot, and replay of the journal) with the same totals, calls and audit', async () => {
      const rollups = await ledger.loadPeriodRollups(NOV, { unpriced: true });
      const audits = await ledger.repriceAudits();
      const calls: unknown[] = [];
      for await (const c of ledger.scanCalls({ periodStart: NOV })) calls.push(c);
      const table = await report(ledger, 'table');
      await ledger.close();
      ledger = await b.open();
      expect(await ledger.loadPeriodRollups(NOV, { unpriced: true })).toEqual(rollups);
      expect(await ledger.repriceAudits()).toEqual(audits);
      const again: unknown[] = [];
      for await (const c of ledger.scanCalls({ periodStart: NOV })) again.push(c);
      expect(again).toEqual(calls);
      expect(await report(ledger, 'table')).toBe(table);
      expect((await planReprice(ledger, FIXED, { from: new Date(NOV), to: new Date(DEC) })).adjustments).toEqual([]);
      if (ledger instanceof JournalLedger) {
        // Replay without a snapshot: the journal's adjustment entry rebuilds the same state; verify agrees.
        const dir = ledger.dir;
        await ledger.close();
        for (const f of (await import('node:fs')).readdirSync(dir)) if (f.startsWith('snapshot-')) rmSync(join(dir, f));
        ledger = await JournalLedger.open(dir, { clock: new ManualClock('2026-12-10T00:00:00Z'), dedupWindowMillis: 90 * 86_400_000 }, { snapshotOnClose: true });
        expect(await ledger.loadPeriodRollups(NOV, { unpriced: true })).toEqual(rollups);
        expect(await ledger.repriceAudits()).toEqual(audits);
        await ledger.close();
        const v = verifyJournalDirectory(dir);
        expect(v.problems).toEqual([]);
        expect(v.rowsMatching).toBeGreaterThan(0);
        ledger = await b.open();
        expect(await ledger.loadPeriodRollups(NOV, { unpriced: true })).toEqual(rollups);
      }
    });
  });
}

describe.skipIf(!hasPostgres)('a re-priced embedded ledger exported to PostgreSQL (tokenmeter ledger export)', () => {
  let pg: TestPostgres | undefined;
  let dir = '';
  afterAll(async () => {
    await pg?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the adjusted costs, the audit ids on the calls and the audit records; both ledgers agree', async () => {
    const { exportJournalToPostgres } = await import('../../src/ledger/sql-export.js');
    dir = mkdtempSync(join(tmpdir(), 'tokenmeter-reprice-export-'));
    const clock = new ManualClock('2026-12-10T00:00:00Z');
    const journal = await openLedger(dir, { clock, dedupWindowMillis: 90 * 86_400_000 });
    await journal.commit(CALLS.slice(0, 200));
    const plan = await planReprice(journal, FIXED, { from: new Date(NOV), to: new Date(DEC) });
    expect(plan.adjustments.length).toBeGreaterThan(10);
    const audit = await journal.applyReprice({ by: 'finance', arguments: [], adjustments: plan.adjustments });
    const rollups = await journal.loadPeriodRollups(NOV, { unpriced: true });
    await journal.close();
    pg = await startPostgres();
    const url = await pg.createDatabase('export');
    const result = await exportJournalToPostgres(dir, url);
    expect(result.differences).toEqual([]);
    const sql = await openLedger(url);
    try {
      expect(await sql.repriceAudits(NOV)).toEqual([audit]);
      expect(await sql.loadPeriodRollups(NOV, { unpriced: true })).toEqual(rollups);
      let repriced = 0;
      for await (const c of sql.scanCalls({ periodStart: NOV })) if (c.repricedBy === audit.id) repriced++;
      expect(repriced).toBe(plan.adjustments.length);
      expect((await planReprice(sql, FIXED, { from: new Date(NOV), to: new Date(DEC) })).adjustments).toEqual([]);
    } finally {
      await sql.close();
    }
  }, 120_000);
});

describe('a re-pricing applied while the journal ledger writes a snapshot', () => {
  it('the snapshot keeps the state as it began (copy-on-write); reopened from it + the adjustment entry, the totals are the same', async () => {
    const { nodeSnapshotFileSystem } = await import('../../src/ledger/journal-format.js');
    const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-reprice-snap-'));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let gated = false;
    let reached!: () => void;
    const atGate = new Promise<void>((r) => (reached = r));
    // The first snapshot's file is opened only when the gate opens: the rows are read after the re-pricing.
    const fileSystem = {
      ...nodeSnapshotFileSystem,
      open: async (path: string, flags: 'w' | 'r') => {
        if (flags === 'w' && !gated) {
          gated = true;
          reached();
          await gate;
        }
        return nodeSnapshotFileSystem.open(path, flags);
      },
    };
    const clock = new ManualClock('2026-12-10T00:00:00Z');
    const november = CALLS.filter((c) => c.periodStart === NOV).slice(0, 150);
    try {
      let ledger = await JournalLedger.open(dir, { clock, dedupWindowMillis: 90 * 86_400_000 }, { snapshotEveryBytes: 1, snapshotOnClose: false, fileSystem });
      await ledger.commit(november); // passes snapshotEveryBytes: a snapshot begins, held at the gate
      await atGate;
      const plan = await planReprice(ledger, FIXED, { from: new Date(NOV), to: new Date(DEC) });
      expect(plan.adjustments.length).toBeGreaterThan(20);
      await ledger.applyReprice({ by: 'snap', arguments: [], adjustments: plan.adjustments });
      const rollups = await ledger.loadPeriodRollups(NOV, { unpriced: true });
      const summary = await ledger.periodSummary(NOV);
      release();
      await ledger.close();
      expect(readdirSync(dir).some((f) => f.startsWith('snapshot-'))).toBe(true);
      ledger = await JournalLedger.open(dir, { clock, dedupWindowMillis: 90 * 86_400_000 }, { snapshotOnClose: false });
      expect(await ledger.loadPeriodRollups(NOV, { unpriced: true })).toEqual(rollups);
      expect(await ledger.periodSummary(NOV)).toEqual(summary);
      expect(await ledger.repriceAudits()).toHaveLength(1);
      expect((await planReprice(ledger, FIXED, { from: new Date(NOV), to: new Date(DEC) })).adjustments).toEqual([]);
      await ledger.close();
      expect(verifyJournalDirectory(dir).problems).toEqual([]);
    } finally {
      release();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('repricePlanJson', () => {
  it('cuts the per-user lines at the limit and says how many there were', async () => {
    const users = Array.from({ length: 5 }, (_, i) => ({ periodStart: NOV, userId: `u${i}`, plan: 'free', calls: 1, deltaUsd: '-0.5' }));
    const plan = { scanned: 9, adjustments: [], users, deltaUsd: '-2.5', newlyPriced: 0, stillUnpriced: 1, noPriceNow: 0, premiumKept: 0, premiumPossible: 0 };
    const json = repricePlanJson({ from: new Date(NOV) }, plan, undefined, 3) as { users: unknown[]; users_truncated?: number; dry_run: boolean; to: null };
    expect(json.users).toHaveLength(3);
    expect(json.users_truncated).toBe(5);
    expect(json).toMatchObject({ dry_run: true, to: null, delta_usd: '-2.5', still_unpriced_calls: 1 });
    expect(repricePlanJson({ from: new Date(NOV) }, plan, undefined, 10)).not.toHaveProperty('users_truncated');
  });
});

describe('re-pricing calls billed with a premium the ledger does not record (fast mode, regional processing)', () => {
  const CATALOG = PriceBook.load({});
  const at = Date.parse(NOV) + 3 * 86_400_000;
  const base = (model: string, i: number) => ({
    traceId: hex(16),
    spanId: hex(8),
    endTimeMillis: at + i,
    provider: 'anthropic',
    rawModel: model,
    operation: 'chat',
    usage: { input: 12_000 + i, cache_read: 0, cache_write: 0, output: 900, reasoning: 0 },
    estimated: false,
    userId: 'user-premium',
    outcome: 'success' as const,
    source: 'tokenmeter' as const,
    plan: 'pro',
    periodStart: NOV,
  });
  let dir = '';
  let ledger: Ledger;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tokenmeter-reprice-premium-'));
    ledger = await openLedger(dir, { clock: new ManualClock('2026-12-10T00:00:00Z'), dedupWindowMillis: 90 * 86_400_000 });
    const fastBase = base('claude-opus-4-6', 1);
    const fast = CATALOG.priceStrings({ provider: 'anthropic', model: fastBase.rawModel, usage: fastBase.usage, at: new Date(fastBase.endTimeMillis), speed: 'fast' });
    if (!fast.priced) throw new Error('the catalog has no fast-mode price for claude-opus-4-6');
    await ledger.commit([
      { ...fastBase, model: fast.model, priced: true, priceId: fast.priceId, costUsd: fast.costUsd, totalCostUsd: fast.totalUsd },
      priced(CATALOG, base('claude-opus-4-6', 2)),
      // claude-opus-5 billed from a wrong override (no premiums), to be corrected from the catalog (which has them)
      priced(PriceBook.load({ overrides: [{ provider: 'anthropic', model: 'claude-opus-5', prices_usd_per_mtok: { input: '50', output: '250' } }] }), base('claude-opus-5', 3)),
    ]);
  });
  afterAll(async () => {
    await ledger?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a fast-mode call whose price did not change is left as it is (it used to be planned at the plain price, 6 times less)', async () => {
    const plan = await planReprice(ledger, CATALOG, { from: new Date(NOV), to: new Date(DEC), model: 'claude-opus-4-6' });
    expect([plan.scanned, plan.adjustments.length, plan.premiumKept, plan.premiumPossible]).toEqual([2, 0, 1, 0]);
  });

  it('a changing call of a model with a premium is counted, so the CLI can warn that a premium would be dropped', async () => {
    const plan = await planReprice(ledger, CATALOG, { from: new Date(NOV), to: new Date(DEC), model: 'claude-opus-5' });
    expect([plan.scanned, plan.adjustments.length, plan.premiumKept, plan.premiumPossible]).toEqual([1, 1, 0, 1]);
    expect(repricePlanJson({ from: new Date(NOV), to: new Date(DEC) }, plan, undefined)).toMatchObject({ premium_kept_calls: 0, premium_possible_calls: 1 });
  });
});
