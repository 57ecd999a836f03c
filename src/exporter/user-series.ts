import { LABEL, METRIC, OVERFLOW_USER } from '../contract/names.js';
import type { LiveRollup } from '../ledger/types.js';
import type { PlanLimits } from '../plans/types.js';
import { ExactDecimal, ExactSum, addMoney } from '../money/index.js';
import { maxLimitRatio } from './period-plan.js';
import { TextWriter } from './text-writer.js';

/**
 * The per-user series (`tokenmeter_user_*_total` counters, `tokenmeter_period_*` and `tokenmeter_limit_*` gauges),
 * kept as one compact entry per (user, plan) instead of eight prom-client label maps: a few numbers, two exact
 * decimal strings and a pre-escaped label string. Scraping renders straight from the entries (no per-scrape label
 * formatting), so a scrape costs less than prom-client serialising the same series.
 *
 * Counters: at most `maxUsers` (user, plan) pairs get their own series per billing period, first come; past the
 * bound a user's numbers go to `user="__overflow__"` (one entry per plan), so sums over users stay exact.
 *
 * Period and limit gauges: one series per user, under the user's one plan for the period (period-plan.ts), with
 * all of the user's usage (every plan their calls were billed under). Which users get their own gauge series is
 * a function of the ledger's period totals, so every restart and every replica sharing the ledger agrees: every
 * user at or above EXPOSE_RATIO of a limit (the alerts' "near" threshold: those the alerts must see, whatever
 * `max_users` says), then the users closest to a limit up to `maxUsers`, ties by most tokens, then user id. It
 * is recomputed on every full reload (start, periodic refresh); between reloads a user is added when a slot is
 * free or when they reach EXPOSE_RATIO. The others are summed per plan under `user="__overflow__"`.
 */
export interface UserEntry {
  readonly user: string;
  readonly plan: string;
  /** `user="...",plan="..."`, escaped once. */
  readonly labels: string;
  tokensTotal: number;
  /** Exact; added to once per priced call, so kept as a running sum rather than re-parsed strings. */
  readonly costTotal: ExactSum;
  /** The period gauges: set only on the entry carrying a user's (or the overflow's) period totals. */
  periodTokens: number | undefined;
  periodRequests: number | undefined;
  /** Exact decimal string. */
  periodCost: string | undefined;
  /** False for an entry that exists only to carry a user's gauges (its counters go to the overflow entry). */
  countersOwn: boolean;
  limitTokens: number | undefined;
  limitRequests: number | undefined;
  limitCost: string | undefined;
}

export type LimitsLookup = (user: string, plan: string) => PlanLimits;
/** The user's one plan for limits this period, from the plans their calls were billed under (period-plan.ts). */
export type PeriodPlanLookup = (user: string, billedPlans: readonly string[]) => string;

/** Usage at or above this fraction of a limit always has its own gauge series (alerts.ts NEAR_LIMIT_RATIO). */
export const EXPOSE_RATIO = 0.8;

interface PlanTotals {
  tokens: number;
  requests: number;
  cost: string;
}

/** A user's period totals, per plan billed and summed, and where they are exposed. */
interface UserPeriod {
  readonly user: string;
  /** The store's generation it belongs to (UserSeriesStore.gen): a live row's slot holding an older one is stale. */
  readonly gen: number;
  readonly byPlan: Map<string, PlanTotals>;
  plan: string;
  sum: PlanTotals;
  /** The effective limits under `plan` (looked up when the plan may have changed, not on every rollup). */
  limits: PlanLimits | undefined;
  ratio: number;
  /** The entry carrying this user's gauges, when exposed. */
  gauge: UserEntry | undefined;
  /** What this user adds to an overflow entry's gauges, when not exposed. */
  overflow: { entry: UserEntry; sum: PlanTotals } | undefined;
}

