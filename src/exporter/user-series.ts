import { LABEL, METRIC, OVERFLOW_USER } from '../contract/names.js';
import type { PlanLimits } from '../plans/types.js';
import { ExactSum } from './money.js';
import type { TextWriter } from './text-writer.js';

/**
 * The per-user series (`tokenmeter_user_*_total` counters, `tokenmeter_period_*` and `tokenmeter_limit_*` gauges),
 * kept as one compact entry per (user, plan) instead of eight prom-client label maps: a few numbers, two exact
 * decimal strings and a pre-escaped label string. Scraping renders straight from the entries (no per-scrape label
 * formatting), so a scrape costs less than prom-client serialising the same series.
 *
 * At most `maxUsers` (user, plan) pairs get their own series per billing period; past the bound a user's numbers
 * go to `user="__overflow__"` (one entry per plan), so sums over users stay exact.
 */
export interface UserEntry {
  readonly user: string;
  readonly plan: string;
  /** `user="...",plan="..."`, escaped once. */
  readonly labels: string;
  tokensTotal: number;
  /** Exact; added to once per priced call, so kept as a running sum rather than re-parsed strings. */
  readonly costTotal: ExactSum;
  periodTokens: number;
  periodRequests: number;
  /** Exact decimal string. */
  periodCost: string;
  limitTokens: number | undefined;
  limitRequests: number | undefined;
  limitCost: string | undefined;
}

export type LimitsLookup = (user: string, plan: string) => PlanLimits;

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function numberText(v: number): string {
  if (Number.isNaN(v)) return 'Nan';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  return `${v}`;
}

/** Lines joined into one string before each buffer write: short-lived, so they die in the young generation. */
const LINES_PER_WRITE = 64;

type Field = 'tokensTotal' | 'costTotal' | 'periodTokens' | 'periodRequests' | 'periodCost' | 'limitTokens' | 'limitRequests' | 'limitCost';

/** A prom-client-compatible metric view over one field of the entries (registered in the Registry). */
export class UserSeriesMetric {
  readonly aggregator = 'sum' as const;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
    private readonly store: UserSeriesStore,
    private readonly field: Field,
  ) {}

  private value(e: UserEntry): number | undefined {
    const v = e[this.field];
    if (v === undefined) return undefined;
    return typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : v.toNumber();
  }

  /** prom-client's interface (used by getMetricsAsJSON and as a fallback). */
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string>; value: number }[] }> {
    const values: { labels: Record<string, string>; value: number }[] = [];
    for (const e of this.store.entries()) {
      const v = this.value(e);
      if (v !== undefined) values.push({ labels: { [LABEL.user]: e.user, [LABEL.plan]: e.plan }, value: v });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    // The store owns the values; a registry-wide reset clears the per-user state once.
    this.store.clear();
  }

  /**
   * Writes the text exposition, byte for byte what prom-client's Registry would produce for the same values, in
   * chunks of lines (one buffer write per chunk rather than per line).
   */
  writeText(w: TextWriter): void {
    w.write(`# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${this.type}`);
    const prefix = `\n${this.name}{`;
    let chunk = '';
    let lines = 0;
    for (const e of this.store.entries()) {
      const v = this.value(e);
      if (v === undefined) continue;
      chunk += `${prefix}${e.labels}} ${numberText(v)}`;
      if (++lines === LINES_PER_WRITE) {
        w.write(chunk);
        chunk = '';
        lines = 0;
      }
    }
    if (lines > 0) w.write(chunk);
  }
}

export class UserSeriesStore {
  /** Every entry, in creation order (the exposition's order). */
  private list: UserEntry[] = [];
  /**
   * plan → user → entry. Keyed by the strings themselves rather than a joined "user\0plan" key: the per-record
   * lookup then hashes no new string (span strings arrive with their hash computed).
   */
  private readonly byPlan = new Map<string, Map<string, UserEntry>>();
  private tracked = 0;

  constructor(
    readonly maxUsers: number,
    private readonly limitsFor: LimitsLookup,
  ) {}

  entries(): IterableIterator<UserEntry> {
    return this.list.values();
  }

  /** Number of (user, plan) pairs with their own series (overflow entries excluded). */
  get trackedCount(): number {
    return this.tracked;
  }

  clear(): void {
    this.list = [];
    this.byPlan.clear();
    this.tracked = 0;
  }

