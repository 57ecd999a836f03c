/**
 * The journal ledger's queries: the usage API's and the gauges' reads of the state in memory, sorted as SqlLedger
 * returns them.
 */
import type { LoadRollupsOptions, ModelUsage, PeriodSummary, ProviderSpend, UserPeriodUsage } from './ledger-interface.js';
import { compareStrings, modelUsageOf, planRows, rollupOf, totalsOf, type PeriodState, type UserRow } from './journal-state.js';
import type { PeriodRollup } from './types.js';

export function periodRollups(p: PeriodState | undefined, ps: string, options: LoadRollupsOptions): PeriodRollup[] {
  if (!p) return [];
  const rows: UserRow[] = [];
  for (const head of p.users.values()) for (let u: UserRow | undefined = head; u !== undefined; u = u.next) rows.push(u);
  rows.sort((a, b) => compareStrings(a.userId, b.userId) || compareStrings(a.plan, b.plan));
  if (!options.unpriced) return rows.map((u) => rollupOf(ps, u));
  return rows.map((u) => {
    let unpricedRequests = 0;
    for (let m = u.models; m !== undefined; m = m.next) unpricedRequests += m.unpriced;
    return unpricedRequests > 0 ? { ...rollupOf(ps, u), unpricedRequests } : rollupOf(ps, u);
  });
}

export function userModelUsage(p: PeriodState | undefined, userId: string): ModelUsage[] {
  const head = p?.users.get(userId);
  if (!head) return [];
  const out: ModelUsage[] = [];
  for (const u of planRows(head).sort((a, b) => compareStrings(a.plan, b.plan))) {
    const rows = u.modelRows().sort((a, b) => compareStrings(a.provider, b.provider) || compareStrings(a.model, b.model));
    for (const m of rows) out.push({ ...modelUsageOf(m), userId, plan: u.plan });
  }
  return out;
}

export function userPeriodUsage(p: PeriodState | undefined, userId: string, ps: string): UserPeriodUsage {
  const rows = planRows(p?.users.get(userId)).sort((a, b) => compareStrings(a.plan, b.plan));
  const plans = rows.map((u) => rollupOf(ps, u));
  const cacheWrite1hTokens = rows.reduce((s, u) => s + u.t5, 0);
  const byModel = userModelUsage(p, userId);
  return { userId, periodStart: ps, ...totalsOf(plans), cacheWrite1hTokens, plans, byModel };
}

export function periodModelUsage(p: PeriodState | undefined): ModelUsage[] {
  if (!p) return [];
  return [...p.models.values()].sort((a, b) => compareStrings(a.provider, b.provider) || compareStrings(a.model, b.model)).map(modelUsageOf);
}

export function providerPeriodSpend(p: PeriodState | undefined): ProviderSpend[] {
  if (!p) return [];
  return [...p.providers.values()]
    .sort((a, b) => compareStrings(a.provider, b.provider))
    .map((s) => ({ provider: s.provider, grossUsd: s.gross.toFixed(), discountUsd: s.discount.toFixed(), netUsd: s.net.toFixed(), requests: s.requests }));
}

export function periodSummary(p: PeriodState | undefined, ps: string): PeriodSummary {
  const byModel = periodModelUsage(p);
  const byProvider = providerPeriodSpend(p);
  return { periodStart: ps, ...totalsOf(byModel), byModel, byProvider };
}

