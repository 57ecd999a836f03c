import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { COST_TYPE_FEE, INGEST_OUTCOMES, LABEL, METRIC, NO_FEATURE, OVERFLOW_USER, TOKEN_TYPES, type TokenType } from '../contract/names.js';

/** `tokenmeter_cost_usd_total{type}` values: the five token types, then `fee` (per-call fees, no tokens series). */
const COST_TYPES: readonly string[] = [...TOKEN_TYPES, COST_TYPE_FEE];
import type { CommitResult, LedgerRecord, PeriodRollup } from '../ledger/types.js';
import type { BillingPeriod } from '../plans/types.js';
import { totalTokens } from '../usage/usage.js';
import { ExactSum, canonicalMoney } from '../money/index.js';
import { TextWriter } from './text-writer.js';
import { UserSeriesMetric, UserSeriesStore, type LimitsLookup, type PeriodPlanLookup } from './user-series.js';

export interface ExporterMetricsOptions {
  /** Bound on (user, plan) pairs with their own per-user series; the rest go to user="__overflow__". */
  maxUsers: number;
  /** Bound on distinct `feature` label values (spans set them freely); the rest go to "__overflow__". */
  maxFeatures?: number;
  /** Bound on distinct model labels of unpriced models (the names come from spans, not the catalog). */
  maxUnpricedModels?: number;
  /** The user's effective limits (plan limits with per-user overrides). */
  limitsFor: LimitsLookup;
  /**
   * Also expose the process and Node.js runtime metrics (prom-client's default metrics: CPU, memory, event loop
   * lag, GC, handles). On in the running exporter; off by default so that many instances in one test process do
   * not each start an event-loop monitor.
   */
  processMetrics?: boolean;
  /** The version in tokenmeter_build_info (default: package.json's). */
  version?: string;
  /** The user's one plan for limits this period (period-plan.ts); default: the first billed plan by name. */
  periodPlanFor?: PeriodPlanLookup;
}

/** OTLP signals as labelled on the request metrics. */
export type OtlpRequestSignal = 'traces' | 'metrics' | 'other';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** A (provider, model) the ledger holds usage of: its series start at 0 when the exporter starts (primeSeries). */
export interface KnownModelUsage {
  provider: string;
  model: string;
  tokens: Record<TokenType, number>;
  requests: number;
  unpricedRequests?: number;
  estimatedRequests?: number;
}

/** Keeps a label's distinct values under a bound; past it, values map to the overflow value. */
class LabelBound {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}
  label(v: string): string {
    if (this.seen.has(v)) return v;
    if (this.seen.size < this.max) {
      this.seen.add(v);
      return v;
    }
    return OVERFLOW_USER;
  }
}

/** One series as prom-client's Registry renders it: labels in key order, and the value. */
interface CounterSeries<V> {
  readonly labels: Record<string, string>;
  value: V;
}

type NumberSeries = CounterSeries<number>;
type MoneySeries = CounterSeries<ExactSum>;

/**
 * A labelled counter that hands out its series, so that counting a record adds to a field instead of hashing a
 * labels object per increment (prom-client's Counter.inc). The caller finds series through its own index and
 * creates each label set once. The exposition lists series in creation order, as prom-client does, and the
 * Registry renders them through `get()` like any other metric.
 */
class SeriesCounter<V> {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private series: CounterSeries<V>[] = [];
  constructor(
    readonly name: string,
    readonly help: string,
    /** In the order of each series' labels (prom-client's field; the README's metric table reads it). */
    readonly labelNames: readonly string[],
    private readonly valueOf: (v: V) => number,
    private readonly onReset: () => void,
  ) {}

  create(labels: Record<string, string>, value: V): CounterSeries<V> {
    const s = { labels, value };
    this.series.push(s);
    return s;
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string>; value: number }[] }> {
    const values = this.series.map((s) => ({ labels: s.labels, value: this.valueOf(s.value) }));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    this.series = [];
    this.onReset();
  }
}

