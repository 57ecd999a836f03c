import { Registry, Gauge, Counter } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Decimal } from 'decimal.js';
import { ExporterMetrics } from '../../src/exporter/metrics.js';
import { UserSeriesMetric } from '../../src/exporter/user-series.js';
import { FakeClock, SimplePlans } from './fakes.js';
import { otlpJson, postOtlp, scrape, startTestExporter, type TestExporter } from './harness.js';

const running: TestExporter[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});
async function start(...args: Parameters<typeof startTestExporter>): Promise<TestExporter> {
  const e = await startTestExporter(...args);
  running.push(e);
  return e;
}

const T0 = new Date('2026-03-31T23:00:00Z');
const NANOS = (d: Date) => BigInt(d.getTime()) * 1_000_000n;

describe('/metrics for a known input, line by line', () => {
  it('emits exactly the expected samples', async () => {
    const clock = new FakeClock(T0);
    const plans = new SimplePlans({ free: { tokens: 50_000, requests: 10 }, pro: { tokens: 500_000, requests: 100, costUsd: new Decimal('20') }, team: {} }, { zoe: { plan: 'team' } });
    const e = await start({ clock, plans });
    const end = NANOS(new Date('2026-03-31T22:59:00Z'));
    const body = otlpJson(
      [
        { spanId: 'a000000000000001', user: 'alice', plan: 'pro', feature: 'chat', model: 'gpt-4o', input: 1000, output: 500 },
        { spanId: 'a000000000000002', user: 'alice', plan: 'pro', feature: 'chat', model: 'gpt-4o-2024-08-06', input: 3000, output: 0, cacheRead: 2000 },
        { spanId: 'a000000000000003', user: 'bob', model: 'my-private-model', input: 70, output: 30 },
        { spanId: 'a000000000000004', user: 'zoe', plan: 'pro', model: 'gpt-4o', input: 1, output: 1, extra: { 'tokenmeter.usage.estimated': true } },
      ],
      end,
    );
    const res = await postOtlp(e.otlpUrl, body);
    expect(res.status).toBe(200);
    const lines = await scrape(e.httpUrl);
    const expected = [
      '# TYPE tokenmeter_tokens_total counter',
      'tokenmeter_tokens_total{plan="pro",provider="openai",model="gpt-4o",type="input"} 2000',
      'tokenmeter_tokens_total{plan="pro",provider="openai",model="gpt-4o",type="output"} 500',
      'tokenmeter_tokens_total{plan="pro",provider="openai",model="gpt-4o",type="cache_read"} 2000',
      'tokenmeter_tokens_total{plan="free",provider="openai",model="my-private-model",type="input"} 70',
      'tokenmeter_tokens_total{plan="free",provider="openai",model="my-private-model",type="output"} 30',
      'tokenmeter_tokens_total{plan="team",provider="openai",model="gpt-4o",type="input"} 1',
      '# TYPE tokenmeter_cost_usd_total counter',
      'tokenmeter_cost_usd_total{plan="pro",provider="openai",model="gpt-4o",type="input"} 0.005',
      'tokenmeter_cost_usd_total{plan="pro",provider="openai",model="gpt-4o",type="output"} 0.005',
      'tokenmeter_cost_usd_total{plan="pro",provider="openai",model="gpt-4o",type="cache_read"} 0.0025',
      'tokenmeter_cost_usd_total{plan="team",provider="openai",model="gpt-4o",type="input"} 0.0000025',
      'tokenmeter_requests_total{plan="pro",provider="openai",model="gpt-4o",operation="chat",outcome="success"} 2',
      'tokenmeter_requests_total{plan="free",provider="openai",model="my-private-model",operation="chat",outcome="success"} 1',
      'tokenmeter_user_tokens_total{user="alice",plan="pro"} 4500',
      'tokenmeter_user_tokens_total{user="bob",plan="free"} 100',
      'tokenmeter_user_cost_usd_total{user="alice",plan="pro"} 0.0125',
      'tokenmeter_user_cost_usd_total{user="bob",plan="free"} 0',
      'tokenmeter_feature_cost_usd_total{feature="chat",plan="pro"} 0.0125',
      'tokenmeter_feature_cost_usd_total{feature="none",plan="team"} 0.0000125',
      'tokenmeter_estimated_tokens_total{plan="team",provider="openai",model="gpt-4o"} 2',
      'tokenmeter_unpriced_tokens_total{provider="openai",model="my-private-model"} 100',
      'tokenmeter_period_tokens{user="alice",plan="pro"} 4500',
      'tokenmeter_period_requests{user="alice",plan="pro"} 2',
      'tokenmeter_period_cost_usd{user="alice",plan="pro"} 0.0125',
      'tokenmeter_period_tokens{user="bob",plan="free"} 100',
      'tokenmeter_limit_tokens{user="alice",plan="pro"} 500000',
      'tokenmeter_limit_requests{user="alice",plan="pro"} 100',
      'tokenmeter_limit_cost_usd{user="alice",plan="pro"} 20',
      'tokenmeter_limit_tokens{user="bob",plan="free"} 50000',
      'tokenmeter_period_end_timestamp_seconds{plan="pro"} 1775001600',
      'tokenmeter_ingested_spans_total{outcome="priced"} 4',
      'tokenmeter_ingested_spans_total{outcome="ignored"} 0',
      'tokenmeter_ledger_up 1',
      'tokenmeter_user_series 3',
      'tokenmeter_user_overflow_total 0',
    ];
    for (const line of expected) expect(lines, line).toContain(line);
    // Limits only where they exist: free has no cost budget, team (zoe) has no limits at all.
    expect(lines.filter((l) => l.startsWith('tokenmeter_limit_cost_usd{'))).toEqual(['tokenmeter_limit_cost_usd{user="alice",plan="pro"} 20']);
    expect(lines.some((l) => l.includes('user="zoe"') && l.startsWith('tokenmeter_limit_'))).toBe(false);
    // An unpriced model is never given a cost series (not "free").
    expect(lines.some((l) => l.startsWith('tokenmeter_cost_usd_total{') && l.includes('my-private-model'))).toBe(false);
  });

  it('money counters stay exact over many additions (0.1 + 0.2 = 0.3)', () => {
    const m = new ExporterMetrics({ maxUsers: 10, limitsFor: () => ({}) });
    const p = { start: new Date('2026-01-01T00:00:00Z'), end: new Date('2026-02-01T00:00:00Z') };
    m.setPeriod(p, ['free']);
    const rec = (id: number, cost: string) => ({
      traceId: 'a'.repeat(32), spanId: id.toString(16).padStart(16, '0'), endTimeMillis: p.start.getTime() + 1, provider: 'openai', rawModel: 'x', operation: 'chat',
      usage: { input: 1, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 }, estimated: false, userId: 'u', outcome: 'success' as const, source: 'tokenmeter' as const,
      plan: 'free', model: 'x', periodStart: p.start.toISOString(), priced: true, costUsd: { input: cost, cache_read: '0', cache_write: '0', output: '0', reasoning: '0' }, totalCostUsd: cost,
    });
    const records = [rec(1, '0.1'), rec(2, '0.2')];
    for (let i = 3; i < 1003; i++) records.push(rec(i, '0.000001'));
    m.recordCommit({ committed: records, duplicates: [], rollups: [] });
    return m.render().then((text) => {
      expect(text).toContain('tokenmeter_cost_usd_total{plan="free",provider="openai",model="x",type="input"} 0.301\n');
      expect(text).toContain('tokenmeter_user_cost_usd_total{user="u",plan="free"} 0.301\n');
    });
  });

  it('renders the per-user series exactly as prom-client would', async () => {
    const m = new ExporterMetrics({ maxUsers: 100, limitsFor: (u) => (u === 'a"b' ? { tokens: 5 } : {}) });
    const p = { start: new Date('2026-01-01T00:00:00Z'), end: new Date('2026-02-01T00:00:00Z') };
    m.setPeriod(p, ['free']);
    const users = ['plain', 'a"b', 'back\\slash', 'new\nline', 'ünï'];
    m.loadRollups(users.map((u, i) => ({ periodStart: p.start.toISOString(), userId: u, plan: 'free', tokens: { input: i, cache_read: 0, cache_write: 0, output: 1, reasoning: 0 }, requests: i + 1, costUsd: `0.${i}5` })));
    const text = await m.render();
    const reg = new Registry();
    const g = new Gauge({ name: 'tokenmeter_period_tokens', help: "Exact tokens this billing period, from the ledger: all of the user's usage, under their one plan for limits.", labelNames: ['user', 'plan'], registers: [reg] });
    const lim = new Gauge({ name: 'tokenmeter_limit_tokens', help: "The user's effective token limit this period (absent = unlimited).", labelNames: ['user', 'plan'], registers: [reg] });
    users.forEach((u, i) => g.set({ user: u, plan: 'free' }, i + 1));
    lim.set({ user: 'a"b', plan: 'free' }, 5);
    const reference = await reg.metrics();
    for (const block of reference.trim().split('\n\n')) expect(text).toContain(block);
    void Counter;
  });
});