let generations = 0;
const nextGeneration = (): number => ++generations;

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
  ['periodTokens', METRIC.periodTokens, "Exact tokens this billing period, from the ledger: all of the user's usage, under their one plan for limits.", 'gauge'],
  ['periodRequests', METRIC.periodRequests, "Exact requests this billing period, from the ledger: all of the user's usage, under their one plan for limits.", 'gauge'],
  ['periodCost', METRIC.periodCostUsd, "Exact cost in USD this billing period, from the ledger: all of the user's usage, under their one plan for limits.", 'gauge'],
  ['limitTokens', METRIC.limitTokens, "The user's effective token limit this period (absent = unlimited).", 'gauge'],
  ['limitRequests', METRIC.limitRequests, "The user's effective request limit this period (absent = unlimited).", 'gauge'],
  ['limitCost', METRIC.limitCostUsd, "The user's effective cost budget in USD this period (absent = unlimited).", 'gauge'],
];

/** A prom-client-compatible metric view over one field of the entries (registered in the Registry). */
export class UserSeriesMetric {
  readonly aggregator = 'sum' as const;
  readonly labelNames: readonly string[] = [LABEL.user, LABEL.plan];
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
    if (!e.countersOwn && this.type === 'counter') return undefined;
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
  /** Every user with usage this period (the ledger's rollups), exposed or not. */
  private periodUsers = new Map<string, UserPeriod>();
  /** Unique across stores; a new one whenever `periodUsers` is replaced (see applyLive). */
  private gen = nextGeneration();
  private exposedCount = 0;

  /** The eight per-user families, in the order of FIELDS. */
  private readonly families: UserSeriesMetric[];
  /** Each family's body size at the last scrape, to size the next one's buffer. */
  private readonly lastFamilyBytes = FIELDS.map(() => 0);

  constructor(
    readonly maxUsers: number,
    private readonly limitsFor: LimitsLookup,
    private readonly periodPlanFor: PeriodPlanLookup = (_user, billed) => [...billed].sort()[0]!,
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
    this.periodUsers = new Map();
    this.gen = nextGeneration();
    this.exposedCount = 0;
  }

  get(user: string, plan: string): UserEntry | undefined {
    return this.byPlan.get(plan)?.get(user);
  }

  /** Is this pair given its own counter series? */
  isTracked(user: string, plan: string): boolean {
    const e = this.get(user, plan);
    return e !== undefined && e.countersOwn && user !== OVERFLOW_USER;
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
    if (existing) {
      if (existing.countersOwn) return existing;
      // An entry made for the user's gauges: its counters are its own only while the bound allows.
      if (this.tracked < this.maxUsers) {
        existing.countersOwn = true;
        this.tracked++;
        return existing;
      }
    } else if (user !== OVERFLOW_USER && this.tracked < this.maxUsers) {
      const entry = this.create(user, plan, true);
      users.set(user, entry);
      this.list.push(entry);
      this.tracked++;
      return entry;
    }
    return this.overflowEntry(plan, users);
  }

  private overflowEntry(plan: string, users = this.plan(plan)): UserEntry {
    let overflow = users.get(OVERFLOW_USER);
    if (!overflow) {
      overflow = this.create(OVERFLOW_USER, plan, true);
      users.set(OVERFLOW_USER, overflow);
      this.list.push(overflow);
    }
    return overflow;
  }

  private plan(plan: string): Map<string, UserEntry> {
    let users = this.byPlan.get(plan);
    if (users === undefined) this.byPlan.set(plan, (users = new Map()));
    return users;
  }

  /** The (user, plan) entry that carries the user's gauges; created without counters of its own if needed. */
  private gaugeEntry(user: string, plan: string): UserEntry {
    const users = this.plan(plan);
    let e = users.get(user);
    if (e === undefined) {
      e = this.create(user, plan, false);
      users.set(user, e);
      this.list.push(e);
    }
    return e;
  }

