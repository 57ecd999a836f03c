import type { PlanLimits } from '../plans/types.js';
import type { PlanPort } from './ports.js';

/**
 * DESIGN.md: "For limits a user has one plan per period: all of the user's usage counts against it, whatever plan
 * individual spans claim." Each call is still recorded (and counted in the per-plan counters) under the plan it was
 * billed under; this module decides the one plan the user's period totals are compared against. The period
 * gauges, the usage API (`/api/v1/usage/{user}` and `?min_ratio=`) and so the alerts all use it.
 *
 * The rule: the plan configuration names for the user; otherwise, of the plans the user's calls were billed under
 * this period (the span's plan when configured, else the default plan), the most restrictive one: the lowest token
 * limit, then the lowest request limit, then the lowest cost budget (absent = unlimited), then the name. A client
 * that claims several plans can only make its limits stricter, never hide usage from them; an upgrade within a
 * period takes effect for limits when the configuration names the user's plan (or at the next period).
 */
export function periodPlanOf(userId: string, billedPlans: Iterable<string | undefined>, plans: Pick<PlanPort, 'planFor' | 'limitsFor'>): string {
  let best: string | undefined;
  let bestLimits: PlanLimits | undefined;
  for (const claimed of billedPlans) {
    if (claimed === undefined) continue;
    // The configured plan wins over any claim (planFor returns it whatever the span said).
    const plan = plans.planFor(userId, claimed);
    if (plan === best) continue;
    const limits = plans.limitsFor(userId, plan);
    if (best === undefined || bestLimits === undefined || compareRestrictive(limits, plan, bestLimits, best) < 0) {
      best = plan;
      bestLimits = limits;
    }
  }
  return best ?? plans.planFor(userId, undefined);
}

/** Negative when (a, aName) is more restrictive than (b, bName). */
function compareRestrictive(a: PlanLimits, aName: string, b: PlanLimits, bName: string): number {
  const t = (a.tokens ?? Infinity) - (b.tokens ?? Infinity);
  if (t !== 0 && !Number.isNaN(t)) return t;
  const r = (a.requests ?? Infinity) - (b.requests ?? Infinity);
  if (r !== 0 && !Number.isNaN(r)) return r;
  if (a.costUsd !== undefined || b.costUsd !== undefined) {
    if (a.costUsd === undefined) return 1;
    if (b.costUsd === undefined) return -1;
    const c = a.costUsd.cmp(b.costUsd);
    if (c !== 0) return c;
  }
  return aName < bName ? -1 : aName > bName ? 1 : 0;
}

/** The highest of a user's usage/limit ratios (Infinity over a zero limit), or undefined when unlimited. */
export function maxLimitRatio(tokens: number, requests: number, costUsd: string, limits: PlanLimits): number | undefined {
  let max: number | undefined;
  const take = (used: number, limit: number | undefined) => {
    if (limit === undefined) return;
    const r = limit === 0 ? (used === 0 ? 0 : Infinity) : used / limit;
    if (max === undefined || r > max) max = r;
  };
  take(tokens, limits.tokens);
  take(requests, limits.requests);
  if (limits.costUsd !== undefined) take(Number(costUsd), limits.costUsd.toNumber());
  return max;
}