describe('/metrics body with many users', () => {
  // The per-user families are written in one pass, in chunks of lines: every count around the chunk size renders
  // every line of all eight families exactly as prom-client's Registry does.
  it.each([63, 64, 65, 128, 129, 300])('%i users: every per-user family renders exactly as prom-client would', async (n) => {
    const m = new ExporterMetrics({ maxUsers: 250, limitsFor: (u) => (u.endsWith('7') ? { tokens: 7, requests: 3, costUsd: new Decimal('1.5') } : u.endsWith('8') ? { requests: 8 } : {}) });
    const p = { start: new Date('2026-01-01T00:00:00Z'), end: new Date('2026-02-01T00:00:00Z') };
    m.setPeriod(p, ['free']);
    const users = Array.from({ length: n }, (_, i) => (i % 10 === 3 ? `ü-"${i}"\\` : `user-${i}`));
    m.loadRollups(users.map((u, i) => ({ periodStart: p.start.toISOString(), userId: u, plan: 'free', tokens: { input: i, cache_read: 0, cache_write: 0, output: 1, reasoning: 0 }, requests: i + 1, costUsd: `0.${i}5` })));
    // Counters too: one priced call for some of the users (past max_users: the overflow entry).
    const records = users.filter((_, i) => i % 3 === 0).map((u, i) => ({
      traceId: 'b'.repeat(32), spanId: (i + 1).toString(16).padStart(16, '0'), endTimeMillis: p.start.getTime() + 1, provider: 'openai', rawModel: 'x', operation: 'chat',
      usage: { input: 10 + i, cache_read: 0, cache_write: 0, output: 1, reasoning: 0 }, estimated: false, userId: u, outcome: 'success' as const, source: 'tokenmeter' as const,
      plan: 'free', model: 'x', periodStart: p.start.toISOString(), priced: true, costUsd: { input: `0.00${i}1`, cache_read: '0', cache_write: '0', output: '0', reasoning: '0' }, totalCostUsd: `0.00${i}1`,
    }));
    m.recordCommit({ committed: records, duplicates: [], rollups: [] });
    const body = await m.renderBody();
    const text = await m.render();
    expect(body.toString('utf8')).toBe(text);
    expect(text.endsWith('\n')).toBe(true);
    // The reference: prom-client's own Gauges/Counters holding the values each family reports through get().
    const reg = new Registry();
    let families = 0;
    // Every family the exporter renders itself (not only the per-user ones) against prom-client's rendering.
    const own = m.ownFamilies();
    expect(own.filter((f) => f instanceof UserSeriesMetric)).toHaveLength(8);
    for (const metric of own) {
      const got = await metric.get();
      const labelNames = [...metric.labelNames];
      if (got.type === 'counter') {
        const ref = new Counter({ name: got.name, help: got.help, labelNames, registers: [reg] });
        for (const v of got.values) ref.inc(v.labels, v.value);
      } else {
        const ref = new Gauge({ name: got.name, help: got.help, labelNames, registers: [reg] });
        for (const v of got.values) ref.set(v.labels, v.value);
      }
      families++;
    }
    expect(families).toBe(14);
    const reference = await reg.metrics();
    expect(reference).toContain('tokenmeter_cost_usd_total{');
    for (const block of reference.trim().split('\n\n')) expect(text).toContain(`${block}\n`);
    expect(reference).toContain('user="__overflow__"');
    // The next scrape (sized from this one) is the same body.
    expect((await m.renderBody()).equals(body)).toBe(true);
  });
});

