/**
 * Issue 18, points 1 and 2, through the real ledgers (the embedded journal and PostgreSQL): a simulated month of
 * calls (many users, plans, features, models, days, unpriced calls, costs with many decimals) and a rollover into
 * the next month. Every breakdown's lines add up to the total to the last decimal, the per-user and per-day lines
 * equal sums computed independently from the records, and a closed period's report is the same bytes after more
 * calls in the next period and a restart of the ledger.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_TYPES } from '../../src/contract/names.js';
import { openLedger, type Ledger, type LedgerRecord } from '../../src/ledger/index.js';
import { ManualClock } from '../../src/plans/index.js';
import {
  KEY_COLUMNS,
  REPORT_BREAKDOWNS,
  calendarOf,
  periodStatus,
  reportLines,
  writeReport,
  type ReportBy,
  type ReportFormat,
  type ReportLedger,
  type ReportLine,
} from '../../src/report/index.js';
import { findPostgres, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { addDecimalStrings, makeRecord } from '../ledger/fixtures.js';

const hasPostgres = findPostgres() !== undefined;
const DAY = 86_400_000;
const NOV = '2026-11-01T00:00:00.000Z';
const DEC = '2026-12-01T00:00:00.000Z';
const calendar = calendarOf({ timezone: 'UTC', anchor_day: 1 });
const november = calendar.periodNamed!(2026, 11);

/** A deterministic pseudo-random sequence (the same month every run). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

const PLANS = ['free', 'pro', 'team'];
const FEATURES = ['chat', 'summarise', undefined];
const MODELS = [
  { provider: 'openai', model: 'gpt-4o' },
  { provider: 'anthropic', model: 'claude-sonnet-4-5' },
  { provider: 'openai', model: 'gpt-4o-mini' },
];

/** `n` calls of November spread over its 30 days (some on the last millisecond), 10% unpriced. */
function month(n: number, users: number, seed: number): LedgerRecord[] {
  const r = rng(seed);
  const out: LedgerRecord[] = [];
  for (let i = 0; i < n; i++) {
    const u = Math.floor(r() * users);
    const m = MODELS[Math.floor(r() * MODELS.length)]!;
    const priced = r() >= 0.1;
    const input = 1 + Math.floor(r() * 5000);
    const output = Math.floor(r() * 800);
    const end = i % 97 === 0 ? Date.parse(DEC) - 1 : Date.parse(NOV) + Math.floor(r() * 30 * DAY);
    out.push(
      makeRecord({
        periodStart: NOV,
        userId: `user-${u.toString().padStart(4, '0')}`,
        plan: PLANS[u % PLANS.length]!,
        feature: FEATURES[i % FEATURES.length],
        provider: m.provider,
        model: m.model,
        tokens: { input, output, cache_read: i % 5 === 0 ? 300 : 0, reasoning: i % 7 === 0 ? 11 : 0 },
        // Costs with up to 12 decimals, as per-token prices give.
        costs: priced ? { input: `0.${String(input * 2_500_003).padStart(12, '0')}`, output: `0.${String(output * 10_000_007).padStart(12, '0')}` } : {},
        priced,
        endTimeMillis: end,
      }),
    );
  }
  return out;
}

interface Expected {
  cost: Map<string, string[]>;
  requests: Map<string, number>;
}
function expectedBy(records: LedgerRecord[], keyOf: (r: LedgerRecord) => string): Map<string, { cost: string; requests: number; tokens: number }> {
  const e: Expected = { cost: new Map(), requests: new Map() };
  const tokens = new Map<string, number>();
  for (const r of records) {
    const k = keyOf(r);
    e.cost.set(k, [...(e.cost.get(k) ?? []), r.priced ? r.totalCostUsd : '0']);
    e.requests.set(k, (e.requests.get(k) ?? 0) + 1);
    tokens.set(k, (tokens.get(k) ?? 0) + TOKEN_TYPES.reduce((s, t) => s + r.usage[t], 0));
  }
  return new Map([...e.cost].map(([k, costs]) => [k, { cost: addDecimalStrings(costs), requests: e.requests.get(k)!, tokens: tokens.get(k)! }]));
}