const numberValue = (v: number): number => v;

/** A metric family the exporter renders itself. */
export interface OwnMetric {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly labelNames: readonly string[];
  get(): Promise<{ name: string; help: string; type: string; values: { labels: Record<string, string>; value: number }[] }>;
}

/** Prometheus text format 0.0.4 as prom-client writes a family (so /metrics reads the same; NaN spelled as Prometheus does). */
function renderFamily(m: { name: string; help: string; type: string; values: { labels: Record<string, string>; value: number }[] }): string {
  let out = `# HELP ${m.name} ${escapeText(m.help)}\n# TYPE ${m.name} ${m.type}`;
  for (const v of m.values) {
    let labels = '';
    for (const k in v.labels) labels += `${labels === '' ? '' : ','}${k}="${escapeText(v.labels[k]).replace(/"/g, '\\"')}"`;
    out += `\n${m.name}${labels === '' ? '' : `{${labels}}`} ${sampleValue(v.value)}`;
  }
  return out;
}

function escapeText(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function sampleValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  return String(v);
}

/** prom-client keeps a metric's label names on the instance (its typings do not declare the field). */
function labelNamesOf(m: object): readonly string[] | undefined {
  const names = (m as { labelNames?: unknown }).labelNames;
  return Array.isArray(names) ? (names as string[]) : undefined;
}
// ExactDecimal counters are exact decimals (0.1 + 0.2 is 0.3 on the scrape too); the float appears only when rendered.
const moneyValue = (v: ExactSum): number => v.toNumber();

/** The series of one (plan, provider, model), found with three Map lookups of strings that are mostly shared. */
interface ModelSeries {
  /** `{ plan, provider, model }`, the base of every label set below (copied, never shared with a series). */
  readonly base: { plan: string; provider: string; model: string };
  /** By TOKEN_TYPES index. */
  readonly tokens: (NumberSeries | undefined)[];
  readonly cost: (MoneySeries | undefined)[];
  /** operation → outcome → series. */
  readonly requests: Map<string, Map<string, NumberSeries>>;
  estimated: NumberSeries | undefined;
}

/** A nested map lookup, creating the inner map on first use. */
function inner<K, V>(m: Map<K, Map<string, V>>, k: K): Map<string, V> {
  let v = m.get(k);
  if (v === undefined) m.set(k, (v = new Map()));
  return v;
}

/**
 * Every Prometheus series the exporter emits (DESIGN.md's table plus the operational ones). Updated only from
 * committed ledger results, never read from the ledger during a scrape: the period gauges are the ledger's rollups
 * as last seen (after each commit, at start and on the periodic refresh).
 */
export class ExporterMetrics {
  /** prom-client's metrics (gauges, counters, histograms, process metrics): rendered through its public API. */
  readonly registry = new Registry();
  /**
   * The exporter's own metric families (compact series stores prom-client has no class for), rendered here in
   * Prometheus's text format; in the exposition they follow the first `ownAt` metrics of the registry.
   */
  private readonly ownMetrics: OwnMetric[] = [];
  private ownAt = 0;
  private readonly users: UserSeriesStore;
  private readonly features: LabelBound;
  private readonly unpricedModels: LabelBound;
  private period: BillingPeriod | undefined;
  private periodStartMillis = Number.NaN;
  private lastBodyBytes = 0;

