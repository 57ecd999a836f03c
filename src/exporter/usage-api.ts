import { Decimal } from 'decimal.js';
import { TOKEN_TYPES, type TokenType } from '../contract/names.js';
import type { PeriodRollup } from '../ledger/types.js';
import type { BillingPeriod, PlanLimits } from '../plans/types.js';
import { ExactDecimal, sumMoney } from '../money/index.js';
import { periodPlanOf } from './period-plan.js';
import type { ModelUsage, PlanPort } from './ports.js';
import type { Hold } from './reservations.js';

export type TokenCounts = Record<TokenType | 'total', number>;

export interface LimitsJson {
  tokens: number | null;
  requests: number | null;
  cost_usd: string | null;
}
export interface RatiosJson {
  tokens: number | null;
  requests: number | null;
  cost_usd: number | null;
}

/** Display conversion (configured currency other than USD): the exact converted amount and its display form. */
export type DisplayMoney = (usd: string) => { currency: string; amount: string; cost: string } | undefined;

export function periodJson(p: BillingPeriod): { start: string; end: string } {
  return { start: p.start.toISOString(), end: p.end.toISOString() };
}

function tokenCounts(t: Partial<Record<TokenType, number>>): TokenCounts {
  const out = { total: 0 } as TokenCounts;
  for (const k of TOKEN_TYPES) {
    out[k] = t[k] ?? 0;
    out.total += out[k];
  }
  return out;
}

function limitsJson(l: PlanLimits): LimitsJson {
  return { tokens: l.tokens ?? null, requests: l.requests ?? null, cost_usd: l.costUsd ? new ExactDecimal(l.costUsd.toString()).toFixed() : null };
}

function ratio(used: Decimal.Value, limit: Decimal.Value | undefined): number | null {
  if (limit === undefined) return null;
  const l = new ExactDecimal(limit);
  if (l.isZero()) return new ExactDecimal(used).isZero() ? 0 : Number.POSITIVE_INFINITY;
  return new ExactDecimal(used).div(l).toNumber();
}

export function usageFigures(tokens: TokenCounts, requests: number, costUsd: string, limits: PlanLimits) {
  const l = limitsJson(limits);
  const remaining = {
    tokens: l.tokens === null ? null : Math.max(0, l.tokens - tokens.total),
    requests: l.requests === null ? null : Math.max(0, l.requests - requests),
    cost_usd: l.cost_usd === null ? null : Decimal.max(0, new ExactDecimal(l.cost_usd).minus(costUsd)).toFixed(),
  };
  const ratios: RatiosJson = {
    tokens: ratio(tokens.total, l.tokens ?? undefined),
    requests: ratio(requests, l.requests ?? undefined),
    cost_usd: ratio(costUsd, l.cost_usd ?? undefined),
  };
  const finite = [ratios.tokens, ratios.requests, ratios.cost_usd].filter((r): r is number => r !== null);
  const maxRatio = finite.length ? Math.max(...finite) : null;
  return { limits: l, remaining, ratios, maxRatio };
}

/**
 * `cost_usd` of a figure: the exact cost of its priced requests, or null when none of its requests has a price
 * (their cost is unknown, never "0"). `unpriced_requests` next to it says how many were left out.
 */
export function costOrNull(costUsd: string, requests: number, unpricedRequests: number): string | null {
  return requests > 0 && unpricedRequests >= requests ? null : costUsd;
}

/** JSON cannot carry Infinity: a ratio against a zero limit with usage is reported as a very large number. */
function jsonRatio(r: number | null): number | null {
  return r === null ? null : Number.isFinite(r) ? r : Number.MAX_VALUE;
}
function jsonRatios(r: RatiosJson): RatiosJson {
  return { tokens: jsonRatio(r.tokens), requests: jsonRatio(r.requests), cost_usd: jsonRatio(r.cost_usd) };
}