  private create(user: string, plan: string, countersOwn: boolean): UserEntry {
    return {
      user,
      plan,
      labels: `${LABEL.user}="${escapeLabelValue(user)}",${LABEL.plan}="${escapeLabelValue(plan)}"`,
      tokensTotal: 0,
      costTotal: new ExactSum(),
      periodTokens: undefined,
      periodRequests: undefined,
      periodCost: undefined,
      countersOwn,
      limitTokens: undefined,
      limitRequests: undefined,
      limitCost: undefined,
    };
  }

  /** Re-reads every exposed user's limits (after a configuration change). */
  refreshLimits(): void {
    for (const u of this.periodUsers.values()) {
      this.summarise(u, true);
      if (u.gauge) this.expose(u);
    }
  }

  /**
   * One (user, plan) period rollup from the ledger (after a commit). Rollups only grow within a period: an older
   * read never replaces a newer one.
   */
  applyRollup(user: string, plan: string, tokens: number, requests: number, cost: string): void {
    this.applyTo(this.userPeriod(user), plan, tokens, requests, cost);
  }

  /**
   * `applyRollup` from one of the ledger's live rows (CommitResult.touched). The row keeps this store's entry of
   * its user in its reader slot, so a user touched again is found without a lookup in a map of every user (with
   * 100k users, a cache miss or two per touched user and request); the slot counts only within the same
   * generation of this store (a new period or a full reload starts a new one).
   */
  applyLive(row: LiveRollup): void {
    const slot = row.readerSlot as UserPeriod | undefined;
    let u: UserPeriod;
    if (slot?.gen === this.gen && slot.user === row.userId) u = slot;
    else row.readerSlot = u = this.userPeriod(row.userId);
    this.applyTo(u, row.plan, row.tokenSum(), row.requests, row.costUsd());
  }

  private userPeriod(user: string): UserPeriod {
    let u = this.periodUsers.get(user);
    if (u === undefined) {
      u = { user, gen: this.gen, byPlan: new Map(), plan: '', sum: { tokens: 0, requests: 0, cost: '0' }, limits: undefined, ratio: 0, gauge: undefined, overflow: undefined };
      this.periodUsers.set(user, u);
    }
    return u;
  }

  private applyTo(u: UserPeriod, plan: string, tokens: number, requests: number, cost: string): void {
    const old = u.byPlan.get(plan);
    if (old !== undefined) {
      if (requests < old.requests) return;
      if (u.byPlan.size === 1 && u.gauge !== undefined && u.overflow === undefined && u.plan === plan && u.limits !== undefined) {
        // The usual update: a user of one plan, already exposed under it. Their sum is this plan's totals and their
        // limits stay (a plan change or a limits reload goes through summarise): the gauges change in place.
        old.tokens = tokens;
        old.requests = requests;
        old.cost = cost;
        u.sum = old;
        u.ratio = maxLimitRatio(tokens, requests, cost, u.limits) ?? -1;
        const e = u.gauge;
        e.periodTokens = tokens;
        e.periodRequests = requests;
        e.periodCost = cost;
        return;
      }
    }
    u.byPlan.set(plan, { tokens, requests, cost });
    this.summarise(u);
    if (u.gauge !== undefined || this.exposedCount < this.maxUsers || u.ratio >= EXPOSE_RATIO) this.expose(u);
    else this.fold(u);
  }

