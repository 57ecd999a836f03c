import { Decimal } from 'decimal.js';
import {
  DEFAULT_PLANS,
  planReferenceIssues,
  plansConfigSchema,
  usersConfigSchema,
  type LimitsConfig,
  type PlansConfig,
  type UsersConfig,
} from './config.js';
import type { PlanLimits } from './types.js';

/** Where a call's plan came from (DESIGN.md's order: configuration, then span, then default). */
export type PlanSource = 'config' | 'span' | 'default';

export interface PlanResolution {
  plan: string;
  source: PlanSource;
  /**
   * Set when the span named a plan the configuration does not know. The call is billed under the default plan
   * instead, and the caller should count it (a typo or a forged attribute must neither escape the limits nor
   * create unbounded label values).
   */
  unknownSpanPlan?: string;
}

export class PlanConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanConfigError';
  }
}

function toLimits(config: LimitsConfig | undefined): PlanLimits {
  const out: PlanLimits = {};
  if (config?.tokens != null) out.tokens = config.tokens;
  if (config?.requests != null) out.requests = config.requests;
  if (config?.cost_usd != null) out.costUsd = new Decimal(config.cost_usd);
  return out;
}

/** A user override: absent keeps the plan's limit, null removes it, a value replaces it. */
function applyOverride(base: PlanLimits, override: LimitsConfig | undefined): PlanLimits {
  if (!override) return base;
  const out: PlanLimits = { ...base };
  if (override.tokens === null) delete out.tokens;
  else if (override.tokens !== undefined) out.tokens = override.tokens;
  if (override.requests === null) delete out.requests;
  else if (override.requests !== undefined) out.requests = override.requests;
  if (override.cost_usd === null) delete out.costUsd;
  else if (override.cost_usd !== undefined) out.costUsd = new Decimal(override.cost_usd);
  return out;
}

/**
 * Resolves a call's plan and a user's effective limits from the configuration. Construct with the validated
 * `plans`/`users` sections (undefined `plans` = DESIGN.md's defaults).
 */
export class PlanResolver {
  readonly defaultPlan: string;
  readonly #plans: Map<string, PlanLimits>;
  /**
   * Configured users by id. A Map, not the config object: user ids come from spans, and a property lookup with
   * a string never used as a key makes V8 search its string table on every call.
   */
  readonly #users: Map<string, UsersConfig[string]>;

  constructor(plans: PlansConfig | undefined, users: UsersConfig | undefined = {}) {
    // Re-validate: callers may build the config in code rather than through src/config.
    const plansParsed = plansConfigSchema.safeParse(plans ?? DEFAULT_PLANS);
    if (!plansParsed.success) throw new PlanConfigError(`invalid plans: ${plansParsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const usersParsed = usersConfigSchema.safeParse(users ?? {});
    if (!usersParsed.success) throw new PlanConfigError(`invalid users: ${usersParsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const refs = planReferenceIssues(plansParsed.data, usersParsed.data);
    if (refs.length > 0) throw new PlanConfigError(refs.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));

    const config = plansParsed.data;
    this.#plans = new Map(Object.entries(config).map(([name, p]) => [name, toLimits(p.limits)]));
    this.defaultPlan = Object.keys(config).find((n) => config[n].default === true) ?? 'free';
    this.#users = new Map(Object.entries(usersParsed.data));
  }

  planNames(): string[] {
    return [...this.#plans.keys()];
  }

  hasPlan(name: string): boolean {
    return this.#plans.has(name);
  }

  /** Configuration naming the user, else the span's plan when it is configured, else the default plan. */
  resolve(userId: string, planFromSpan?: string): PlanResolution {
    const configured = this.#users.get(userId)?.plan;
    if (configured !== undefined) return { plan: configured, source: 'config' };
    if (planFromSpan !== undefined && planFromSpan !== '') {
      if (this.#plans.has(planFromSpan)) return { plan: planFromSpan, source: 'span' };
      return { plan: this.defaultPlan, source: 'default', unknownSpanPlan: planFromSpan };
    }
    return { plan: this.defaultPlan, source: 'default' };
  }

  /** `resolve(...).plan`, without building the resolution (the exporter asks once per span). */
  planFor(userId: string, planFromSpan?: string): string {
    const configured = this.#users.get(userId)?.plan;
    if (configured !== undefined) return configured;
    if (planFromSpan !== undefined && planFromSpan !== '' && this.#plans.has(planFromSpan)) return planFromSpan;
    return this.defaultPlan;
  }

  /**
   * The user's effective limits under `plan`: the plan's limits with the user's overrides applied. An unknown
   * plan has the default plan's limits (the same fallback as `resolve`).
   */
  limitsFor(userId: string, plan: string): PlanLimits {
    const base = this.#plans.get(plan) ?? this.#plans.get(this.defaultPlan) ?? {};
    const user = this.#users.get(userId);
    return applyOverride({ ...base }, user?.limits);
  }
}
