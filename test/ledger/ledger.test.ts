import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GroupCommitter,
  LedgerError,
  LedgerUnavailableError,
  discountsFromTiers,
  openLedger,
  type Ledger,
  type LedgerOptions,
  type LedgerRecord,
} from '../../src/ledger/index.js';
import { ManualClock } from '../../src/plans/index.js';
import { findPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { addDecimalStrings, hex, makeRecord } from './fixtures.js';

const hasPostgres = findPostgres() !== undefined;
const DAY = 24 * 60 * 60 * 1000;

interface Backend {
  name: 'embedded' | 'postgres';
  /** Storage string for openLedger (a directory or a URL). */
  storage: string;
  pg?: TestPostgres;
}

/** Each test uses its own billing period (and users) so tests sharing one ledger do not see each other's rows. */
let periodCounter = 0;
function freshPeriod(): string {
  periodCounter += 1;
  return new Date(Date.UTC(2030 + Math.floor(periodCounter / 12), periodCounter % 12, 1)).toISOString();
}

describe.each([
  { name: 'embedded' as const, skip: false },
  { name: 'postgres' as const, skip: !hasPostgres },
])('ledger on $name', ({ name, skip }) => {
  const backend: Backend = { name, storage: '' };
  const clock = new ManualClock('2030-06-01T00:00:00Z');
  const options: LedgerOptions = { clock };
  let ledger: Ledger;
  let tmp: string | undefined;

  beforeAll(async () => {
    if (skip) return;
    if (name === 'embedded') {
      tmp = mkdtempSync(join(tmpdir(), 'tokenmeter-ledger-'));
      backend.storage = join(tmp, 'nested', 'ledger'); // created if missing
    } else {
      backend.pg = await startPostgres();
      backend.storage = backend.pg.url;
    }
    ledger = await openLedger(backend.storage, options);
  });

  afterAll(async () => {
    await ledger?.close();
    await backend.pg?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it.skipIf(skip)('opens the right backend and answers ping', async () => {
    expect(ledger.kind).toBe(name);
    await expect(ledger.ping()).resolves.toBeUndefined();
  });

  it.skipIf(skip)('the same batch committed twice is counted once', async () => {
    const periodStart = freshPeriod();
    const batch = [
      makeRecord({ periodStart, userId: 'u1', tokens: { input: 100, output: 20 }, costs: { input: '0.00025', output: '0.0002' } }),
      makeRecord({ periodStart, userId: 'u1', tokens: { input: 7, cache_read: 3 }, costs: { input: '0.0000175', cache_read: '0.00000375' } }),
      makeRecord({ periodStart, userId: 'u2', plan: 'pro', tokens: { output: 5, reasoning: 9 }, costs: { output: '0.00005', reasoning: '0.00009' } }),
    ];
    const first = await ledger.commit(batch);
    expect(first.committed).toHaveLength(3);
    expect(first.duplicates).toHaveLength(0);
    expect(first.outcomes).toEqual(['committed', 'committed', 'committed']);
    const second = await ledger.commit(batch);
    expect(second.committed).toHaveLength(0);
    expect(second.duplicates).toHaveLength(3);
    expect(second.outcomes).toEqual(['duplicate', 'duplicate', 'duplicate']);
    // Rollups returned by both commits are the same exact totals.
    expect(second.rollups).toEqual(first.rollups);
    const u1 = first.rollups.find((r) => r.userId === 'u1')!;
    expect(u1).toEqual({
      periodStart,
      userId: 'u1',
      plan: 'free',
      tokens: { input: 107, cache_read: 3, cache_write: 0, output: 20, reasoning: 0 },
      requests: 2,
      costUsd: '0.00047125',
    });
    expect(await ledger.loadPeriodRollups(periodStart)).toEqual(first.rollups);
  });

  it.skipIf(skip)('duplicates inside one batch count once', async () => {
    const periodStart = freshPeriod();
    const a = makeRecord({ periodStart, tokens: { input: 10 }, costs: { input: '0.1' } });
    const b = makeRecord({ periodStart, tokens: { input: 5 }, costs: { input: '0.05' } });
    const res = await ledger.commit([a, b, { ...a }, a, { ...b }]);
    expect(res.outcomes).toEqual(['committed', 'committed', 'duplicate', 'duplicate', 'duplicate']);
    expect(res.committed).toEqual([a, b]);
    expect(res.duplicates).toHaveLength(3);
    expect(res.rollups).toHaveLength(1);
    expect(res.rollups[0].requests).toBe(2);
    expect(res.rollups[0].tokens.input).toBe(15);
    expect(res.rollups[0].costUsd).toBe('0.15');
  });

  it.skipIf(skip)('sums costs exactly (no binary floating point anywhere)', async () => {
    const periodStart = freshPeriod();
    // 0.1 + 0.2 style values plus very small and very large ones: a float sum would be visibly wrong.
    const costs = ['0.1', '0.2', '0.000000000000000001', '123456789.123456789123456789', '0.3', '0.000001234567891234'];
    const records = costs.map((c) => makeRecord({ periodStart, userId: 'exact', tokens: { output: 1 }, costs: { output: c } }));
    const res = await ledger.commit(records);
    const expected = addDecimalStrings(costs);
    expect(expected).toBe('123456789.723458023691348024');
    expect(res.rollups[0].costUsd).toBe(expected);
    const usage = await ledger.userPeriodUsage('exact', periodStart);
    expect(usage.costUsd).toBe(expected);
    expect(usage.byModel[0].costUsd).toBe(expected);
    const summary = await ledger.periodSummary(periodStart);
    expect(summary.costUsd).toBe(expected);
    expect(summary.byProvider).toEqual([{ provider: 'openai', grossUsd: expected, discountUsd: '0', netUsd: expected, requests: 6 }]);
  });

  it.skipIf(skip)('usage queries: per user by plan, provider and model; per period for everyone', async () => {
    const periodStart = freshPeriod();
    const records = [
      makeRecord({ periodStart, userId: 'ann', plan: 'pro', provider: 'openai', model: 'gpt-4o', tokens: { input: 10, cache_write: 4, cache_write_1h: 3 }, costs: { input: '1.5', cache_write: '0.25' } }),
      makeRecord({ periodStart, userId: 'ann', plan: 'pro', provider: 'anthropic', model: 'claude-sonnet-4', tokens: { output: 7 }, costs: { output: '2' } }),
      makeRecord({ periodStart, userId: 'ann', plan: 'pro', provider: 'openai', model: 'gpt-4o', tokens: { input: 1 }, costs: { input: '0.5' }, estimated: true }),
      makeRecord({ periodStart, userId: 'ann', plan: 'free', provider: 'openai', model: 'gpt-4o', tokens: { input: 2 }, costs: { input: '0.01' } }),
      makeRecord({ periodStart, userId: 'ben', plan: 'free', provider: 'mystery', model: 'unknown-llm', tokens: { input: 1000 }, priced: false }),
    ];
    await ledger.commit(records);
    const ann = await ledger.userPeriodUsage('ann', periodStart);
    expect(ann.requests).toBe(4);
    expect(ann.tokens).toEqual({ input: 13, cache_read: 0, cache_write: 4, output: 7, reasoning: 0 });
    expect(ann.cacheWrite1hTokens).toBe(3);
    expect(ann.totalTokens).toBe(24);
    expect(ann.costUsd).toBe('4.26');
    expect(ann.plans.map((p) => [p.plan, p.requests, p.costUsd])).toEqual([
      ['free', 1, '0.01'],
      ['pro', 3, '4.25'],
    ]);
    expect(ann.byModel.map((m) => [m.plan, m.provider, m.model, m.requests, m.estimatedRequests, m.totalTokens, m.costUsd])).toEqual([
      ['free', 'openai', 'gpt-4o', 1, 0, 2, '0.01'],
      ['pro', 'anthropic', 'claude-sonnet-4', 1, 0, 7, '2'],
      ['pro', 'openai', 'gpt-4o', 2, 1, 15, '2.25'],
    ]);
    expect(await ledger.userModelUsage('ann', new Date(periodStart))).toEqual(ann.byModel);
    const nobody = await ledger.userPeriodUsage('nobody', periodStart);
    expect(nobody).toMatchObject({ requests: 0, totalTokens: 0, costUsd: '0', plans: [], byModel: [] });

    const summary = await ledger.periodSummary(periodStart);
    expect(summary.requests).toBe(5);
    expect(summary.totalTokens).toBe(1024);
    expect(summary.costUsd).toBe('4.26');
    expect(summary.byModel.map((m) => [m.provider, m.model, m.requests, m.unpricedRequests, m.costUsd])).toEqual([
      ['anthropic', 'claude-sonnet-4', 1, 0, '2'],
      ['mystery', 'unknown-llm', 1, 1, '0'],
      ['openai', 'gpt-4o', 3, 0, '2.26'],
    ]);
    expect(await ledger.periodModelUsage(periodStart)).toEqual(summary.byModel);
  });

  it.skipIf(skip)('period rollups carry the unpriced requests per user and plan (absent when none), also after a reopen', async () => {
    const periodStart = freshPeriod();
    await ledger.commit([
      makeRecord({ periodStart, userId: 'np-mixed', tokens: { input: 10 }, costs: { input: '0.5' } }),
      makeRecord({ periodStart, userId: 'np-mixed', provider: 'mystery', model: 'unknown-llm', priced: false, tokens: { input: 40 } }),
      makeRecord({ periodStart, userId: 'np-mixed', provider: 'mystery', model: 'other-llm', priced: false, tokens: { output: 2 } }),
      makeRecord({ periodStart, userId: 'np-mixed', plan: 'pro', provider: 'mystery', model: 'unknown-llm', priced: false, tokens: { input: 1 } }),
      makeRecord({ periodStart, userId: 'np-only', provider: 'mystery', model: 'unknown-llm', priced: false, tokens: { input: 3 } }),
      makeRecord({ periodStart, userId: 'np-priced', tokens: { input: 1 }, costs: { input: '0.1' } }),
    ]);
    const rows = (r: Awaited<ReturnType<Ledger['loadPeriodRollups']>>) => r.map((x) => [x.userId, x.plan, x.requests, x.unpricedRequests, x.costUsd]);
    const expected = [
      ['np-mixed', 'free', 3, 2, '0.5'],
      ['np-mixed', 'pro', 1, 1, '0'],
      ['np-only', 'free', 1, 1, '0'],
      ['np-priced', 'free', 1, undefined, '0.1'],
    ];
    expect(rows(await ledger.loadPeriodRollups(periodStart, { unpriced: true }))).toEqual(expected);
    expect('unpricedRequests' in (await ledger.loadPeriodRollups(periodStart, { unpriced: true })).find((r) => r.userId === 'np-priced')!).toBe(false);
    // Not asked (the periodic gauge refresh): the plain rollups.
    expect((await ledger.loadPeriodRollups(periodStart)).every((r) => !('unpricedRequests' in r))).toBe(true);
    await ledger.close();
    ledger = await openLedger(backend.storage, options);
    expect(rows(await ledger.loadPeriodRollups(periodStart, { unpriced: true }))).toEqual(expected);
  });

  it.skipIf(skip)('stores hostile strings verbatim (quotes, commas, braces, backslashes, unicode)', async () => {
    const periodStart = freshPeriod();
    const userId = `o'brien,"x"{y}\\z\n🚀 NULL`;
    const res = await ledger.commit([makeRecord({ periodStart, userId, model: 'we{ird},"model"', feature: 'NULL', tokens: { input: 1 }, costs: { input: '1' } })]);
    expect(res.rollups[0].userId).toBe(userId);
    const usage = await ledger.userPeriodUsage(userId, periodStart);
    expect(usage.byModel[0].model).toBe('we{ird},"model"');
  });

  it.skipIf(skip)('refuses malformed records and commits nothing of the batch', async () => {
    const periodStart = freshPeriod();
    const good = makeRecord({ periodStart, userId: 'v', tokens: { input: 1 }, costs: { input: '1' } });
    const bad: [string, LedgerRecord][] = [
      ['traceId', { ...makeRecord({ periodStart }), traceId: 'XYZ' }],
      ['spanId', { ...makeRecord({ periodStart }), spanId: hex(9) }],
      ['usage.input', { ...makeRecord({ periodStart }), usage: { input: -1, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 } }],
      ['usage.output', { ...makeRecord({ periodStart }), usage: { input: 0, cache_read: 0, cache_write: 0, output: 1.5, reasoning: 0 } }],
      ['usage.cache_write_1h', { ...makeRecord({ periodStart }), usage: { input: 0, cache_read: 0, cache_write: 1, output: 0, reasoning: 0, cache_write_1h: 2 } }],
      ['costUsd.input', { ...makeRecord({ periodStart }), costUsd: { input: '1e3', cache_read: '0', cache_write: '0', output: '0', reasoning: '0' }, totalCostUsd: '1000' }],
      ['costUsd.output', { ...makeRecord({ periodStart }), costUsd: { input: '0', cache_read: '0', cache_write: '0', output: '-1', reasoning: '0' }, totalCostUsd: '0' }],
      ['totalCostUsd', { ...makeRecord({ periodStart, costs: { input: '0.1' } }), totalCostUsd: '0.2' }],
      ['periodStart', { ...makeRecord({ periodStart }), periodStart: 'last month' }],
      ['userId', { ...makeRecord({ periodStart }), userId: 'a\u0000b' }],
      ['userId', { ...makeRecord({ periodStart }), userId: 'x'.repeat(5000) }],
      ['outcome', { ...makeRecord({ periodStart }), outcome: 'maybe' as 'success' }],
    ];
    for (const [field, record] of bad) {
      const err = await ledger.commit([good, record]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LedgerError);
      expect(err).not.toBeInstanceOf(LedgerUnavailableError);
      expect((err as Error).message).toContain(`record 1: ${field}`);
    }
    expect(await ledger.loadPeriodRollups(periodStart)).toEqual([]);
    expect((await ledger.commit([good])).outcomes).toEqual(['committed']);
  });

  it.skipIf(skip)('group commit: many concurrent callers, one transaction each batch, each gets its own outcome', async () => {
    const periodStart = freshPeriod();
    const gc = new GroupCommitter(ledger, { maxBatchRecords: 40, maxWaitMillis: 5 });
    const shared = makeRecord({ periodStart, userId: 'shared', tokens: { input: 1 }, costs: { input: '0.01' } });
    const callers = Array.from({ length: 30 }, (_, i) => {
      const own = [0, 1, 2].map(() => makeRecord({ periodStart, userId: `g${i % 3}`, tokens: { input: 2, output: 1 }, costs: { input: '0.002', output: '0.001' } }));
      // Every caller also sends the same span: exactly one of them gets it committed.
      return [...own, shared];
    });
    const results = await Promise.all(callers.map((recs) => gc.commit(recs)));
    results.forEach((r, i) => {
      expect(r.outcomes).toHaveLength(4);
      expect(r.outcomes!.slice(0, 3)).toEqual(['committed', 'committed', 'committed']);
      expect(r.committed.slice(0, 3)).toEqual(callers[i].slice(0, 3));
      // Rollups are the caller's own (period, user, plan) keys only.
      expect(new Set(r.rollups.map((x) => x.userId))).toEqual(new Set([`g${i % 3}`, 'shared']));
    });
    const sharedCommits = results.filter((r) => r.outcomes![3] === 'committed').length;
    expect(sharedCommits).toBe(1);
    // 120 records in batches of at most 40 records.
    expect(gc.stats.records).toBe(120);
    expect(gc.stats.batches).toBeGreaterThanOrEqual(3);
    expect(gc.stats.batches).toBeLessThan(30);
    const rollups = await ledger.loadPeriodRollups(periodStart);
    expect(rollups.map((r) => [r.userId, r.requests, r.costUsd])).toEqual([
      ['g0', 30, '0.09'],
      ['g1', 30, '0.09'],
      ['g2', 30, '0.09'],
      ['shared', 1, '0.01'],
    ]);
    // Resubmitting a caller's records now reports them all as duplicates.
    expect((await gc.commit(callers[0])).outcomes).toEqual(['duplicate', 'duplicate', 'duplicate', 'duplicate']);
    await gc.close();
    await expect(gc.commit(callers[1])).rejects.toBeInstanceOf(LedgerUnavailableError);
  });

  it.skipIf(skip)('group commit: a failing transaction rejects every caller in it and commits nothing', async () => {
    const periodStart = freshPeriod();
    let failNext = true;
    const discounts = (_p: string, _prior: Decimal, _gross: Decimal) => {
      if (failNext) throw new Error('discount service exploded');
      return new Decimal(0);
    };
    const gc = new GroupCommitter(ledger, { maxBatchRecords: 1000, maxWaitMillis: 20, commitOptions: { discounts } });
    const callers = Array.from({ length: 8 }, (_, i) => [makeRecord({ periodStart, userId: `f${i}`, tokens: { input: 1 }, costs: { input: '1' } })]);
    const settled = await Promise.allSettled(callers.map((c) => gc.commit(c)));
    for (const s of settled) {
      expect(s.status).toBe('rejected');
      expect(((s as PromiseRejectedResult).reason as Error).message).toContain('discount service exploded');
    }
    expect(gc.stats.failedBatches).toBeGreaterThanOrEqual(1);
    expect(await ledger.loadPeriodRollups(periodStart)).toEqual([]);
    // A caller with a bad record is refused alone, before batching.
    await expect(gc.commit([{ ...callers[0][0], spanId: 'nope' }])).rejects.toThrow(/spanId/);
    failNext = false;
    const retried = await Promise.all(callers.map((c) => gc.commit(c)));
    expect(retried.map((r) => r.outcomes)).toEqual(callers.map(() => ['committed']));
    expect((await ledger.loadPeriodRollups(periodStart)).length).toBe(8);
    await gc.close();
  });

  it.skipIf(skip)('volume discount across a threshold: marginal, against the period prior spend, stored net', async () => {
    const periodStart = freshPeriod();
    // 10% off the part of the provider's monthly spend above $10.
    const discounts = discountsFromTiers({ acme: [{ above_usd: '10', percent_off: '10' }] });
    const t0 = Date.parse(periodStart);
    const r1 = makeRecord({ periodStart, provider: 'acme', userId: 'vd', endTimeMillis: t0 + 1, tokens: { input: 8 }, costs: { input: '8' } });
    const c1 = await ledger.commit([r1], { discounts });
    expect(c1.committed[0]).toBe(r1); // no discount below the threshold: the record as given
    // $4 straddles the threshold: $2 below, $2 above -> $0.20 off, spread over the token types exactly.
    const r2 = makeRecord({ periodStart, provider: 'acme', userId: 'vd', endTimeMillis: t0 + 2, tokens: { input: 3, output: 1 }, costs: { input: '3', output: '1' } });
    // $5 entirely above -> $0.50 off. Same batch: it sees r2's spend as prior spend.
    const r3 = makeRecord({ periodStart, provider: 'acme', userId: 'vd', endTimeMillis: t0 + 3, tokens: { output: 5 }, costs: { output: '5' } });
    // Another provider is not discounted and its spend does not count.
    const r4 = makeRecord({ periodStart, provider: 'other', userId: 'vd', endTimeMillis: t0 + 4, tokens: { output: 50 }, costs: { output: '50' } });
    const c2 = await ledger.commit([r3, r2, r4], { discounts });
    const byId = new Map(c2.committed.map((r) => [r.spanId, r]));
    const n2 = byId.get(r2.spanId)!;
    expect([n2.grossCostUsd, n2.discountUsd, n2.totalCostUsd]).toEqual(['4', '0.2', '3.8']);
    expect(addDecimalStrings(Object.values(n2.costUsd))).toBe('3.8');
    expect(n2.costUsd).toEqual({ input: '2.85', cache_read: '0', cache_write: '0', output: '0.95', reasoning: '0' });
    const n3 = byId.get(r3.spanId)!;
    expect([n3.grossCostUsd, n3.discountUsd, n3.totalCostUsd]).toEqual(['5', '0.5', '4.5']);
    expect(byId.get(r4.spanId)).toBe(r4);
    expect(await ledger.providerPeriodSpend(periodStart)).toEqual([
      { provider: 'acme', grossUsd: '17', discountUsd: '0.7', netUsd: '16.3', requests: 3 },
      { provider: 'other', grossUsd: '50', discountUsd: '0', netUsd: '50', requests: 1 },
    ]);
    expect(c2.rollups[0].costUsd).toBe('66.3');
    // Replaying the discounted spans changes nothing.
    const again = await ledger.commit([r2, r3], { discounts });
    expect(again.outcomes).toEqual(['duplicate', 'duplicate']);
    expect((await ledger.providerPeriodSpend(periodStart))[0].netUsd).toBe('16.3');
    // A discount function returning more than the cost is refused, nothing committed.
    const greedy = () => new Decimal('1000');
    await expect(ledger.commit([makeRecord({ periodStart, provider: 'acme', costs: { input: '1' } })], { discounts: greedy })).rejects.toThrow(/between 0 and 1/);
    expect((await ledger.providerPeriodSpend(periodStart))[0].requests).toBe(3);
  });

  it.skipIf(skip)('restart: close and reopen gives identical rollups and still deduplicates', async () => {
    const periodStart = freshPeriod();
    const records = Array.from({ length: 20 }, (_, i) =>
      makeRecord({ periodStart, userId: `r${i % 4}`, tokens: { input: i, output: 2 * i }, costs: { input: `0.0${i}1`, output: '0.333' } }),
    );
    await ledger.commit(records);
    const before = await ledger.loadPeriodRollups(periodStart);
    const summaryBefore = await ledger.periodSummary(periodStart);
    await ledger.close();
    await expect(ledger.commit(records)).rejects.toBeInstanceOf(LedgerUnavailableError);
    await expect(ledger.ping()).rejects.toBeInstanceOf(LedgerUnavailableError);
    ledger = await openLedger(backend.storage, options);
    expect(await ledger.loadPeriodRollups(periodStart)).toEqual(before);
    expect(await ledger.periodSummary(periodStart)).toEqual(summaryBefore);
    const replay = await ledger.commit(records);
    expect(replay.committed).toHaveLength(0);
    expect(replay.rollups).toEqual(before);
  });

  it.skipIf(skip)('retention: prune deletes old calls, keeps rollups, and never cuts into the dedup window', async () => {
    const periodStart = freshPeriod();
    clock.set('2031-01-01T00:00:00Z');
    const old = makeRecord({ periodStart, userId: 'p', tokens: { input: 1 }, costs: { input: '1' } });
    await ledger.commit([old]);
    clock.set('2031-01-20T00:00:00Z');
    const recent = makeRecord({ periodStart, userId: 'p', tokens: { input: 2 }, costs: { input: '2' } });
    await ledger.commit([recent]);
    // Inside the 7-day window: refused.
    await expect(ledger.prune({ olderThan: new Date('2031-01-15T00:00:00Z') })).rejects.toThrow(/dedup window/);
    const res = await ledger.prune({ olderThan: new Date('2031-01-13T00:00:00Z') });
    expect(res.callsDeleted).toBeGreaterThanOrEqual(1);
    expect(res.rollupRowsDeleted).toBe(0);
    const rollups = await ledger.loadPeriodRollups(periodStart);
    expect(rollups.map((r) => [r.requests, r.costUsd])).toEqual([[2, '3']]);
    // The recent call is still remembered; the pruned one is past the dedup horizon.
    expect((await ledger.commit([recent, old])).outcomes).toEqual(['duplicate', 'committed']);
    // Rollups of old periods go only when asked.
    const r2 = await ledger.prune({ olderThan: new Date('2031-01-01T00:00:00Z'), rollupsBefore: new Date(Date.parse(periodStart) + DAY) });
    expect(r2.rollupRowsDeleted).toBeGreaterThan(0);
    expect(await ledger.loadPeriodRollups(periodStart)).toEqual([]);
    await expect(ledger.prune({ olderThan: new Date('nope') })).rejects.toBeInstanceOf(LedgerError);
  });
});

describe('openLedger arguments', () => {
  it('rejects unsupported storage strings', async () => {
    await expect(openLedger('mysql://x/y')).rejects.toThrow(/unsupported storage/);
    await expect(openLedger('')).rejects.toThrow(/storage/);
    await expect(openLedger('/tmp/x', { dedupWindowMillis: 0 })).rejects.toThrow(/dedupWindowMillis/);
  });
});