  get(user: string, plan: string): UserEntry | undefined {
    return this.byPlan.get(plan)?.get(user);
  }

  /** Is this pair (or would it be, if seen now) given its own series? */
  isTracked(user: string, plan: string): boolean {
    return this.get(user, plan) !== undefined && user !== OVERFLOW_USER;
  }

  /**
   * The entry that receives this user's numbers: their own (created while under the bound) or the plan's
   * overflow entry. `overflowed` tells the caller which.
   */
  resolve(user: string, plan: string): { entry: UserEntry; overflowed: boolean } {
    const entry = this.resolveEntry(user, plan);
    return { entry, overflowed: entry.user === OVERFLOW_USER };
  }

  /** `resolve` without the wrapper object (the per-record path): overflowed ⇔ `entry.user === OVERFLOW_USER`. */
  resolveEntry(user: string, plan: string): UserEntry {
    let users = this.byPlan.get(plan);
    if (users === undefined) this.byPlan.set(plan, (users = new Map()));
    const existing = user === OVERFLOW_USER ? undefined : users.get(user);
    if (existing) return existing;
    if (user !== OVERFLOW_USER && this.tracked < this.maxUsers) {
      const entry = this.create(user, plan, true);
      users.set(user, entry);
      this.list.push(entry);
      this.tracked++;
      return entry;
    }
    let overflow = users.get(OVERFLOW_USER);
    if (!overflow) {
      overflow = this.create(OVERFLOW_USER, plan, false);
      users.set(OVERFLOW_USER, overflow);
      this.list.push(overflow);
    }
    return overflow;
  }

  private create(user: string, plan: string, withLimits: boolean): UserEntry {
    const limits: PlanLimits = withLimits ? this.limitsFor(user, plan) : {};
    return {
      user,
      plan,
      labels: `${LABEL.user}="${escapeLabelValue(user)}",${LABEL.plan}="${escapeLabelValue(plan)}"`,
      tokensTotal: 0,
      costTotal: new ExactSum(),
      periodTokens: 0,
      periodRequests: 0,
      periodCost: '0',
      limitTokens: limits.tokens,
      limitRequests: limits.requests,
      limitCost: limits.costUsd?.toFixed(),
    };
  }

  /** Re-reads every tracked entry's limits (after a configuration change). */
  refreshLimits(): void {
    for (const e of this.list) {
      if (e.user === OVERFLOW_USER) continue;
      const l = this.limitsFor(e.user, e.plan);
      e.limitTokens = l.tokens;
      e.limitRequests = l.requests;
      e.limitCost = l.costUsd?.toFixed();
    }
  }

  /** Zeroes the period gauges of every overflow entry (before they are recomputed from a full reload). */
  resetOverflowPeriod(): void {
    for (const e of this.list) {
      if (e.user !== OVERFLOW_USER) continue;
      e.periodTokens = 0;
      e.periodRequests = 0;
      e.periodCost = '0';
    }
  }

  metrics(): UserSeriesMetric[] {
    return [
      new UserSeriesMetric(METRIC.userTokensTotal, 'Tokens per user since the exporter started (bounded by max_users; the rest under user="__overflow__").', 'counter', this, 'tokensTotal'),
      new UserSeriesMetric(METRIC.userCostUsdTotal, 'Cost in USD per user since the exporter started (bounded by max_users; the rest under user="__overflow__").', 'counter', this, 'costTotal'),
      new UserSeriesMetric(METRIC.periodTokens, 'Exact tokens this billing period, from the ledger.', 'gauge', this, 'periodTokens'),
      new UserSeriesMetric(METRIC.periodRequests, 'Exact requests this billing period, from the ledger.', 'gauge', this, 'periodRequests'),
      new UserSeriesMetric(METRIC.periodCostUsd, 'Exact cost in USD this billing period, from the ledger.', 'gauge', this, 'periodCost'),
      new UserSeriesMetric(METRIC.limitTokens, "The user's effective token limit this period (absent = unlimited).", 'gauge', this, 'limitTokens'),
      new UserSeriesMetric(METRIC.limitRequests, "The user's effective request limit this period (absent = unlimited).", 'gauge', this, 'limitRequests'),
      new UserSeriesMetric(METRIC.limitCostUsd, "The user's effective cost budget in USD this period (absent = unlimited).", 'gauge', this, 'limitCost'),
    ];
  }
}