  private readonly tokensTotal: SeriesCounter<number>;
  private readonly costUsdTotal: SeriesCounter<ExactSum>;
  private readonly requestsTotal: SeriesCounter<number>;
  private readonly featureCostUsdTotal: SeriesCounter<ExactSum>;
  private readonly estimatedTokensTotal: SeriesCounter<number>;
  private readonly unpricedTokensTotal: SeriesCounter<number>;
  /** Indexes of the series above: plan → provider → model, provider → model (unpriced), feature → plan. */
  private modelSeries = new Map<string, Map<string, Map<string, ModelSeries>>>();
  private unpricedSeries = new Map<string, Map<string, NumberSeries>>();
  private featureSeries = new Map<string, Map<string, MoneySeries>>();
  /** The last periodStart string compared with the current period, and the answer. */
  private lastPeriodStart: string | undefined;
  private lastPeriodStartIsCurrent = false;
  private readonly periodEnd: Gauge<string>;
  private readonly ingestedSpansTotal: Counter<string>;
  private readonly rejectedSpansTotal: Counter<string>;
  private readonly ledgerCommitSeconds: Histogram<string>;
  private readonly ledgerUp: Gauge<string>;
  private readonly userSeries: Gauge<string>;
  private readonly userOverflowTotal: Counter<string>;

