import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Decimal } from 'decimal.js';
import { INGEST_OUTCOMES, LABEL, METRIC, NO_FEATURE, OVERFLOW_USER, TOKEN_TYPES } from '../contract/names.js';
import type { CommitResult, LedgerRecord, PeriodRollup } from '../ledger/types.js';
import type { BillingPeriod } from '../plans/types.js';
import { totalTokens } from '../usage/usage.js';
import { Money, addMoney } from './money.js';
import { UserSeriesMetric, UserSeriesStore, type LimitsLookup } from './user-series.js';

export interface ExporterMetricsOptions {
  /** Bound on (user, plan) pairs with their own per-user series; the rest go to user="__overflow__". */
  maxUsers: number;
  /** Bound on distinct `feature` label values (spans set them freely); the rest go to "__overflow__". */
  maxFeatures?: number;
  /** Bound on distinct model labels of unpriced models (the names come from spans, not the catalog). */
  maxUnpricedModels?: number;
  /** The user's effective limits (plan limits with per-user overrides). */
  limitsFor: LimitsLookup;
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

/**
 * A counter of money kept as exact decimals (so that 0.1 + 0.2 is 0.3 on the scrape too); the float appears only
 * when the sample is rendered. prom-client renders it through the Registry like any other metric.
 */
class DecimalCounter<L extends string> {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly values = new Map<string, { labels: Record<L, string>; value: InstanceType<typeof Money> }>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly L[],
  ) {}

  inc(labels: Record<L, string>, amount: Decimal.Value): void {
    const k = this.labelNames.map((n) => labels[n]).join('\u0000');
    const cur = this.values.get(k);
    if (cur) cur.value = cur.value.plus(amount);
    else this.values.set(k, { labels: { ...labels }, value: new Money(amount) });
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string>; value: number }[] }> {
    const values = [...this.values.values()].map((v) => ({ labels: v.labels as Record<string, string>, value: v.value.toNumber() }));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    this.values.clear();
  }
}

/**
 * Every Prometheus series the exporter emits (DESIGN.md's table plus the operational ones). Updated only from
 * committed ledger results, never read from the ledger during a scrape: the period gauges are the ledger's rollups
 * as last seen (after each commit, at start and on the periodic refresh).
 */
export class ExporterMetrics {
  readonly registry = new Registry();
  private readonly users: UserSeriesStore;
  private readonly features: LabelBound;
  private readonly unpricedModels: LabelBound;
  private period: BillingPeriod | undefined;
  private periodStartMillis = Number.NaN;

  private readonly tokensTotal: Counter<string>;
  private readonly costUsdTotal: DecimalCounter<'plan' | 'provider' | 'model' | 'type'>;
  private readonly requestsTotal: Counter<string>;
  private readonly featureCostUsdTotal: DecimalCounter<'feature' | 'plan'>;
  private readonly estimatedTokensTotal: Counter<string>;
  private readonly unpricedTokensTotal: Counter<string>;
  private readonly periodEnd: Gauge<string>;
  private readonly ingestedSpansTotal: Counter<string>;
  private readonly rejectedSpansTotal: Counter<string>;
  private readonly ledgerCommitSeconds: Histogram<string>;
  private readonly ledgerUp: Gauge<string>;
  private readonly userSeries: Gauge<string>;
  private readonly userOverflowTotal: Counter<string>;