interface Totals {
  tokens: Record<TokenType, number>;
  requests: number;
  unpriced: number;
  estimated: number;
  costs: string[];
}
function addRow(
  acc: Totals,
  row: { tokens: Record<TokenType, number>; requests: number; unpricedRequests?: number; estimatedRequests?: number; costUsd: string },
): void {
  for (const t of TOKEN_TYPES) acc.tokens[t] += row.tokens[t] ?? 0;
  acc.requests += row.requests;
  acc.unpriced += row.unpricedRequests ?? 0;
  acc.estimated += row.estimatedRequests ?? 0;
  acc.costs.push(row.costUsd);
}
function emptyTotals(): Totals {
  return { tokens: { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 }, requests: 0, unpriced: 0, estimated: 0, costs: [] };
}

/** The money fields of a figure: `cost_usd` (null when wholly unpriced) and `unpriced_requests`. */
function costFields(acc: Totals): { cost_usd: string | null; unpriced_requests: number } {
  return { cost_usd: costOrNull(sumMoney(acc.costs), acc.requests, acc.unpriced), unpriced_requests: acc.unpriced };
}

/** Most expensive first (unpriced as 0); on equal cost, most tokens first. */
function byCost<T extends { cost_usd: string | null; tokens: TokenCounts }>(a: T, b: T): number {
  return new ExactDecimal(b.cost_usd ?? '0').cmp(a.cost_usd ?? '0') || b.tokens.total - a.tokens.total;
}

/** The rows summed per provider and model (a user's rows also differ by plan), most expensive first. */
function modelBreakdown(rows: readonly ModelUsage[]) {
  const models = new Map<string, { provider: string; model: string; acc: Totals }>();
  for (const r of rows) {
    const k = `${r.provider}\u0000${r.model}`;
    let m = models.get(k);
    if (!m) models.set(k, (m = { provider: r.provider, model: r.model, acc: emptyTotals() }));
    addRow(m.acc, r);
  }
  return [...models.values()]
    .map((m) => ({
      provider: m.provider,
      model: m.model,
      tokens: tokenCounts(m.acc.tokens),
      requests: m.acc.requests,
      // Requests whose tokens were estimated (no provider count on their span), part of `requests` and `tokens`.
      estimated_requests: m.acc.estimated,
      ...costFields(m.acc),
    }))
    .sort((a, b) => byCost(a, b) || a.model.localeCompare(b.model));
}

/** `GET /api/v1/usage/{user}`. A user with no usage this period gets zeros and their plan's limits (not a 404). */
export function userUsageJson(userId: string, period: BillingPeriod, rows: ModelUsage[], plans: PlanPort, display: DisplayMoney, reserved?: Hold) {
  // One plan per user and period for limits (period-plan.ts): the gauges and `?min_ratio=` use the same.
  const plan = periodPlanOf(userId, rows.map((r) => r.plan), plans);

  const total = emptyTotals();
  for (const r of rows) addRow(total, r);
  const tokens = tokenCounts(total.tokens);
  const cost = sumMoney(total.costs);
  const f = usageFigures(tokens, total.requests, cost, plans.limitsFor(userId, plan));
  const money = costFields(total);
  const shown = money.cost_usd === null ? undefined : display(cost);
  return {
    user: userId,
    plan,
    period: periodJson(period),
    tokens,
    requests: total.requests,
    estimated_requests: total.estimated,
    ...money,
    ...(shown ? { display: shown } : {}),
    limits: f.limits,
    remaining: f.remaining,
    ...(reserved !== undefined ? reservedFields(f.remaining, reserved) : {}),
    ratios: jsonRatios(f.ratios),
    by_model: modelBreakdown(rows),
  };
}

/**
 * Admission control: what calls in flight hold (reservations) and what is left after them (`available`); the
 * figures above stay the committed usage only.
 */
