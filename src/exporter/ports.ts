import type { CommitResult, LedgerRecord, PeriodRollup } from '../ledger/types.js';
import type { BillingPeriod, PlanLimits } from '../plans/types.js';
import type { PriceQuery, PriceStringsResult } from '../pricing/types.js';
import type { SpanFacts } from '../ingest/types.js';
import type { UsageRecord } from '../usage/usage-record.js';
import type { ReportCall } from '../report/report.js';
import type { RepriceAudit, RepriceRequest } from '../ledger/adjustments.js';
import type { LedgerCall } from '../ledger/call-scan.js';

/**
 * What the exporter needs from the other stages, as small interfaces. `adapters.ts` binds them to the real
 * ledger, plans, pricing and ingest modules; tests may pass hand-written implementations of the same interfaces.
 */

/** Plans, limits and billing periods. */
export interface PlanPort {
  /** The plan a call is billed under: configuration naming the user, else the span's plan, else the default. */
  planFor(userId: string, planFromSpan: string | undefined): string;
  /** Effective limits (plan limits with per-user overrides); absent = unlimited. */
  limitsFor(userId: string, plan: string): PlanLimits;
  /** The billing period containing `at`. */
  periodFor(at: Date): BillingPeriod;
  /** The period starting in this month (the calendar's anchor day and time zone); absent: the period of the 1st (UTC). */
  periodNamed?(year: number, month: number): BillingPeriod;
  /** The calendar's time zone (period labels, the report's days); absent: UTC. */
  timeZone?: string;
  /** Configured plan names (for the per-plan period end gauge). */
  planNames(): string[];
}

export interface PricingPort {
  /** Prices one call, money as exact decimal strings (PriceBook.priceStrings). */
  priceStrings(query: PriceQuery): PriceStringsResult;
}

/** Per-model usage of one user or of everyone, for the usage API. */
export interface ModelUsage {
  provider: string;
  model: string;
  tokens: Record<'input' | 'cache_read' | 'cache_write' | 'output' | 'reasoning', number>;
  requests: number;
  /** Requests of the row whose model had no price (absent = none): counted in `tokens`, not in `costUsd`. */
  unpricedRequests?: number;
  /** Requests of the row whose token counts were estimated (the real ledgers report them). */
  estimatedRequests?: number;
  /** Exact decimal string: the cost of the priced requests. */
  costUsd: string;
  /** The plan, when the row is per user and plan. */
  plan?: string;
  userId?: string;
}

export interface LedgerPort {
  /**
   * Commits (through the group committer): atomic, exactly-once by trace id + span id. `onDurable`, when the
   * ledger supports it, is called synchronously as soon as the records are durable and in the in-memory totals,
   * before the result is built (the promise still resolves with the result); it may also never be called.
   */
  commit(records: LedgerRecord[], onDurable?: () => void): Promise<CommitResult>;
  ping(): Promise<void>;
  /** Every (user, plan) rollup of the period starting at `periodStart`. */
  /** With `unpriced`, each rollup also counts the user's unpriced requests (the usage API's list). */
  loadPeriodRollups(periodStart: Date, options?: { unpriced?: boolean }): Promise<PeriodRollup[]>;
  /** One user's usage this period, per plan, provider and model. */
  userModelUsage(userId: string, periodStart: Date): Promise<ModelUsage[]>;
  /** Everyone's usage this period, per provider and model. */
  periodModelUsage(periodStart: Date): Promise<ModelUsage[]>;
  /** The period's calls one at a time (by feature / day reports); absent when the ledger cannot scan its calls. */
  scanCalls?(filter: { periodStart?: Date; userId?: string }): AsyncIterable<ReportCall>;
  /** The period's rollups one at a time in (user, plan) order (reports); absent: `loadPeriodRollups` whole. */
  scanPeriodRollups?(periodStart: Date, options?: { userId?: string }): AsyncIterable<PeriodRollup>;
  /** The re-pricings that touched the period (reports say so); absent: a ledger that cannot be re-priced. */
  repriceAudits?(periodStart: Date): Promise<RepriceAudit[]>;
  /** Applies a re-pricing in one transaction with its audit record (POST /api/v1/reprice). */
  applyReprice?(request: RepriceRequest): Promise<RepriceAudit>;
  /** Every call whose span ended in [from, to), with what re-pricing needs (receive time, discount, price id). */
  scanCallRange?(filter: { from?: Date; to?: Date }): AsyncIterable<LedgerCall>;
  /** Waits for commits in flight, then releases connections. */
  close(): Promise<void>;
}

/** True when an error means "the ledger cannot be reached now" (answer 503 + Retry-After). */
export type UnavailableCheck = (err: unknown) => boolean;

export type ExtractResult =
  | { kind: 'usage'; record: UsageRecord; facts?: SpanFacts }
  | { kind: 'ignored' }
  | { kind: 'rejected'; reason: string; message: string };