  constructor(options: ExporterMetricsOptions) {
    const r = [this.registry];
    this.users = new UserSeriesStore(options.maxUsers, options.limitsFor, options.periodPlanFor);
    this.features = new LabelBound(options.maxFeatures ?? 100);
    this.unpricedModels = new LabelBound(options.maxUnpricedModels ?? 200);

    // Every counter below is indexed by the maps above; resetting one (registry.resetMetrics) drops the indexes.
    const dropIndexes = () => {
      this.modelSeries = new Map();
      this.unpricedSeries = new Map();
      this.featureSeries = new Map();
    };
    this.tokensTotal = new SeriesCounter(
      METRIC.tokensTotal,
      'Tokens by non-overlapping type (input, cache_read, cache_write, output, reasoning).',
      [LABEL.plan, LABEL.provider, LABEL.model, LABEL.type],
      numberValue,
      dropIndexes,
    );
    this.addOwn(this.tokensTotal);
    this.costUsdTotal = new SeriesCounter(
      METRIC.costUsdTotal,
      'Cost in USD by token type, and type="fee" for per-call fees (web searches, search grounding), which have no tokens.',
      [LABEL.plan, LABEL.provider, LABEL.model, LABEL.type],
      moneyValue,
      dropIndexes,
    );
    this.addOwn(this.costUsdTotal);
    this.requestsTotal = new SeriesCounter(
      METRIC.requestsTotal,
      'LLM calls.',
      [LABEL.plan, LABEL.provider, LABEL.model, LABEL.operation, LABEL.outcome],
      numberValue,
      dropIndexes,
    );
    this.addOwn(this.requestsTotal);
    // The per-user series keep DESIGN.md's order in the exposition: the two counters here, the gauges further down.
    const userMetrics = this.users.metrics();
    for (const m of userMetrics.slice(0, 2)) this.addOwn(m);
    this.featureCostUsdTotal = new SeriesCounter(
      METRIC.featureCostUsdTotal,
      'Cost in USD by product feature (tokenmeter.feature; "none" when absent).',
      [LABEL.feature, LABEL.plan],
      moneyValue,
      dropIndexes,
    );
    this.addOwn(this.featureCostUsdTotal);
    this.estimatedTokensTotal = new SeriesCounter(
      METRIC.estimatedTokensTotal,
      'Tokens that were estimated with a tokenizer, not reported by the provider.',
      [LABEL.plan, LABEL.provider, LABEL.model],
      numberValue,
      dropIndexes,
    );
    this.addOwn(this.estimatedTokensTotal);
    this.unpricedTokensTotal = new SeriesCounter(
      METRIC.unpricedTokensTotal,
      'Tokens of models with no known price (never counted as free).',
      [LABEL.provider, LABEL.model],
      numberValue,
      dropIndexes,
    );
    this.addOwn(this.unpricedTokensTotal);
    for (const m of userMetrics.slice(2)) this.addOwn(m);
    this.periodEnd = new Gauge({
      name: METRIC.periodEndTimestampSeconds,
      help: 'When the current billing period ends (Unix seconds).',
      labelNames: [LABEL.plan],
      registers: r,
    });
    this.ingestedSpansTotal = new Counter({
      name: METRIC.ingestedSpansTotal,
      help: 'Spans received, by outcome: priced (usage committed, priced or unpriced), ignored (not GenAI), duplicate, rejected, superseded (a framework span whose call a provider-level span records: ingest.framework_spans).',
      labelNames: [LABEL.outcome],
      registers: r,
    });
    this.rejectedSpansTotal = new Counter({
      name: METRIC.rejectedSpansTotal,
      help: 'Spans and requests rejected, by reason.',
      labelNames: [LABEL.reason],
      registers: r,
    });
    this.ledgerCommitSeconds = new Histogram({
      name: METRIC.ledgerCommitSeconds,
      help: 'Time to commit one OTLP request to the ledger (including waiting for its group commit).',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    });
    this.ledgerUp = new Gauge({ name: METRIC.ledgerUp, help: '1 when the last ledger operation succeeded, else 0.', registers: r });
    this.userSeries = new Gauge({
      name: METRIC.userSeries,
      help: '(user, plan) pairs with their own per-user series this period (bounded by max_users).',
      registers: r,
      collect: () => {
        this.userSeries.set(this.users.trackedCount);
      },
    });
    this.userOverflowTotal = new Counter({
      name: METRIC.userOverflowTotal,
      help: 'Calls attributed to user="__overflow__" because max_users was reached.',
      registers: r,
    });
    for (const o of INGEST_OUTCOMES) this.ingestedSpansTotal.inc({ outcome: o }, 0);
    // Present from the start, so an alert on its increase fires on the first one.
    this.rejectedRequests.inc({ reason: 'internal_error' }, 0);
    this.redatedSpans.inc({ reason: 'late' }, 0);
    this.redatedSpans.inc({ reason: 'future' }, 0);
    // Present from the start, so an alert on increase(...{outcome="failure"}) fires on the first refused reload.
    for (const outcome of ['success', 'unchanged', 'failure']) this.priceReloads.inc({ outcome }, 0);
    this.userOverflowTotal.inc(0);

    new Gauge({
      name: METRIC.buildInfo,
      help: 'Always 1: the tokenmeter version and the Node.js version running it.',
      labelNames: [LABEL.version, LABEL.nodeVersion],
      registers: r,
    }).set({ [LABEL.version]: options.version ?? packageVersion(), [LABEL.nodeVersion]: process.version }, 1);
    this.otlpRequestsTotal = new Counter({
      name: METRIC.otlpRequestsTotal,
      help: 'OTLP/HTTP requests answered, by signal (traces, metrics, other) and HTTP status code ("aborted": closed before an answer).',
      labelNames: [LABEL.signal, LABEL.code],
      registers: r,
    });
    this.otlpRequestDurationSeconds = new Histogram({
      name: METRIC.otlpRequestDurationSeconds,
      help: 'Time from an OTLP/HTTP request\'s arrival to its answer (traces: including the ledger commit), by signal.',
      labelNames: [LABEL.signal],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: r,
    });
    // The successful series exist from the start, so rates and ratios over them have a 0 to start from.
    for (const signal of ['traces', 'metrics'] as const) {
      this.otlpRequestsTotal.inc({ [LABEL.signal]: signal, [LABEL.code]: '200' }, 0);
      this.otlpRequestDurationSeconds.zero({ [LABEL.signal]: signal });
    }
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  private readonly otlpRequestsTotal: Counter<string>;
  private readonly otlpRequestDurationSeconds: Histogram<string>;

  /** One OTLP/HTTP request answered (or closed unanswered: code "aborted"). */
  observeOtlpRequest(signal: OtlpRequestSignal, code: string, seconds: number): void {
    this.otlpRequestsTotal.inc({ [LABEL.signal]: signal, [LABEL.code]: code });
    this.otlpRequestDurationSeconds.observe({ [LABEL.signal]: signal }, seconds);
  }

  /** The billing period the gauges describe. */
  get currentPeriod(): BillingPeriod | undefined {
    return this.period;
  }

  /**
   * Sets the current billing period. When it changes (rollover), every per-user series is dropped so the period
   * gauges start from zero. Returns true on a change.
   */
  setPeriod(period: BillingPeriod, planNames: Iterable<string>): boolean {
    const changed = period.start.getTime() !== this.periodStartMillis;
    if (changed) {
      this.users.clear();
      this.period = period;
      this.periodStartMillis = period.start.getTime();
      this.lastPeriodStart = undefined;
    }
    this.periodEnd.reset();
    for (const plan of planNames) this.periodEnd.set({ plan }, period.end.getTime() / 1000);
    return changed;
  }

  private inCurrentPeriod(periodStart: string): boolean {
    // Records and rollups of one request almost always carry the same string: parse it once.
    if (periodStart !== this.lastPeriodStart) {
      this.lastPeriodStart = periodStart;
      this.lastPeriodStartIsCurrent = Date.parse(periodStart) === this.periodStartMillis;
    }
    return this.lastPeriodStartIsCurrent;
  }

  private applyRollup(r: PeriodRollup): void {
    // Every user's period totals, also of users whose counters overflowed: the gauges are per user (user-series.ts).
    this.users.applyRollup(r.userId, r.plan, totalTokens(r.tokens), r.requests, canonicalMoney(r.costUsd));
  }

  /** Counts a successful commit: counters from the newly committed records, gauges from the returned rollups. */
  recordCommit(result: CommitResult): void {
    const touched = result.touched;
    if (touched !== undefined) {
      // The journal ledger's changed rows, live (read now, in the turn the commit resolved): no rollup objects.
      for (const t of touched) {
        if (!this.inCurrentPeriod(t.periodStart)) continue;
        for (const r of t.rows) this.users.applyLive(r);
      }
    } else for (const r of result.rollups) if (this.inCurrentPeriod(r.periodStart)) this.applyRollup(r);
    let overflowed = 0;
    for (const rec of result.committed) if (this.countRecord(rec)) overflowed++;
    // One increment per request for the per-outcome and overflow totals (the same sums as one per record).
    if (result.committed.length > 0) this.ingestedSpansTotal.inc({ outcome: 'priced' }, result.committed.length);
    if (overflowed > 0) this.userOverflowTotal.inc(overflowed);
    if (result.duplicates.length > 0) this.ingestedSpansTotal.inc({ outcome: 'duplicate' }, result.duplicates.length);
    this.ledgerUp.set(1);
  }

  private seriesOf(plan: string, provider: string, model: string): ModelSeries {
    const byModel = inner(inner(this.modelSeries, plan), provider);
    let g = byModel.get(model);
    if (g === undefined) {
      g = { base: { plan, provider, model }, tokens: [], cost: [], requests: new Map(), estimated: undefined };
      byModel.set(model, g);
    }
    return g;
  }

  /** Adds to the tokens series of TOKEN_TYPES[i]. */
  private addTokens(g: ModelSeries, i: number, n: number): void {
    (g.tokens[i] ??= this.tokensTotal.create({ ...g.base, type: TOKEN_TYPES[i]! }, 0)).value += n;
  }

  /** Adds to the cost series of COST_TYPES[i]: the token types, then the per-call fees. */
  private addCost(g: ModelSeries, i: number, usd: string): void {
    (g.cost[i] ??= this.costUsdTotal.create({ ...g.base, type: COST_TYPES[i]! }, new ExactSum())).value.add(usd);
  }

  /** Counts one committed record; returns true when its user went to the overflow series. */
  private countRecord(rec: LedgerRecord): boolean {
    const model = rec.priced ? rec.model : this.unpricedModels.label(rec.model);
    const g = this.seriesOf(rec.plan, rec.provider, model);
    // Written out per type (named property reads, not usage[t]), in TOKEN_TYPES order: series are created in it.
    const u = rec.usage;
    const total = u.input + u.cache_read + u.cache_write + u.output + u.reasoning;
    if (u.input > 0) this.addTokens(g, 0, u.input);
    if (u.cache_read > 0) this.addTokens(g, 1, u.cache_read);
    if (u.cache_write > 0) this.addTokens(g, 2, u.cache_write);
    if (u.output > 0) this.addTokens(g, 3, u.output);
    if (u.reasoning > 0) this.addTokens(g, 4, u.reasoning);
    if (rec.priced) {
      const c = rec.costUsd;
      if (c.input !== '0') this.addCost(g, 0, c.input);
      if (c.cache_read !== '0') this.addCost(g, 1, c.cache_read);
      if (c.cache_write !== '0') this.addCost(g, 2, c.cache_write);
      if (c.output !== '0') this.addCost(g, 3, c.output);
      if (c.reasoning !== '0') this.addCost(g, 4, c.reasoning);
      // Per-call fees are cost without tokens: type="fee" keeps cost by type adding up to the total.
      if (rec.feeCostUsd !== undefined && rec.feeCostUsd !== '0') this.addCost(g, 5, rec.feeCostUsd);
    }
    const byOutcome = inner(g.requests, rec.operation);
    let requests = byOutcome.get(rec.outcome);
    if (requests === undefined) {
      byOutcome.set(rec.outcome, (requests = this.requestsTotal.create({ ...g.base, operation: rec.operation, outcome: rec.outcome }, 0)));
    }
    requests.value += 1;
    if (rec.priced) {
      const feature = this.features.label(rec.feature ?? NO_FEATURE);
      const byPlan = inner(this.featureSeries, feature);
      let fs = byPlan.get(rec.plan);
      if (fs === undefined) byPlan.set(rec.plan, (fs = this.featureCostUsdTotal.create({ feature, plan: rec.plan }, new ExactSum())));
      fs.value.add(rec.totalCostUsd);
    }
    if (rec.estimated && total > 0) (g.estimated ??= this.estimatedTokensTotal.create({ ...g.base }, 0)).value += total;
    if (!rec.priced && total > 0) {
      const byModel = inner(this.unpricedSeries, rec.provider);
      let us = byModel.get(model);
      if (us === undefined) byModel.set(model, (us = this.unpricedTokensTotal.create({ provider: rec.provider, model }, 0)));
      us.value += total;
    }

    const entry = this.users.resolveEntry(rec.userId, rec.plan);
    entry.tokensTotal += total;
    if (rec.priced) entry.costTotal.add(rec.totalCostUsd);
    // The period gauges (overflow ones included) come from the commit's rollups, not from the records.
    return entry.user === OVERFLOW_USER;
  }

  /**
   * Creates, at 0, the model-level counter series of every (plan, provider, model, type) the ledger has usage of, so
   * that a restarted or newly added replica exposes them at 0 before its first call. Prometheus' increase() counts a
   * series' growth from its first sample: a series born with its first increment loses that increment, and a
   * replica replaced inside a dashboard's time range would count only part of what it metered. Existing series are
   * left as they are. The ledger keeps per-model totals without the plan, so each model is primed under every plan
   * given (a few zero series at most); requests_total and the feature counter carry labels the ledger's totals do
   * not (operation, outcome, feature) and are not primed: the dashboards count a series born inside the window
   * with a non-zero first sample by that sample (promql.ts, sumIncreaseWithBirths).
   */
  primeSeries(plans: Iterable<string>, models: Iterable<KnownModelUsage>): void {
    const planList = [...new Set(plans)];
    for (const m of models) {
      const unpriced = m.unpricedRequests ?? 0;
      const priced = m.requests > unpriced;
      const types = TOKEN_TYPES.map((t, i) => (m.tokens[t] > 0 ? i : -1)).filter((i) => i >= 0);
      if (unpriced > 0) {
        const model = this.unpricedModels.label(m.model);
        const byModel = inner(this.unpricedSeries, m.provider);
        if (!byModel.has(model)) byModel.set(model, this.unpricedTokensTotal.create({ provider: m.provider, model }, 0));
        for (const plan of planList) this.primeModel(this.seriesOf(plan, m.provider, model), types, false, (m.estimatedRequests ?? 0) > 0);
      }
      if (priced) {
        for (const plan of planList) this.primeModel(this.seriesOf(plan, m.provider, m.model), types, true, (m.estimatedRequests ?? 0) > 0);
      }
    }
  }

  private primeModel(g: ModelSeries, types: number[], priced: boolean, estimated: boolean): void {
    for (const i of types) {
      g.tokens[i] ??= this.tokensTotal.create({ ...g.base, type: TOKEN_TYPES[i]! }, 0);
      if (priced) g.cost[i] ??= this.costUsdTotal.create({ ...g.base, type: TOKEN_TYPES[i]! }, new ExactSum());
    }
    if (estimated) g.estimated ??= this.estimatedTokensTotal.create({ ...g.base }, 0);
  }

  /** Replaces the period gauges with a full read of the ledger's rollups for the current period. */
  loadRollups(rollups: PeriodRollup[]): void {
    const current = [];
    for (const r of rollups) {
      if (!this.inCurrentPeriod(r.periodStart)) continue;
      current.push({ userId: r.userId, plan: r.plan, tokens: totalTokens(r.tokens), requests: r.requests, cost: canonicalMoney(r.costUsd) });
    }
    // ledger_up is the caller's to set (ledger-health.ts): a read that succeeds says nothing about commits.
    this.users.loadPeriod(current);
  }

  countIgnored(n: number): void {
    if (n > 0) this.ingestedSpansTotal.inc({ outcome: 'ignored' }, n);
  }

  /** Framework spans not billed because a provider-level instrumentation records the same calls. */
  countSuperseded(n: number): void {
    if (n > 0) this.ingestedSpansTotal.inc({ outcome: 'superseded' }, n);
  }

  private readonly missingUsageSpans = new Counter({
    name: METRIC.missingUsageSpansTotal,
    help: 'GenAI call spans that reported no token counts, billed anyway and flagged estimated: reason="estimated" (tokens estimated from the prompt and completion they carry), reason="no_content" (no prompt or completion on the span) and reason="not_estimated" (content too large, or js-tiktoken not installed): counted as a request with zero tokens.',
    labelNames: [LABEL.source, LABEL.reason],
    registers: [this.registry],
  });

  countMissingUsage(source: string, reason: string): void {
    this.missingUsageSpans.inc({ source, reason });
  }

  private readonly reportedCost = new Counter({
    name: METRIC.reportedCostUsdTotal,
    help: 'The cost spans reported themselves (gen_ai.usage.cost, gen_ai.cost.*), in USD, for comparison with tokenmeter_cost_usd_total. Never billed.',
    labelNames: [LABEL.provider, LABEL.model],
    registers: [this.registry],
  });

  addReportedCost(provider: string, model: string, usd: number): void {
    this.reportedCost.inc({ provider, model }, usd);
  }

  /** A rejected span (or a rejected request, counted once per span when known). */
  countRejected(reason: string, n = 1): void {
    if (n <= 0) return;
    this.ingestedSpansTotal.inc({ outcome: 'rejected' }, n);
    this.rejectedSpansTotal.inc({ reason }, n);
  }

  /** A whole request refused before its spans could be read (malformed, too large, unauthorised...). */
  countRejectedRequest(reason: string): void {
    this.rejectedRequests.inc({ reason });
  }

  private readonly rejectedRequests = new Counter({
    name: METRIC.rejectedRequestsTotal,
    help: 'OTLP requests refused as a whole (malformed, unsupported content type, too large, unauthorised, ledger unavailable).',
    labelNames: [LABEL.reason],
    registers: [this.registry],
  });

  private readonly redatedSpans = new Counter({
    name: METRIC.redatedSpansTotal,
    help: "Spans whose end time was outside [arrival - ingest.late_arrival_window, arrival + ingest.clock_skew]: charged to the period and price of their arrival, by reason (late, future).",
    labelNames: [LABEL.reason],
    registers: [this.registry],
  });

  private readonly priceReloads = new Counter({
    name: METRIC.priceReloadTotal,
    help: 'Price reloads (SIGHUP, pricing.reload_interval) by outcome: success, unchanged, failure (the new prices were refused; the prices in use stay).',
    labelNames: [LABEL.outcome],
    registers: [this.registry],
  });

  countPriceReload(outcome: 'success' | 'unchanged' | 'failure'): void {
    this.priceReloads.inc({ outcome });
  }

  /** Spans charged to their arrival time instead of their (too old or too far ahead) end time. */
  countRedated(reason: 'late' | 'future', n: number): void {
    if (n > 0) this.redatedSpans.inc({ reason }, n);
  }

  observeCommitSeconds(seconds: number): void {
    this.ledgerCommitSeconds.observe(seconds);
  }

  setLedgerUp(up: boolean): void {
    this.ledgerUp.set(up ? 1 : 0);
  }

  /** Re-reads the limits of every tracked user (after a configuration reload). */
  refreshLimits(): void {
    this.users.refreshLimits();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The /metrics body as UTF-8 bytes: prom-client's exposition, with the per-user series written straight from
   * their compact store.
   */
  async renderBody(): Promise<Buffer> {
    // Sized from the last scrape, so a steady body is written without growing the buffer.
    const w = new TextWriter(this.lastBodyBytes + 16 * 1024);
    const userFamilies = this.users.renderFamilies();
    const registered = this.registry.getMetricsAsArray();
    let first = true;
    const next = () => {
      if (!first) w.write('\n\n');
      first = false;
    };
    for (let i = 0; i < registered.length || i === this.ownAt; i++) {
      if (i === this.ownAt) {
        for (const m of this.ownMetrics) {
          next();
          const family = m instanceof UserSeriesMetric ? userFamilies.get(m) : undefined;
          if (family !== undefined) w.writeBytes(family);
          else w.write(renderFamily(await m.get()));
        }
      }
      if (i < registered.length) {
        next();
        w.write(await this.registry.getSingleMetricAsString(registered[i].name));
      }
    }
    w.write('\n');
    const body = w.finish();
    this.lastBodyBytes = body.length;
    return body;
  }

  /** The exporter's own metric families (not prom-client classes), in exposition order. */
  ownFamilies(): readonly OwnMetric[] {
    return this.ownMetrics;
  }

  /** Every metric family of /metrics in exposition order, for the README's reference table. */
  metricFamilies(): { name: string; help: string; type: string; labelNames: readonly string[] | undefined }[] {
    const reg = this.registry.getMetricsAsArray().map((m) => ({ name: m.name, help: m.help, type: String(m.type), labelNames: labelNamesOf(m) }));
    const own = this.ownMetrics.map((m) => ({ name: m.name, help: m.help, type: m.type, labelNames: m.labelNames }));
    return [...reg.slice(0, this.ownAt), ...own, ...reg.slice(this.ownAt)];
  }

  private addOwn(m: OwnMetric): void {
    if (this.ownMetrics.length === 0) this.ownAt = this.registry.getMetricsAsArray().length;
    this.ownMetrics.push(m);
  }

  /** The /metrics body as text. */
  async render(): Promise<string> {
    return (await this.renderBody()).toString('utf8');
  }
}