describe('period gauges', () => {
  it('roll over at the month boundary: gauges restart from zero and old users disappear', async () => {
    const clock = new FakeClock(T0);
    const e = await start({ clock });
    const march = NANOS(new Date('2026-03-31T22:00:00Z'));
    await postOtlp(e.otlpUrl, otlpJson([{ spanId: 'b000000000000001', user: 'march-user', model: 'gpt-4o', input: 100, output: 0 }], march));
    let lines = await scrape(e.httpUrl);
    expect(lines).toContain('tokenmeter_period_tokens{user="march-user",plan="free"} 100');
    expect(lines).toContain('tokenmeter_period_end_timestamp_seconds{plan="free"} 1775001600');

    clock.t = new Date('2026-04-01T00:00:01Z');
    lines = await scrape(e.httpUrl);
    expect(lines.some((l) => l.includes('march-user'))).toBe(false);
    expect(lines).toContain('tokenmeter_period_end_timestamp_seconds{plan="free"} 1777593600');
    expect(lines).toContain('tokenmeter_user_series 0');

    const april = NANOS(new Date('2026-04-01T00:00:00.500Z'));
    await postOtlp(e.otlpUrl, otlpJson([{ spanId: 'b000000000000002', user: 'april-user', model: 'gpt-4o', input: 7, output: 0 }], april));
    // A late span from March is committed to March's period and never lands in April's gauges.
    await postOtlp(e.otlpUrl, otlpJson([{ spanId: 'b000000000000003', user: 'april-user', model: 'gpt-4o', input: 1000, output: 0 }], march));
    lines = await scrape(e.httpUrl);
    expect(lines).toContain('tokenmeter_period_tokens{user="april-user",plan="free"} 7');
    expect(lines).toContain('tokenmeter_period_requests{user="april-user",plan="free"} 1');
    // The counters keep counting every committed call, whatever its period.
    expect(lines).toContain('tokenmeter_tokens_total{plan="free",provider="openai",model="gpt-4o",type="input"} 1107');
  });

  it('are reloaded from the ledger at start (restart keeps them) and by the periodic refresh (replicas converge)', async () => {
    const clock = new FakeClock(new Date('2026-05-10T12:00:00Z'));
    const first = await start({ clock });
    const at = NANOS(new Date('2026-05-10T11:00:00Z'));
    await postOtlp(first.otlpUrl, otlpJson([{ spanId: 'c000000000000001', user: 'ivy', model: 'gpt-4o', input: 400, output: 100 }], at));
    const before = (await scrape(first.httpUrl)).filter((l) => l.startsWith('tokenmeter_period_'));
    await first.close();

    // Same ledger, new process state.
    const second = await start({ clock, ledger: first.ledger });
    const after = (await scrape(second.httpUrl)).filter((l) => l.startsWith('tokenmeter_period_'));
    expect(after).toEqual(before);
    expect(after).toContain('tokenmeter_period_cost_usd{user="ivy",plan="free"} 0.002');

    // Another replica commits to the same ledger; our refresh picks it up.
    const replica = await start({ clock, ledger: first.ledger });
    await postOtlp(replica.otlpUrl, otlpJson([{ spanId: 'c000000000000002', user: 'ivy', model: 'gpt-4o', input: 400, output: 100 }], at));
    await second.refresh();
    expect(await scrape(second.httpUrl)).toContain('tokenmeter_period_tokens{user="ivy",plan="free"} 1000');
  });

  it('bounds per-user series with max_users; the overflow keeps totals exact', async () => {
    const clock = new FakeClock(new Date('2026-05-10T12:00:00Z'));
    const e = await start({ clock, config: { limits: { max_users: 2 } } });
    const at = NANOS(new Date('2026-05-10T11:00:00Z'));
    const spans = ['u1', 'u2', 'u3', 'u4', 'u3'].map((user, i) => ({ spanId: `d00000000000000${i}`, user, model: 'gpt-4o', input: 100 * (i + 1), output: 0 }));
    await postOtlp(e.otlpUrl, otlpJson(spans, at));
    const lines = await scrape(e.httpUrl);
    const periodTokens = lines.filter((l) => l.startsWith('tokenmeter_period_tokens{'));
    expect(periodTokens).toEqual([
      'tokenmeter_period_tokens{user="u1",plan="free"} 100',
      'tokenmeter_period_tokens{user="u2",plan="free"} 200',
      'tokenmeter_period_tokens{user="__overflow__",plan="free"} 1200',
    ]);
    expect(lines).toContain('tokenmeter_user_tokens_total{user="__overflow__",plan="free"} 1200');
    expect(lines).toContain('tokenmeter_user_overflow_total 3');
    expect(lines).toContain('tokenmeter_user_series 2');
    // A full reload applies the rule that depends on the ledger's totals alone (user-series.ts): the users closest
    // to a limit keep their own gauges (u3 at 800 tokens, u4 at 400); the sum stays exact.
    await e.refresh();
    const reloaded = (await scrape(e.httpUrl)).filter((l) => l.startsWith('tokenmeter_period_tokens{'));
    expect([...reloaded].sort()).toEqual([
      'tokenmeter_period_tokens{user="__overflow__",plan="free"} 300',
      'tokenmeter_period_tokens{user="u3",plan="free"} 800',
      'tokenmeter_period_tokens{user="u4",plan="free"} 400',
    ]);
    expect(lines.some((l) => l.startsWith('tokenmeter_limit_tokens{user="__overflow__"'))).toBe(false);
    // Stable across restarts: a new process on the same ledger exposes the same users with the same numbers.
    const again = await start({ clock, ledger: e.ledger, config: { limits: { max_users: 2 } } });
    expect((await scrape(again.httpUrl)).filter((l) => l.startsWith('tokenmeter_period_tokens{')).sort()).toEqual([...reloaded].sort());
    // The counters' slots too: u3 and u4 keep theirs, whoever sends first after the restart.
    await postOtlp(again.otlpUrl, otlpJson([{ spanId: 'd000000000000009', user: 'u1', model: 'gpt-4o', input: 5, output: 0 }], at));
    await postOtlp(again.otlpUrl, otlpJson([{ spanId: 'd00000000000000a', user: 'u3', model: 'gpt-4o', input: 7, output: 0 }], at));
    const counters = (await scrape(again.httpUrl)).filter((l) => l.startsWith('tokenmeter_user_tokens_total{'));
    expect(counters.sort()).toEqual([
      'tokenmeter_user_tokens_total{user="__overflow__",plan="free"} 5',
      'tokenmeter_user_tokens_total{user="u3",plan="free"} 7',
      'tokenmeter_user_tokens_total{user="u4",plan="free"} 0',
    ]);
  });
});