  constructor(options: ExporterMetricsOptions) {
    const r = [this.registry];
    this.users = new UserSeriesStore(options.maxUsers, options.limitsFor);
    this.features = new LabelBound(options.maxFeatures ?? 100);
    this.unpricedModels = new LabelBound(options.maxUnpricedModels ?? 200);

    this.tokensTotal = new Counter({
      name: METRIC.tokensTotal,
      help: 'Tokens by non-overlapping type (input, cache_read, cache_write, output, reasoning).',
      labelNames: [LABEL.plan, LABEL.provider, LABEL.model, LABEL.type],
      registers: r,
    });
    this.costUsdTotal = new DecimalCounter(METRIC.costUsdTotal, 'Cost in USD by token type.', [LABEL.plan, LABEL.provider, LABEL.model, LABEL.type]);
    this.registry.registerMetric(this.costUsdTotal as never);
    this.requestsTotal = new Counter({
      name: METRIC.requestsTotal,
      help: 'LLM calls.',
      labelNames: [LABEL.plan, LABEL.provider, LABEL.model, LABEL.operation, LABEL.outcome],
      registers: r,
    });
    // The per-user series keep DESIGN.md's order in the exposition: the two counters here, the gauges further down.
    const userMetrics = this.users.metrics();
    for (const m of userMetrics.slice(0, 2)) this.registry.registerMetric(m as never);
    this.featureCostUsdTotal = new DecimalCounter(
      METRIC.featureCostUsdTotal,
      'Cost in USD by product feature (tokenmeter.feature; "none" when absent).',
      [LABEL.feature, LABEL.plan],
    );
    this.registry.registerMetric(this.featureCostUsdTotal as never);
    this.estimatedTokensTotal = new Counter({
      name: METRIC.estimatedTokensTotal,
      help: 'Tokens that were estimated with a tokenizer, not reported by the provider.',
      labelNames: [LABEL.plan, LABEL.provider, LABEL.model],
      registers: r,
    });
    this.unpricedTokensTotal = new Counter({
      name: METRIC.unpricedTokensTotal,
      help: 'Tokens of models with no known price (never counted as free).',
      labelNames: [LABEL.provider, LABEL.model],
      registers: r,
    });
    for (const m of userMetrics.slice(2)) this.registry.registerMetric(m as never);
    this.periodEnd = new Gauge({
      name: METRIC.periodEndTimestampSeconds,
      help: 'When the current billing period ends (Unix seconds).',
      labelNames: [LABEL.plan],
      registers: r,
    });
    this.ingestedSpansTotal = new Counter({
      name: METRIC.ingestedSpansTotal,
      help: 'Spans received, by outcome: priced (usage committed, priced or unpriced), ignored (not GenAI), duplicate, rejected.',
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
    this.userOverflowTotal.inc(0);
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
    }
    this.periodEnd.reset();
    for (const plan of planNames) this.periodEnd.set({ plan }, period.end.getTime() / 1000);
    return changed;
  }

  private inCurrentPeriod(periodStart: string): boolean {
    return Date.parse(periodStart) === this.periodStartMillis;
  }

  private applyRollup(r: PeriodRollup): void {
    const { entry, overflowed } = this.users.resolve(r.userId, r.plan);
    if (overflowed) return;
    // Rollups only grow within a period and every record adds a request: an older read never replaces a newer one.
    if (r.requests < entry.periodRequests) return;
    entry.periodTokens = totalTokens(r.tokens);
    entry.periodRequests = r.requests;
    entry.periodCost = new Money(r.costUsd).toFixed();
  }

  /** Counts a successful commit: counters from the newly committed records, gauges from the returned rollups. */
  recordCommit(result: CommitResult): void {
    for (const r of result.rollups) if (this.inCurrentPeriod(r.periodStart)) this.applyRollup(r);
    for (const rec of result.committed) this.countRecord(rec);
    if (result.duplicates.length > 0) this.ingestedSpansTotal.inc({ outcome: 'duplicate' }, result.duplicates.length);
    this.ledgerUp.set(1);
  }

  private countRecord(rec: LedgerRecord): void {
    const model = rec.priced ? rec.model : this.unpricedModels.label(rec.model);
    const base = { plan: rec.plan, provider: rec.provider, model };
    let total = 0;
    for (const t of TOKEN_TYPES) {
      const n = rec.usage[t];
      total += n;
      if (n > 0) this.tokensTotal.inc({ ...base, type: t }, n);
      if (rec.priced && rec.costUsd[t] !== '0') this.costUsdTotal.inc({ ...base, type: t }, rec.costUsd[t]);
    }
    this.requestsTotal.inc({ ...base, operation: rec.operation, outcome: rec.outcome });
    if (rec.priced) this.featureCostUsdTotal.inc({ feature: this.features.label(rec.feature ?? NO_FEATURE), plan: rec.plan }, rec.totalCostUsd);
    if (rec.estimated && total > 0) this.estimatedTokensTotal.inc(base, total);
    if (!rec.priced && total > 0) this.unpricedTokensTotal.inc({ provider: rec.provider, model }, total);
    this.ingestedSpansTotal.inc({ outcome: 'priced' });

    const { entry, overflowed } = this.users.resolve(rec.userId, rec.plan);
    entry.tokensTotal += total;
    if (rec.priced) entry.costTotal = addMoney(entry.costTotal, rec.totalCostUsd);
    if (overflowed) {
      this.userOverflowTotal.inc();
      if (this.inCurrentPeriod(rec.periodStart)) {
        // Overflow users have no entry of their own: their period numbers are added call by call and recomputed
        // exactly from the ledger on every refresh.
        entry.periodTokens += total;
        entry.periodRequests += 1;
        entry.periodCost = addMoney(entry.periodCost, rec.totalCostUsd);
      }
    }
  }

  /** Replaces the period gauges with a full read of the ledger's rollups for the current period. */
  loadRollups(rollups: PeriodRollup[]): void {
    this.users.resetOverflowPeriod();
    for (const r of rollups) {
      if (!this.inCurrentPeriod(r.periodStart)) continue;
      const { entry, overflowed } = this.users.resolve(r.userId, r.plan);
      if (!overflowed) {
        this.applyRollup(r);
        continue;
      }
      entry.periodTokens += totalTokens(r.tokens);
      entry.periodRequests += r.requests;
      entry.periodCost = addMoney(entry.periodCost, r.costUsd);
    }
    this.ledgerUp.set(1);
  }

  countIgnored(n: number): void {
    if (n > 0) this.ingestedSpansTotal.inc({ outcome: 'ignored' }, n);
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

  /** The /metrics body: prom-client's exposition, with the per-user series rendered from their compact store. */
  async render(): Promise<string> {
    const parts: string[] = [];
    // getMetricsAsString is prom-client's per-metric serialiser (public in its JS, absent from its typings).
    const registry = this.registry as unknown as { getMetricsAsString(m: unknown): Promise<string> };
    for (const m of this.registry.getMetricsAsArray() as unknown[]) {
      if (m instanceof UserSeriesMetric) parts.push(m.renderText());
      else parts.push(await registry.getMetricsAsString(m));
    }
    return `${parts.join('\n\n')}\n`;
  }
}