  /**
   * Replaces every period gauge with a full read of the ledger's rollups for the current period, exposing users by
   * the rule in the header (a function of the totals alone).
   */
  loadPeriod(rollups: readonly { userId: string; plan: string; tokens: number; requests: number; cost: string }[]): void {
    for (const e of this.list) {
      e.periodTokens = undefined;
      e.periodRequests = undefined;
      e.periodCost = undefined;
      e.limitTokens = undefined;
      e.limitRequests = undefined;
      e.limitCost = undefined;
    }
    this.periodUsers = new Map();
    this.gen = nextGeneration();
    this.exposedCount = 0;
    for (const r of rollups) {
      let u = this.periodUsers.get(r.userId);
      if (u === undefined) {
        u = { user: r.userId, gen: this.gen, byPlan: new Map(), plan: r.plan, sum: { tokens: 0, requests: 0, cost: '0' }, limits: undefined, ratio: 0, gauge: undefined, overflow: undefined };
        this.periodUsers.set(r.userId, u);
      }
      u.byPlan.set(r.plan, { tokens: r.tokens, requests: r.requests, cost: r.cost });
    }
    const all = [...this.periodUsers.values()];
    for (const u of all) this.summarise(u);
    if (all.length > this.maxUsers) all.sort((a, b) => b.ratio - a.ratio || b.sum.tokens - a.sum.tokens || (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
    const fresh = this.tracked === 0;
    for (const u of all) {
      if (this.exposedCount < this.maxUsers || u.ratio >= EXPOSE_RATIO) this.expose(u);
      else this.fold(u);
    }
    // A fresh process (or period) gives the counter slots to the same users, in the same order, so which users keep
    // their own counters does not depend on who happens to send first after a restart.
    if (fresh) for (const u of all) if (u.gauge !== undefined) for (const plan of [...u.byPlan.keys()].sort()) this.resolveEntry(u.user, plan);
  }

  /** The user's period plan, summed totals and highest limit ratio (-1 when unlimited). */
  private summarise(u: UserPeriod, refreshLimits = false): void {
    let tokens = 0;
    let requests = 0;
    let cost = '0';
    for (const t of u.byPlan.values()) {
      tokens += t.tokens;
      requests += t.requests;
      cost = cost === '0' ? t.cost : addMoney(cost, t.cost);
    }
    u.sum = { tokens, requests, cost };
    const plan = u.byPlan.size === 1 ? u.byPlan.keys().next().value! : this.periodPlanFor(u.user, [...u.byPlan.keys()]);
    if (plan !== u.plan || u.limits === undefined || refreshLimits) u.limits = this.limitsFor(u.user, plan);
    u.plan = plan;
    u.ratio = maxLimitRatio(tokens, requests, cost, u.limits) ?? -1;
  }

  /** Puts the user's totals and limits on their own (user, period plan) entry. */
  private expose(u: UserPeriod): void {
    this.unfold(u);
    const e = this.gaugeEntry(u.user, u.plan);
    if (u.gauge !== e) {
      if (u.gauge !== undefined) clearGauges(u.gauge);
      else this.exposedCount++;
      u.gauge = e;
    }
    e.periodTokens = u.sum.tokens;
    e.periodRequests = u.sum.requests;
    e.periodCost = u.sum.cost;
    const l = u.limits ?? this.limitsFor(u.user, u.plan);
    e.limitTokens = l.tokens;
    e.limitRequests = l.requests;
    e.limitCost = l.costUsd?.toFixed();
  }

  /** Adds the user's totals to the overflow entry of their period plan (replacing what they added before). */
  private fold(u: UserPeriod): void {
    this.unfold(u);
    const entry = this.overflowEntry(u.plan);
    entry.periodTokens = (entry.periodTokens ?? 0) + u.sum.tokens;
    entry.periodRequests = (entry.periodRequests ?? 0) + u.sum.requests;
    entry.periodCost = addMoney(entry.periodCost ?? '0', u.sum.cost);
    u.overflow = { entry, sum: u.sum };
  }

  private unfold(u: UserPeriod): void {
    const o = u.overflow;
    if (o === undefined) return;
    o.entry.periodTokens = (o.entry.periodTokens ?? 0) - o.sum.tokens;
    o.entry.periodRequests = (o.entry.periodRequests ?? 0) - o.sum.requests;
    o.entry.periodCost = new ExactDecimal(o.entry.periodCost ?? '0').minus(o.sum.cost).toFixed();
    u.overflow = undefined;
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

function clearGauges(e: UserEntry): void {
  e.periodTokens = undefined;
  e.periodRequests = undefined;
  e.periodCost = undefined;
  e.limitTokens = undefined;
  e.limitRequests = undefined;
  e.limitCost = undefined;
}
