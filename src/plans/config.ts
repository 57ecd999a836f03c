/**
 * Configuration of plans, per-user overrides and the billing period. The zod schemas are embedded by the one
 * configuration module (src/config/); everything here validates its own part so errors name the exact path.
 */
import { z } from 'zod';

/** Money limits are quoted decimal strings, like every price: YAML numbers are binary floats. */
const DECIMAL_RE = /^\d{1,12}(\.\d{1,12})?$/;

const tokenLimit = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/**
 * Per-period limits. An absent field means "no limit of this kind" in a plan; in a user override an absent
 * field keeps the plan's limit and `null` removes it (unlimited for that user).
 */
export const limitsConfigSchema = z.strictObject({
  tokens: tokenLimit.nullable().optional().describe('Tokens per billing period (all five types summed).'),
  requests: tokenLimit.nullable().optional().describe('LLM calls per billing period.'),
  cost_usd: z
    .string({ error: 'must be a quoted decimal string such as "25.00"' })
    .regex(DECIMAL_RE, { error: 'must be a non-negative decimal string such as "25.00"' })
    .nullable()
    .optional()
    .describe('Cost budget in USD per billing period, as a quoted decimal string.'),
});
export type LimitsConfig = z.output<typeof limitsConfigSchema>;

const PLAN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const planName = z.string().regex(PLAN_NAME_RE, {
  error: 'plan names are 1-64 characters: letters, digits, "_", "-", "." (they become Prometheus label values)',
});

export const planConfigSchema = z.strictObject({
  default: z.boolean().optional().describe('The plan of users neither the configuration nor the span assigns one (exactly one plan).'),
  limits: limitsConfigSchema.optional().describe('Per-period limits; absent = unlimited.'),
});
export type PlanConfig = z.output<typeof planConfigSchema>;

/** DESIGN.md's defaults, used when the configuration has no `plans` section. */
export const DEFAULT_PLANS: Readonly<Record<string, PlanConfig>> = Object.freeze({
  free: { default: true, limits: { tokens: 50_000, requests: 10 } },
  pro: { limits: { tokens: 500_000, requests: 100 } },
  team: { limits: { tokens: 2_000_000, requests: 500 } },
});

/**
 * `plans:` — plan name → limits. When given it replaces the defaults entirely (the configuration then lists
 * every plan that exists). One plan may be marked `default: true`; without a mark the plan named `free` is
 * the default, and without `free` the configuration is rejected.
 */
export const plansConfigSchema = z
  .record(planName, planConfigSchema)
  .superRefine((plans, ctx) => {
    const names = Object.keys(plans);
    if (names.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'at least one plan is required (omit `plans` for the defaults free, pro, team)' });
      return;
    }
    const defaults = names.filter((n) => plans[n].default === true);
    if (defaults.length > 1) {
      for (const n of defaults.slice(1)) {
        ctx.addIssue({ code: 'custom', path: [n, 'default'], message: `only one plan may be the default (${defaults.join(', ')} are)` });
      }
    } else if (defaults.length === 0 && !names.includes('free')) {
      ctx.addIssue({ code: 'custom', message: 'mark one plan `default: true` (there is no plan named "free" to fall back on)' });
    }
  });
export type PlansConfig = z.output<typeof plansConfigSchema>;

export const userConfigSchema = z.strictObject({
  plan: planName.optional().describe('The plan this user is billed under, whatever the spans say.'),
  limits: limitsConfigSchema.optional().describe('Overrides of the plan limits for this user (null = unlimited).'),
});
export type UserConfig = z.output<typeof userConfigSchema>;

/** `users:` — user id → plan assignment and limit overrides. */
export const usersConfigSchema = z.record(z.string().min(1).max(256), userConfigSchema);
export type UsersConfig = z.output<typeof usersConfigSchema>;

/** True when `Intl` knows the IANA time zone. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** `period:` — the billing period: calendar months in `timezone`, starting on `anchor_day` at local midnight. */
export const periodConfigSchema = z.strictObject({
  timezone: z
    .string()
    .min(1)
    .max(64)
    .refine(isValidTimeZone, { error: 'must be an IANA time zone such as "UTC" or "Europe/Berlin"' })
    .default('UTC')
    .describe('IANA time zone in which periods start at local midnight.'),
  anchor_day: z
    .number()
    .int()
    .min(1)
    .max(28)
    .default(1)
    .describe('Day of the month a period starts (1-28; 15 = periods run from the 15th to the 14th).'),
});
export type PeriodConfig = z.output<typeof periodConfigSchema>;
export type PeriodConfigInput = z.input<typeof periodConfigSchema>;

/** A plan a user is assigned to that does not exist; for the configuration module's cross-checks. */
export interface PlanReferenceIssue {
  path: (string | number)[];
  message: string;
}

/** Users assigned to plans that are not configured (the per-section schemas cannot see each other). */
export function planReferenceIssues(plans: PlansConfig | undefined, users: UsersConfig | undefined): PlanReferenceIssue[] {
  const known = new Set(Object.keys(plans ?? DEFAULT_PLANS));
  const issues: PlanReferenceIssue[] = [];
  for (const [userId, user] of Object.entries(users ?? {})) {
    if (user.plan !== undefined && !known.has(user.plan)) {
      issues.push({
        path: ['users', userId, 'plan'],
        message: `plan "${user.plan}" is not configured (plans: ${[...known].join(', ')})`,
      });
    }
  }
  return issues;
}