describe('per-user memory', () => {
  it('stays under 2 KB of heap per active user', () => {
    const m = new ExporterMetrics({ maxUsers: 100_000, limitsFor: () => ({ tokens: 500_000, requests: 100, costUsd: new Decimal('20') }) });
    const p = { start: new Date('2026-01-01T00:00:00Z'), end: new Date('2026-02-01T00:00:00Z') };
    m.setPeriod(p, ['pro']);
    const n = 20_000;
    const rollups = Array.from({ length: n }, (_, i) => ({
      periodStart: p.start.toISOString(), userId: `user-${i}@example.com`, plan: 'pro', tokens: { input: i, cache_read: 0, cache_write: 0, output: 10, reasoning: 0 }, requests: 3, costUsd: '0.0123',
    }));
    (globalThis as { gc?: () => void }).gc?.();
    const before = process.memoryUsage().heapUsed;
    m.loadRollups(rollups);
    (globalThis as { gc?: () => void }).gc?.();
    const perUser = (process.memoryUsage().heapUsed - before) / n;
    expect(perUser).toBeLessThan(2048);
  });
});

describe("period gauges from a commit's live rows (CommitResult.touched, the journal ledger)", () => {
  /** A ledger's (user, plan) row: the fake the journal's UserRow stands for (LiveRollup). */
  class FakeRow {
    tokens = 0;
    requests = 0;
    cost = new Decimal(0);
    readerSlot: unknown = undefined;
    constructor(
      readonly userId: string,
      readonly plan: string,
    ) {}
    tokenSum(): number {
      return this.tokens;
    }
    costUsd(): string {
      return this.cost.toFixed();
    }
  }

  it('give exactly the /metrics of the same commits handed over as rollups, through updates, overflow, limits, plan changes and reloads', async () => {
    const limits: Record<string, { tokens?: number; requests?: number; costUsd?: Decimal }> = { free: { tokens: 1000, requests: 40 }, pro: { costUsd: new Decimal('0.5') } };
    const p = { start: new Date('2026-01-01T00:00:00Z'), end: new Date('2026-02-01T00:00:00Z') };
    const ps = p.start.toISOString();
    const make = () => {
      const m = new ExporterMetrics({ maxUsers: 4, limitsFor: (_u, plan) => limits[plan] ?? {} });
      m.setPeriod(p, ['free', 'pro']);
      return m;
    };
    const live = make();
    // A second reader of the same rows: each keeps its own state, whatever the rows' reader slots hold.
    const live2 = make();
    const viaRollups = make();
    const rows = new Map<string, FakeRow>();
    let seed = 12345;
    const rand = (n: number) => {
      // mulberry32: deterministic, and its low bits are as random as its high ones.
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
    };
    const rollupOf = (r: FakeRow) => ({ periodStart: ps, userId: r.userId, plan: r.plan, tokens: { input: r.tokens, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 }, requests: r.requests, costUsd: r.costUsd() });
    const reached = new Set<string>();
    for (let step = 0; step < 300; step++) {
      const changed: FakeRow[] = [];
      for (let k = 1 + rand(4); k > 0; k--) {
        const user = `u${rand(10)}`;
        // Mostly one plan per user; a few users are billed under a second plan.
        const plan = user === 'u1' || user === 'u7' ? (rand(2) === 0 ? 'free' : 'pro') : Number(user.slice(1)) % 2 === 0 ? 'free' : 'pro';
        const key = `${user}/${plan}`;
        let row = rows.get(key);
        if (row === undefined) rows.set(key, (row = new FakeRow(user, plan)));
        row.tokens += 1 + rand(60);
        row.requests += 1;
        row.cost = row.cost.plus(new Decimal(rand(9000)).div(1e6));
        if (!changed.includes(row)) changed.push(row);
      }
      const touched = [{ periodStart: ps, rows: changed }, { periodStart: '2025-12-01T00:00:00.000Z', rows: [new FakeRow('old-period', 'free')] }];
      live.recordCommit({ committed: [], duplicates: [], get rollups(): never { throw new Error('the live path must not read the rollups'); }, touched });
      if (step % 3 !== 0) live2.recordCommit({ committed: [], duplicates: [], rollups: [], touched });
      else live2.recordCommit({ committed: [], duplicates: [], rollups: changed.map(rollupOf) });
      viaRollups.recordCommit({ committed: [], duplicates: [], rollups: changed.map(rollupOf) });
      if (step === 150) {
        limits.free = { tokens: 400 };
        live.refreshLimits();
        live2.refreshLimits();
        viaRollups.refreshLimits();
      }
      if (step % 97 === 96) {
        const all = [...rows.values()].map(rollupOf);
        live.loadRollups(all);
        live2.loadRollups(all);
        viaRollups.loadRollups(all);
      }
      const text = await live.render();
      expect(text).toBe(await viaRollups.render());
      expect(await live2.render()).toBe(text);
      if (text.includes('tokenmeter_period_tokens{user="__overflow__"')) reached.add('overflow');
      if (text.includes('tokenmeter_limit_cost_usd{user=')) reached.add('cost limit');
      if (text.includes('old-period')) reached.add('old period');
      // An oracle independent of user-series.ts: each exposed user's gauges are the sum of their rows, and every
      // row's tokens and requests are on the gauges exactly once (exposed or folded into the overflow).
      const gauges = (name: string) => text.split('\n').filter((l) => l.startsWith(`${name}{`)).map((l) => ({ user: /user="([^"]*)"/.exec(l)![1]!, value: Number(l.split(' ')[1]) }));
      const userRows = (user: string) => [...rows.values()].filter((r) => r.userId === user);
      for (const g of gauges('tokenmeter_period_cost_usd')) if (g.user !== '__overflow__') expect(g.value).toBe(Number(userRows(g.user).reduce((c, r) => c.plus(r.cost), new Decimal(0)).toFixed()));
      for (const g of gauges('tokenmeter_period_tokens')) if (g.user !== '__overflow__') expect(g.value).toBe(userRows(g.user).reduce((n, r) => n + r.tokens, 0));
      expect(gauges('tokenmeter_period_tokens').reduce((n, g) => n + g.value, 0)).toBe([...rows.values()].reduce((n, r) => n + r.tokens, 0));
      expect(gauges('tokenmeter_period_requests').reduce((n, g) => n + g.value, 0)).toBe([...rows.values()].reduce((n, r) => n + r.requests, 0));
    }
    // Sanity: the run reached the overflow and the limit gauges, and the old period's row was never shown.
    expect([...reached].sort()).toEqual(['cost limit', 'overflow']);
    const text = await live.render();
    // Every period's tokens are on the gauges exactly once: their sum is the rows' sum.
    const sum = text.split('\n').filter((l) => l.startsWith('tokenmeter_period_tokens{')).reduce((s, l) => s + Number(l.split(' ')[1]), 0);
    expect(sum).toBe([...rows.values()].reduce((s, r) => s + r.tokens, 0));
  });
});
