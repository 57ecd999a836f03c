import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import {
  DEFAULT_PLANS,
  PlanConfigError,
  PlanResolver,
  periodConfigSchema,
  planReferenceIssues,
  plansConfigSchema,
  usersConfigSchema,
} from '../../src/plans/index.js';

function issuePaths(schema: z.ZodType, input: unknown): string[] {
  const r = schema.safeParse(input);
  expect(r.success).toBe(false);
  return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
}

describe('PlanResolver', () => {
  const plans = plansConfigSchema.parse({
    free: { default: true, limits: { tokens: 1000, requests: 5 } },
    pro: { limits: { tokens: 100000, requests: 100, cost_usd: '25.50' } },
    enterprise: {},
  });
  const users = usersConfigSchema.parse({
    alice: { plan: 'enterprise' },
    bob: { limits: { tokens: 42 } },
    carol: { plan: 'pro', limits: { cost_usd: null, requests: 7 } },
  });
  const r = new PlanResolver(plans, users);

  it.each([
    // user, planFromSpan, plan, source, unknownSpanPlan
    ['alice', 'pro', 'enterprise', 'config', undefined],
    ['alice', undefined, 'enterprise', 'config', undefined],
    ['bob', 'pro', 'pro', 'span', undefined], // bob is configured but without a plan: the span decides
    ['dave', 'pro', 'pro', 'span', undefined],
    ['dave', undefined, 'free', 'default', undefined],
    ['dave', '', 'free', 'default', undefined],
    ['dave', 'platinum', 'free', 'default', 'platinum'],
    ['carol', 'free', 'pro', 'config', undefined],
    ['constructor', 'pro', 'pro', 'span', undefined], // no prototype keys leak in as users
  ])('resolve(%s, %s) -> %s from %s', (user, span, plan, source, unknown) => {
    const res = r.resolve(user, span);
    expect(res.plan).toBe(plan);
    expect(res.source).toBe(source);
    expect(res.unknownSpanPlan).toBe(unknown);
    expect(r.planFor(user, span)).toBe(plan);
  });

  it('limits: plan limits with per-user overrides (null = unlimited)', () => {
    expect(r.limitsFor('dave', 'free')).toEqual({ tokens: 1000, requests: 5 });
    const pro = r.limitsFor('dave', 'pro');
    expect(pro.tokens).toBe(100000);
    expect(pro.costUsd?.toFixed()).toBe('25.5');
    expect(r.limitsFor('bob', 'pro').tokens).toBe(42);
    expect(r.limitsFor('bob', 'pro').requests).toBe(100);
    const carol = r.limitsFor('carol', 'pro');
    expect(carol).toEqual({ tokens: 100000, requests: 7 });
    expect(r.limitsFor('alice', 'enterprise')).toEqual({});
    // unknown plan name: the default plan's limits
    expect(r.limitsFor('dave', 'platinum')).toEqual({ tokens: 1000, requests: 5 });
  });

  it('DESIGN.md defaults when no plans are configured', () => {
    const d = new PlanResolver(undefined);
    expect(d.planNames()).toEqual(['free', 'pro', 'team']);
    expect(d.defaultPlan).toBe('free');
    expect(d.limitsFor('x', 'free')).toEqual({ tokens: 50_000, requests: 10 });
    expect(d.limitsFor('x', 'pro')).toEqual({ tokens: 500_000, requests: 100 });
    expect(d.limitsFor('x', 'team')).toEqual({ tokens: 2_000_000, requests: 500 });
    expect(plansConfigSchema.parse(DEFAULT_PLANS)).toEqual(DEFAULT_PLANS);
  });

  it('"free" is the default plan unless one is marked', () => {
    const p = new PlanResolver(plansConfigSchema.parse({ free: {}, gold: {} }));
    expect(p.defaultPlan).toBe('free');
  });

  it('rejects users assigned to unknown plans', () => {
    expect(planReferenceIssues(undefined, { eve: { plan: 'gold' } })).toEqual([
      { path: ['users', 'eve', 'plan'], message: expect.stringContaining('"gold" is not configured') },
    ]);
    expect(() => new PlanResolver(undefined, { eve: { plan: 'gold' } })).toThrow(PlanConfigError);
  });
});

describe('plan configuration schemas', () => {
  it.each([
    [{ pro: { limits: { tokens: -1 } } }, 'pro.limits.tokens'],
    [{ pro: { limits: { tokens: 1.5 } } }, 'pro.limits.tokens'],
    [{ pro: { limits: { cost_usd: 25 } } }, 'pro.limits.cost_usd'],
    [{ pro: { limits: { cost_usd: '1e3' } } }, 'pro.limits.cost_usd'],
    [{ pro: { limits: { tokenz: 5 } } }, 'pro.limits'],
    [{ pro: { limit: {} } }, 'pro'],
    [{ 'bad name!': {} }, 'bad name!'],
    [{ a: { default: true }, b: { default: true } }, 'b.default'],
    [{ gold: {} }, ''],
    [{}, ''],
    [[], ''],
  ])('plans %j -> error at %s', (input, path) => {
    expect(issuePaths(plansConfigSchema, input)).toContain(path);
  });

  it.each([
    [{ alice: { plan: 7 } }, 'alice.plan'],
    [{ alice: { limits: { requests: 'ten' } } }, 'alice.limits.requests'],
    [{ alice: { colour: 'red' } }, 'alice'],
    [{ '': {} }, ''],
  ])('users %j -> error at %s', (input, path) => {
    expect(issuePaths(usersConfigSchema, input)).toContain(path);
  });

  it('period defaults and errors', () => {
    expect(periodConfigSchema.parse({})).toEqual({ timezone: 'UTC', anchor_day: 1 });
    expect(issuePaths(periodConfigSchema, { timezone: 'Nowhere/Land' })).toContain('timezone');
    expect(issuePaths(periodConfigSchema, { anchor_day: 0 })).toContain('anchor_day');
    expect(issuePaths(periodConfigSchema, { anchor_day: 29 })).toContain('anchor_day');
    expect(issuePaths(periodConfigSchema, { anchor: 2 })).toContain('');
    expect(issuePaths(periodConfigSchema, { timezone: 'x'.repeat(10_000) })).toContain('timezone');
  });
});