async function collect(ledger: ReportLedger, by: ReportBy, user?: string): Promise<ReportLine[]> {
  const out: ReportLine[] = [];
  for await (const l of reportLines(ledger, { period: november, by, ...(user !== undefined ? { user } : {}) })) out.push(l);
  return out;
}

async function render(ledger: ReportLedger, by: ReportBy, format: ReportFormat, now = new Date('2026-12-03T12:00:00Z')): Promise<{ text: string; total: ReportLine }> {
  let text = '';
  const header = { label: '2026-11', period: november, ...periodStatus(november, now, 6 * 3_600_000), by };
  const total = await writeReport(reportLines(ledger, { period: november, by }), header, format, (c) => {
    text += c;
  });
  return { text, total };
}

const tokensOf = (l: ReportLine) => TOKEN_TYPES.reduce((s, t) => s + l.tokens[t], 0);

describe.each([
  { name: 'embedded' as const, skip: false },
  { name: 'postgres' as const, skip: !hasPostgres },
])('reports on the $name ledger', ({ name, skip }) => {
  const clock = new ManualClock('2026-12-03T12:00:00Z');
  let storage = '';
  let tmp: string | undefined;
  let pg: TestPostgres | undefined;
  let ledger: Ledger;
  const records = month(3000, 150, name === 'embedded' ? 1 : 2);

  beforeAll(async () => {
    if (skip) return;
    if (name === 'embedded') {
      tmp = mkdtempSync(join(tmpdir(), 'tm-report-'));
      storage = join(tmp, 'ledger');
    } else {
      pg = await startPostgres();
      storage = pg.url;
    }
    ledger = await openLedger(storage, { clock });
    for (let i = 0; i < records.length; i += 500) await ledger.commit(records.slice(i, i + 500));
    // The rollover: calls of December for some of the same users.
    await ledger.commit(month(200, 150, 9).map((r) => ({ ...r, periodStart: DEC, endTimeMillis: r.endTimeMillis + 30 * DAY })));
  }, 120_000);

  afterAll(async () => {
    await ledger?.close();
    await pg?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it.skipIf(skip)('by user: one line per user and plan, each equal to its calls summed independently; lines add up to the total exactly', async () => {
    const lines = await collect(ledger, 'user');
    const want = expectedBy(records, (r) => `${r.userId}/${r.plan}`);
    expect(lines.map((l) => l.key.join('/'))).toEqual([...want.keys()].sort());
    for (const l of lines) {
      const w = want.get(l.key.join('/'))!;
      expect([l.costUsd, l.requests, tokensOf(l)], l.key.join('/')).toEqual([w.cost, w.requests, w.tokens]);
    }
    const { total } = await render(ledger, 'user', 'json');
    expect(total.costUsd).toBe(addDecimalStrings(records.filter((r) => r.priced).map((r) => r.totalCostUsd)));
    expect(total.costUsd).toBe(addDecimalStrings(lines.map((l) => l.costUsd)));
    expect(total.requests).toBe(records.length);
    expect(total.unpricedRequests).toBe(records.filter((r) => !r.priced).length);
    // The total has the full precision of the per-call costs (12 decimals), nothing rounded.
    expect(total.costUsd).toMatch(/^\d+\.\d{9,12}$/);
  });

  it.skipIf(skip)('scanPeriodRollups streams the same rollups as loadPeriodRollups, in pages, per user too; the report is the same without it', async () => {
    const all = await ledger.loadPeriodRollups(NOV, { unpriced: true });
    for (const pageSize of [1, 7, 2000]) {
      const scanned = [];
      for await (const r of ledger.scanPeriodRollups(NOV, { pageSize })) scanned.push(r);
      expect(scanned, `pageSize ${pageSize}`).toEqual(all);
    }
    const user = all[5]!.userId;
    const mine = [];
    for await (const r of ledger.scanPeriodRollups(NOV, { userId: user, pageSize: 1 })) mine.push(r);
    expect(mine).toEqual(all.filter((r) => r.userId === user));
    // The fallback (a ledger that can only load the rollups whole) gives the same lines.
    const whole: ReportLedger = {
      loadPeriodRollups: (p, o) => ledger.loadPeriodRollups(p, o),
      periodModelUsage: (p) => ledger.periodModelUsage(p),
      userModelUsage: (u, p) => ledger.userModelUsage(u, p),
    };
    for (const by of ['user', 'plan'] as const) expect(await collect(whole, by), by).toEqual(await collect(ledger, by));
    await expect(collect(whole, 'day')).rejects.toThrow(/needs the per-call record/);
  });

  it.skipIf(skip)('by plan, model, provider: lines add up to the same total to the last decimal', async () => {
    const grand = addDecimalStrings(records.filter((r) => r.priced).map((r) => r.totalCostUsd));
    for (const by of ['plan', 'model', 'provider'] as const) {
      const lines = await collect(ledger, by);
      expect(addDecimalStrings(lines.map((l) => l.costUsd)), by).toBe(grand);
      expect(lines.reduce((s, l) => s + l.requests, 0), by).toBe(records.length);
      expect(lines.every((l) => l.key.length === KEY_COLUMNS[by].length)).toBe(true);
    }
    const byModel = expectedBy(records, (r) => `${r.provider}/${r.model}`);
    for (const l of await collect(ledger, 'model')) expect(l.costUsd).toBe(byModel.get(l.key.join('/'))!.cost);
  });

  it.skipIf(skip)('--user: only that user, in every rollup breakdown', async () => {
    const user = records[0]!.userId;
    const mine = records.filter((r) => r.userId === user);
    const want = addDecimalStrings(mine.filter((r) => r.priced).map((r) => r.totalCostUsd));
    for (const by of ['user', 'plan', 'model', 'provider'] as const) {
      const lines = await collect(ledger, by, user);
      expect(addDecimalStrings(lines.map((l) => l.costUsd)), by).toBe(want);
      expect(lines.reduce((s, l) => s + l.requests, 0), by).toBe(mine.length);
    }
    expect(await collect(ledger, 'user', 'nobody')).toEqual([]);
  });

  it.skipIf(skip)('by feature and day (the per-call scan): per-day lines equal the calls of that day; lines add up to the total', async () => {
    const grand = addDecimalStrings(records.filter((r) => r.priced).map((r) => r.totalCostUsd));
    const days = await collect(ledger, 'day');
    const want = expectedBy(records, (r) => new Date(r.endTimeMillis).toISOString().slice(0, 10));
    expect(days.map((l) => l.key[0])).toEqual([...want.keys()].sort());
    for (const l of days) expect([l.costUsd, l.requests, tokensOf(l)], l.key[0]).toEqual([want.get(l.key[0]!)!.cost, want.get(l.key[0]!)!.requests, want.get(l.key[0]!)!.tokens]);
    expect(addDecimalStrings(days.map((l) => l.costUsd))).toBe(grand);
    const features = await collect(ledger, 'feature');
    expect(features.map((l) => l.key[0])).toEqual(['chat', 'none', 'summarise']);
    expect(addDecimalStrings(features.map((l) => l.costUsd))).toBe(grand);
  });

  it.skipIf(skip)('a closed period gives the same bytes after more calls in the next period and a restart', async () => {
    const before = new Map<string, string>();
    for (const by of REPORT_BREAKDOWNS) for (const f of ['table', 'csv', 'json'] as const) before.set(`${by}/${f}`, (await render(ledger, by, f)).text);
    expect(before.get('user/table')).toContain('(closed)');
    await ledger.commit(month(100, 150, 11).map((r) => ({ ...r, periodStart: DEC, endTimeMillis: r.endTimeMillis + 31 * DAY })));
    await ledger.close();
    ledger = await openLedger(storage, { clock });
    for (const by of REPORT_BREAKDOWNS) {
      for (const f of ['table', 'csv', 'json'] as const) expect((await render(ledger, by, f, new Date('2026-12-20T00:00:00Z'))).text, `${by}/${f}`).toBe(before.get(`${by}/${f}`));
    }
  });

  it.skipIf(skip)('an open period says until when calls may still arrive', async () => {
    const { text } = await render(ledger, 'plan', 'table', new Date('2026-12-01T03:00:00Z'));
    expect(text).toContain('open: calls may still arrive until 2026-12-01T06:00:00.000Z');
    const json = JSON.parse((await render(ledger, 'plan', 'json', new Date('2026-12-01T03:00:00Z'))).text);
    expect(json.period).toEqual({ label: '2026-11', start: NOV, end: DEC, status: 'open', closes_at: '2026-12-01T06:00:00.000Z' });
  });
});

describe('report output', () => {
  const line = (key: string[], cost: string, requests = 1, unpriced = 0): ReportLine => ({
    key,
    tokens: { input: 1, cache_read: 0, cache_write: 0, output: 2, reasoning: 0 },
    requests,
    unpricedRequests: unpriced,
    costUsd: cost,
  });
  async function* of(lines: ReportLine[]) {
    yield* lines;
  }
  const header = { label: '2026-11', period: november, status: 'closed' as const, closesAt: new Date(DEC), by: 'user' as const };
  const run = async (lines: ReportLine[], format: ReportFormat, h: Parameters<typeof writeReport>[1] = header) => {
    let text = '';
    await writeReport(of(lines), h, format, (c) => {
      text += c;
    });
    return text;
  };

  it('CSV defuses formulas and quotes separators in ids that come from spans', async () => {
    const text = await run([line(['=HYPERLINK("http://x")', 'free'], '0.1'), line(['a,b', 'pro'], '0.2'), line(['+1', 'team'], '0'), line(['-2\nx', 'free'], '0')], 'csv');
    const rows = text.trim().split(/\n(?=[^x])/);
    expect(rows[0]).toBe('user,plan,input,cache_read,cache_write,output,reasoning,total_tokens,requests,unpriced_requests,cost_usd');
    expect(text).toContain(`"'=HYPERLINK(""http://x"")",free,1,0,0,2,0,3,1,0,0.1`);
    expect(text).toContain('"a,b",pro');
    expect(text).toContain("'+1,team");
    expect(text).toContain(`"'-2\nx",free`);
    expect(text.trim().split('\n').pop()).toBe('TOTAL,,4,0,0,8,0,12,4,0,0.3');
  });

  it('table output replaces control characters (no terminal escapes) and says when usage was unpriced', async () => {
    const text = await run([line(['evil\u001b[31m', 'free'], '0', 1, 1)], 'table');
    expect(text).not.toContain('\u001b');
    expect(text).toContain('evil?[31m');
    expect(text).toContain('unpriced');
    expect(text).toContain('1 request(s) had no price at the time');
  });

  it('JSON is valid, streams one line per entry, cost null (not 0) when wholly unpriced, display currency exact', async () => {
    const text = await run([line(['u1', 'free'], '0.123456789', 2), line(['u2', 'pro'], '0', 1, 1)], 'json', { ...header, display: { currency: 'EUR', rate: '0.92' } });
    const doc = JSON.parse(text);
    expect(doc.lines[0]).toMatchObject({ user: 'u1', plan: 'free', cost_usd: '0.123456789', display: { currency: 'EUR', amount: '0.11358024588' } });
    expect(doc.lines[1]).toMatchObject({ user: 'u2', cost_usd: null, unpriced_requests: 1, display: { amount: null } });
    expect(doc.total).toMatchObject({ requests: 3, cost_usd: '0.123456789', display: { amount: '0.11358024588' } });
    expect(text.split('\n').length).toBe(5);
  });

  it('an empty period has a zero total, not an error', async () => {
    expect(JSON.parse(await run([], 'json')).total).toMatchObject({ requests: 0, cost_usd: '0' });
    expect(await run([], 'table')).toContain('(no usage in this period)');
  });
});