function reservedFields(remaining: { tokens: number | null; requests: number | null; cost_usd: string | null }, r: Hold) {
  return {
    reserved: { tokens: r.tokens, requests: r.requests, cost_usd: new ExactDecimal(r.costUsd).toFixed() },
    available: {
      tokens: remaining.tokens === null ? null : Math.max(0, remaining.tokens - r.tokens),
      requests: remaining.requests === null ? null : Math.max(0, remaining.requests - r.requests),
      cost_usd: remaining.cost_usd === null ? null : Decimal.max(0, new ExactDecimal(remaining.cost_usd).minus(r.costUsd)).toFixed(),
    },
  };
}

export interface UsageListQuery {
  plan?: string;
  minRatio?: number;
  limit: number;
  /** Admission control: refused calls per user this period (adds `refused_calls` to each user). */
  refused?: ReadonlyMap<string, number>;
}

/** `GET /api/v1/usage?plan=P&min_ratio=R`: users sorted by how close they are to a limit (unlimited last). */
export function usageListJson(period: BillingPeriod, rollups: PeriodRollup[], plans: PlanPort, q: UsageListQuery) {
  // A user's rows (one per plan their calls were billed under) summed, against the user's one plan for the period.
  const byUser = new Map<string, { plans: string[]; acc: Totals }>();
  for (const r of rollups) {
    if (Date.parse(r.periodStart) !== period.start.getTime()) continue;
    let u = byUser.get(r.userId);
    if (!u) byUser.set(r.userId, (u = { plans: [], acc: emptyTotals() }));
    u.plans.push(r.plan);
    addRow(u.acc, r);
  }
  const users = [];
  // Every plan a user has this period, whatever the filters: a client can offer them all (the list is capped).
  const planNames = new Set<string>();
  for (const [userId, u] of byUser) {
    const plan = periodPlanOf(userId, u.plans, plans);
    planNames.add(plan);
    if (q.plan !== undefined && plan !== q.plan) continue;
    const tokens = tokenCounts(u.acc.tokens);
    const cost = sumMoney(u.acc.costs);
    const f = usageFigures(tokens, u.acc.requests, cost, plans.limitsFor(userId, plan));
    if (q.minRatio !== undefined && (f.maxRatio === null || f.maxRatio < q.minRatio)) continue;
    users.push({
      user: userId,
      plan,
      tokens,
      requests: u.acc.requests,
      ...costFields(u.acc),
      limits: f.limits,
      ratios: f.ratios,
      max_ratio: f.maxRatio,
      ...(q.refused !== undefined ? { refused_calls: q.refused.get(userId) ?? 0 } : {}),
    });
  }
  users.sort((a, b) => (b.max_ratio ?? -1) - (a.max_ratio ?? -1) || a.user.localeCompare(b.user) || a.plan.localeCompare(b.plan));
  const total = users.length;
  return {
    period: periodJson(period),
    total,
    plans: [...planNames].sort(),
    users: users.slice(0, q.limit).map((u) => ({ ...u, ratios: jsonRatios(u.ratios), max_ratio: jsonRatio(u.max_ratio) })),
  };
}

/** `GET /api/v1/summary`: the status page's figures for the current period. */
export function summaryJson(period: BillingPeriod, rows: ModelUsage[], display: DisplayMoney) {
  const total = emptyTotals();
  const providers = new Map<string, Totals>();
  for (const r of rows) {
    addRow(total, r);
    let p = providers.get(r.provider);
    if (!p) providers.set(r.provider, (p = emptyTotals()));
    addRow(p, r);
  }
  const money = costFields(total);
  const shown = money.cost_usd === null ? undefined : display(money.cost_usd);
  return {
    period: periodJson(period),
    totals: { tokens: tokenCounts(total.tokens), requests: total.requests, ...money, ...(shown ? { display: shown } : {}) },
    by_provider: [...providers]
      .map(([provider, acc]) => ({ provider, tokens: tokenCounts(acc.tokens), requests: acc.requests, ...costFields(acc) }))
      .sort((a, b) => byCost(a, b) || a.provider.localeCompare(b.provider)),
    by_model: modelBreakdown(rows),
  };
}
