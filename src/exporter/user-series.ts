import { LABEL, METRIC, OVERFLOW_USER } from '../contract/names.js';
import type { PlanLimits } from '../plans/types.js';
import { ExactSum } from './money.js';
import { TextWriter } from './text-writer.js';

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

/** The per-user families, in exposition order: field, metric name, help, type. */
const FIELDS: ReadonlyArray<readonly [Field, string, string, 'counter' | 'gauge']> = [
  ['tokensTotal', METRIC.userTokensTotal, 'Tokens per user since the exporter started (bounded by max_users; the rest under user="__overflow__").', 'counter'],
  ['costTotal', METRIC.userCostUsdTotal, 'Cost in USD per user since the exporter started (bounded by max_users; the rest under user="__overflow__").', 'counter'],
  ['periodTokens', METRIC.periodTokens, 'Exact tokens this billing period, from the ledger.', 'gauge'],
  ['periodRequests', METRIC.periodRequests, 'Exact requests this billing period, from the ledger.', 'gauge'],
  ['periodCost', METRIC.periodCostUsd, 'Exact cost in USD this billing period, from the ledger.', 'gauge'],
  ['limitTokens', METRIC.limitTokens, "The user's effective token limit this period (absent = unlimited).", 'gauge'],
  ['limitRequests', METRIC.limitRequests, "The user's effective request limit this period (absent = unlimited).", 'gauge'],
  ['limitCost', METRIC.limitCostUsd, "The user's effective cost budget in USD this period (absent = unlimited).", 'gauge'],
];

/** A prom-client-compatible metric view over one field of the entries (registered in the Registry). */
export class UserSeriesMetric {
  readonly aggregator = 'sum' as const;
  private readonly linePrefix: string;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
    private readonly store: UserSeriesStore,
    private readonly field: Field,
  ) {
    this.linePrefix = `\n${name}{`;
  }

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

  /** This entry's sample line, preceded by a newline; undefined when the entry has no value here. */
  line(e: UserEntry): string | undefined {
    const v = this.value(e);
    return v === undefined ? undefined : `${this.linePrefix}${e.labels}} ${numberText(v)}`;
  }

  /** `# HELP` and `# TYPE`, as prom-client writes them. */
  header(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${this.type}`;
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

  /** The eight per-user families, in the order of FIELDS. */
  private readonly families: UserSeriesMetric[];
  /** Each family's body size at the last scrape, to size the next one's buffer. */
  private readonly lastFamilyBytes = FIELDS.map(() => 0);

  constructor(
    readonly maxUsers: number,
    private readonly limitsFor: LimitsLookup,
  ) {
    this.families = FIELDS.map(([field, name, help, type]) => new UserSeriesMetric(name, help, type, this, field));
  }

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

  /** The per-user families, to register in the Registry (the same objects every time). */
  metrics(): UserSeriesMetric[] {
    return [...this.families];
  }

  /**
   * The text exposition of every per-user family, byte for byte what prom-client's Registry would write for the
   * same values, in `metrics()` order. One pass over the entries writes all eight families (each into its own
   * buffer, a chunk of lines per write): with 100k users the entries span ~100 MiB of heap, and a pass per family
   * read them from memory eight times.
   */
  renderFamilies(): Map<UserSeriesMetric, Buffer> {
    const f = this.families;
    const writers = f.map((m, i) => {
      const t = new TextWriter(this.lastFamilyBytes[i]! + 1024);
      t.write(m.header());
      return t;
    });
    const chunks = f.map(() => '');
    const flush = (): void => {
      for (let i = 0; i < f.length; i++) {
        writers[i]!.write(chunks[i]!);
        chunks[i] = '';
      }
    };
    let lines = 0;
    for (const e of this.list) {
      for (let i = 0; i < f.length; i++) {
        const line = f[i]!.line(e);
        if (line !== undefined) chunks[i] += line;
      }
      if (++lines === LINES_PER_WRITE) {
        flush();
        lines = 0;
      }
    }
    flush();
    const out = new Map<UserSeriesMetric, Buffer>();
    f.forEach((m, i) => {
      const body = writers[i]!.finish();
      this.lastFamilyBytes[i] = body.length;
      out.set(m, body);
    });
    return out;
  }
}
