import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { INGEST_OUTCOMES, METRIC, NO_FEATURE, OVERFLOW_USER, TOKEN_TYPES } from '../../src/contract/names.js';
import type { LedgerRecord } from '../../src/ledger/types.js';
import { ExporterMetrics } from '../../src/exporter/metrics.js';
import { ExactDecimal } from '../../src/money/index.js';
import { toLedgerRecord } from '../../src/exporter/pipeline.js';
import { PriceBook } from '../../src/pricing/index.js';
import type { UsageRecord } from '../../src/usage/usage-record.js';
import { SimplePlans } from './fakes.js';

/**
 * The exporter counts committed records into series it indexes itself (one field addition per record). This checks
 * that against the straightforward implementation it replaced: one prom-client `Counter.inc` per record and type
 * with a labels object, money summed with decimal.js, one `inc()` per priced span and per overflowed call. The
 * /metrics text of every family they feed must be identical, series order included.
 */
class ReferenceMoneyCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly values = new Map<string, { labels: Record<string, string>; value: InstanceType<typeof ExactDecimal> }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Record<string, string>, amount: string): void {
    const k = Object.values(labels).join('\u0000');
    const cur = this.values.get(k);
    if (cur) cur.value = cur.value.plus(amount);
    else this.values.set(k, { labels: { ...labels }, value: new ExactDecimal(amount) });
  }
  get() {
    const values = [...this.values.values()].map((v) => ({ labels: v.labels, value: v.value.toNumber() }));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}

class ReferenceMetrics {
  readonly registry = new Registry();
  private readonly r = [this.registry];
  readonly tokens = new Counter({ name: METRIC.tokensTotal, help: 'Tokens by non-overlapping type (input, cache_read, cache_write, output, reasoning).', labelNames: ['plan', 'provider', 'model', 'type'], registers: this.r });
  readonly cost = new ReferenceMoneyCounter(METRIC.costUsdTotal, 'Cost in USD by token type, and type="fee" for per-call fees (web searches, search grounding), which have no tokens.');
  readonly requests = new Counter({ name: METRIC.requestsTotal, help: 'LLM calls.', labelNames: ['plan', 'provider', 'model', 'operation', 'outcome'], registers: this.r });
  readonly feature = new ReferenceMoneyCounter(METRIC.featureCostUsdTotal, 'Cost in USD by product feature (tokenmeter.feature; "none" when absent).');
  readonly estimated = new Counter({ name: METRIC.estimatedTokensTotal, help: 'Tokens that were estimated with a tokenizer, not reported by the provider.', labelNames: ['plan', 'provider', 'model'], registers: this.r });
  readonly unpriced = new Counter({ name: METRIC.unpricedTokensTotal, help: 'Tokens of models with no known price (never counted as free).', labelNames: ['provider', 'model'], registers: this.r });
  readonly ingested = new Counter({ name: METRIC.ingestedSpansTotal, help: 'Spans received, by outcome: priced (usage committed, priced or unpriced), ignored (not GenAI), duplicate, rejected, superseded (a framework span whose call a provider-level span records: ingest.framework_spans).', labelNames: ['outcome'], registers: this.r });
  readonly overflow = new Counter({ name: METRIC.userOverflowTotal, help: 'Calls attributed to user="__overflow__" because max_users was reached.', registers: this.r });
  readonly userCost = new Map<string, InstanceType<typeof ExactDecimal>>();
  readonly userTokens = new Map<string, number>();
  private readonly features = new Set<string>();
  private readonly users = new Set<string>();

  constructor(
    private readonly maxUsers: number,
    private readonly maxFeatures: number,
  ) {
    this.registry.registerMetric(this.cost as never);
    this.registry.registerMetric(this.feature as never);
    for (const o of INGEST_OUTCOMES) this.ingested.inc({ outcome: o }, 0);
    this.overflow.inc(0);
  }

  count(rec: LedgerRecord): void {
    const model = rec.model;
    const base = { plan: rec.plan, provider: rec.provider, model };
    let total = 0;
    for (const t of TOKEN_TYPES) {
      const n = rec.usage[t];
      total += n;
      if (n > 0) this.tokens.inc({ ...base, type: t }, n);
      if (rec.priced && rec.costUsd[t] !== '0') this.cost.inc({ ...base, type: t }, rec.costUsd[t]);
    }
    if (rec.priced && rec.feeCostUsd !== undefined && rec.feeCostUsd !== '0') this.cost.inc({ ...base, type: 'fee' }, rec.feeCostUsd);
    this.requests.inc({ ...base, operation: rec.operation, outcome: rec.outcome });
    if (rec.priced) {
      let f = rec.feature ?? NO_FEATURE;
      if (!this.features.has(f)) {
        if (this.features.size < this.maxFeatures) this.features.add(f);
        else f = OVERFLOW_USER;
      }
      this.feature.inc({ feature: f, plan: rec.plan }, rec.totalCostUsd);
    }
    if (rec.estimated && total > 0) this.estimated.inc(base, total);
    if (!rec.priced && total > 0) this.unpriced.inc({ provider: rec.provider, model }, total);
    this.ingested.inc({ outcome: 'priced' });
    const key = `${rec.userId}\u0000${rec.plan}`;
    let user = key;
    if (!this.users.has(key)) {
      if (this.users.size < this.maxUsers) this.users.add(key);
      else {
        user = `${OVERFLOW_USER}\u0000${rec.plan}`;
        this.overflow.inc();
      }
    }
    this.userTokens.set(user, (this.userTokens.get(user) ?? 0) + total);
    if (rec.priced) this.userCost.set(user, (this.userCost.get(user) ?? new ExactDecimal(0)).plus(rec.totalCostUsd));
  }
}

