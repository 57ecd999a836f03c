export type { PlanLimits, BillingPeriod } from './types.js';
export {
  limitsConfigSchema,
  planConfigSchema,
  plansConfigSchema,
  userConfigSchema,
  usersConfigSchema,
  periodConfigSchema,
  DEFAULT_PLANS,
  isValidTimeZone,
  planReferenceIssues,
} from './config.js';
export type {
  LimitsConfig,
  PlanConfig,
  PlansConfig,
  UserConfig,
  UsersConfig,
  PeriodConfig,
  PeriodConfigInput,
  PlanReferenceIssue,
} from './config.js';
export { PlanResolver, PlanConfigError } from './plan-resolver.js';
export type { PlanResolution, PlanSource } from './plan-resolver.js';
export { BillingCalendar, periodFor, nextPeriod, startOfLocalDay, offsetMillis, localParts } from './billing-period.js';
export { systemClock, ManualClock } from './clock.js';
export type { Clock } from './clock.js';
