import { describe, expect, it } from 'vitest';
import { NEAR_LIMIT_RATIO } from '../../src/dashboards/alerts.js';
import { maxLimitRatio, periodPlanOf } from '../../src/exporter/period-plan.js';
import { EXPOSE_RATIO } from '../../src/exporter/user-series.js';
import { PlanResolver } from '../../src/plans/index.js';

const resolver = new PlanResolver(
  {
    free: { default: true, limits: { tokens: 50_000, requests: 10 } },
    pro: { limits: { tokens: 500_000, requests: 100, cost_usd: '20' } },
    team: { limits: { tokens: 2_000_000, requests: 500 } },
    unlimited: {},
    budget: { limits: { tokens: 50_000, requests: 10, cost_usd: '5' } },
  },
  { carol: { plan: 'team' } },
);
const plans = { planFor: (u: string, p?: string) => resolver.planFor(u, p), limitsFor: (u: string, p: string) => resolver.limitsFor(u, p) };

describe('periodPlanOf: one plan per user and period for limits', () => {
  it('the most restrictive of the plans billed: lowest tokens, then requests, then cost, then name', () => {
    expect(periodPlanOf('u', ['team', 'pro', 'free'], plans)).toBe('free');
    expect(periodPlanOf('u', ['team', 'pro'], plans)).toBe('pro');
    expect(periodPlanOf('u', ['unlimited', 'team'], plans)).toBe('team');
    // free and budget tie on tokens and requests; budget has a cost limit, free none.
    expect(periodPlanOf('u', ['free', 'budget'], plans)).toBe('budget');
    expect(periodPlanOf('u', ['budget', 'free'], plans)).toBe('budget');
  });
  it('the configured plan wins over anything billed; nothing billed → the configured or default plan', () => {
    expect(periodPlanOf('carol', ['free', 'pro'], plans)).toBe('team');
    expect(periodPlanOf('carol', [], plans)).toBe('team');
    expect(periodPlanOf('u', [], plans)).toBe('free');
    expect(periodPlanOf('u', [undefined, 'pro'], plans)).toBe('pro');
  });
  it('an unknown plan name counts as the default plan', () => {
    expect(periodPlanOf('u', ['pro', 'enterprise'], plans)).toBe('free');
  });
  it('maxLimitRatio: the highest ratio; zero limits; unlimited', () => {
    expect(maxLimitRatio(27_000, 27, '0.1', resolver.limitsFor('u', 'free'))).toBe(2.7);
    expect(maxLimitRatio(1, 0, '0', { tokens: 0 })).toBe(Infinity);
    expect(maxLimitRatio(5, 5, '1', {})).toBeUndefined();
  });
  it('the gauges expose users from the alerts\' near-limit threshold', () => {
    expect(EXPOSE_RATIO).toBe(NEAR_LIMIT_RATIO);
  });
});
