import type { TokenType } from '../contract/names.js';
import type { UsageRecord } from '../usage/usage-record.js';

/** A usage record after plan resolution and pricing, ready to be committed. Money as exact decimal strings. */
export interface LedgerRecord extends UsageRecord {
  /** The plan the call is billed under (after DESIGN.md's resolution order). */
  plan: string;
  /** Normalised catalog model name when priced, else the normalised raw name. */
  model: string;
  /** Start of the billing period the call falls in (ISO instant). */
  periodStart: string;
  priced: boolean;
  /** Price entry id when priced. */
  priceId?: string;
  /** Per-type cost in USD as decimal strings ("0" for each type when unpriced). */
  costUsd: Record<TokenType, string>;
  /**
   * Per-call fees in USD (web searches, grounding queries: `toolCalls` priced from the catalog's `fees`), when the
   * call had any. Not a token type. costUsd's five and feeCostUsd add up exactly to totalCostUsd.
   */
  feeCostUsd?: string;
  totalCostUsd: string;
  /**
   * Set by the ledger on committed records when a volume discount applied: the discount in USD. `costUsd` and
   * `totalCostUsd` are then the net (discounted) costs and `grossCostUsd` the cost before the discount.
   */
  discountUsd?: string;
  grossCostUsd?: string;
}

/** A user's exact totals for one billing period, as the ledger holds them after a commit. */
export interface PeriodRollup {
  periodStart: string;
  userId: string;
  plan: string;
  tokens: Record<TokenType, number>;
  requests: number;
  /** Exact decimal string. */
  costUsd: string;
  /**
   * Requests of these whose model had no price (their tokens are counted, their cost is unknown, not 0). Set by
   * `loadPeriodRollups(start, { unpriced: true })` (the usage API's user list) when there are any; absent means
   * none or not asked (always absent on the rollups a commit returns).
   */
  unpricedRequests?: number;
}

/**
 * A (user, plan) total of one period as the ledger holds it at this moment (not a copy): read it in the same turn
 * the commit resolved, before another commit can change it. Lets the exporter's metrics take a commit's totals
 * without a PeriodRollup (an object, a tokens object and a cost string) built and sorted per touched user.
 */
export interface LiveRollup {
  readonly userId: string;
  readonly plan: string;
  readonly requests: number;
  /** The sum of the five token types. */
  tokenSum(): number;
  /** Exact decimal string in decimal.js toFixed() form ("0", "0.5", "12.25"). */
  costUsd(): string;
  /**
   * The reader's own: the ledger never reads it. The exporter's metrics keep their entry for the row's user here,
   * found again without a lookup the next time the row is touched.
   */
  readerSlot: unknown;
}

/** The rows a commit changed in one billing period. */
export interface TouchedRollups {
  /** ISO instant. */
  periodStart: string;
  rows: LiveRollup[];
}

export interface CommitResult {
  /** Records newly committed (first time this trace id + span id was seen within the dedup window). */
  committed: LedgerRecord[];
  /** Records whose trace id + span id were already in the ledger: not counted again. */
  duplicates: LedgerRecord[];
  /** The current totals of every (period, user, plan) the commit touched, read inside the same transaction. */
  rollups: PeriodRollup[];
  /**
   * Per input record, in input order: 'committed' or 'duplicate' (also for a repeat of a span earlier in the
   * same batch). Always set by this ledger; optional so hand-written fakes may omit it.
   */
  outcomes?: CommitOutcome[];
  /**
   * Only with `CommitOptions.liveTotals` and a ledger that keeps its totals in memory (the journal ledger): the
   * (user, plan) rows this commit's new records changed, live, by period. `rollups` is then built on first read.
   */
  touched?: TouchedRollups[];
}

export type CommitOutcome = 'committed' | 'duplicate';