const PLANS = ['free', 'pro', 'team'];
const MODELS = [
  ['openai', 'gpt-4o-mini-2024-07-18'],
  ['openai', 'gpt-5-mini'],
  ['anthropic', 'claude-haiku-4-5-20251001'],
  ['anthropic', 'claude-sonnet-4'],
  ['openai', 'my-private-model'],
  ['vllm', 'llama-local'],
  ['openai', 'text-embedding-3-small'],
];

/** A deterministic mixed batch: plans, models (priced and not), operations, errors, estimates, features. */
function batch(n: number, seed: number, at: number): UsageRecord[] {
  let a = seed >>> 0;
  // mulberry32
  const rand = (k: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * k);
  };
  return Array.from({ length: n }, (_, i) => {
    const [provider, rawModel] = MODELS[rand(MODELS.length)]!;
    const u = rand(40);
    const rec: UsageRecord = {
      traceId: 'a'.repeat(32),
      spanId: (seed * 100_000 + i).toString(16).padStart(16, '0'),
      endTimeMillis: at + i,
      provider: provider!,
      rawModel: rawModel!,
      operation: ['chat', 'chat', 'embeddings', 'text_completion'][rand(4)]!,
      usage: {
        input: rand(3) === 0 ? 0 : rand(5000),
        cache_read: rand(3) === 0 ? rand(2000) : 0,
        cache_write: rand(5) === 0 ? rand(1000) : 0,
        output: rawModel === 'text-embedding-3-small' ? 0 : rand(900),
        reasoning: rand(4) === 0 ? rand(300) : 0,
      },
      estimated: rand(6) === 0,
      userId: `user-${u}`,
      outcome: rand(8) === 0 ? 'error' : 'success',
      source: 'tokenmeter',
    };
    if (rand(2) === 0) rec.planFromSpan = PLANS[u % 3];
    // Some calls with web searches (a per-call fee: cost type "fee", no tokens).
    if (provider === 'anthropic' && rand(4) === 0) rec.toolCalls = { web_search: 1 + rand(5) };
    const f = rand(12);
    if (f < 9) rec.feature = `feature-${f}`;
    return rec;
  });
}

function families(text: string, names: string[]): string {
  return text
    .trim()
    .split('\n\n')
    .filter((block) => names.some((n) => block.startsWith(`# HELP ${n} `)))
    .sort()
    .join('\n\n');
}

describe('counting committed records', () => {
  it('gives exactly the /metrics text of one prom-client update per record, for mixed batches', async () => {
    const plans = new SimplePlans();
    const book = PriceBook.load();
    const period = { start: new Date('2026-03-01T00:00:00Z'), end: new Date('2026-04-01T00:00:00Z') };
    const at = Date.UTC(2026, 2, 10);
    const maxUsers = 25;
    const maxFeatures = 6;
    const m = new ExporterMetrics({ maxUsers, maxFeatures, limitsFor: () => ({}) });
    m.setPeriod(period, plans.planNames());
    const ref = new ReferenceMetrics(maxUsers, maxFeatures);
    let priced = 0;
    let withFees = 0;
    let unpriced = 0;
    for (let b = 0; b < 6; b++) {
      const records = batch(300, b + 1, at).map((r) => toLedgerRecord(r, plans, book));
      priced += records.filter((r) => r.priced).length;
      withFees += records.filter((r) => r.feeCostUsd !== undefined).length;
      unpriced += records.filter((r) => !r.priced).length;
      m.recordCommit({ committed: records, duplicates: [], rollups: [] });
      for (const r of records) ref.count(r);
    }
    expect(priced).toBeGreaterThan(500);
    expect(withFees).toBeGreaterThan(10);
    expect(unpriced).toBeGreaterThan(100);

    const names = [
      METRIC.tokensTotal,
      METRIC.costUsdTotal,
      METRIC.requestsTotal,
      METRIC.featureCostUsdTotal,
      METRIC.estimatedTokensTotal,
      METRIC.unpricedTokensTotal,
      METRIC.ingestedSpansTotal,
      METRIC.userOverflowTotal,
    ];
    const text = await m.render();
    const expected = families(await ref.registry.metrics(), names);
    expect(families(text, names)).toBe(expected);
    expect(expected.split('\n').length).toBeGreaterThan(150);
    // The batch reaches every path: overflowed users and features, estimates, unpriced models, errors.
    expect(expected).toMatch(/^tokenmeter_user_overflow_total [1-9]/m);
    expect(expected).toContain('feature="__overflow__"');
    expect(expected).toMatch(/^tokenmeter_estimated_tokens_total\{/m);
    expect(expected).toMatch(/^tokenmeter_unpriced_tokens_total\{/m);
    expect(expected).toContain('outcome="error"');

    // Each family declares the label names its series carry (prom-client's labelNames; the README table reads them).
    for (const metric of m.registry.getMetricsAsArray() as unknown as { name: string; labelNames?: readonly string[]; get(): Promise<{ values: { labels: object }[] }> }[]) {
      if (!(names as string[]).includes(metric.name) || metric.labelNames === undefined) continue;
      for (const v of (await metric.get()).values) expect([metric.name, Object.keys(v.labels)]).toEqual([metric.name, [...metric.labelNames]]);
    }

    // Per-user counters: exact sums, overflow included.
    for (const [key, cost] of ref.userCost) {
      const [user, plan] = key.split('\u0000');
      expect(text).toContain(`tokenmeter_user_cost_usd_total{user="${user}",plan="${plan}"} ${cost.toNumber()}\n`);
    }
    for (const [key, tokens] of ref.userTokens) {
      const [user, plan] = key.split('\u0000');
      expect(text).toContain(`tokenmeter_user_tokens_total{user="${user}",plan="${plan}"} ${tokens}\n`);
    }
  });
});
