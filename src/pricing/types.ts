import type { Decimal } from 'decimal.js';
import type { FeeKind, TokenType } from '../contract/names.js';
import type { Usage } from '../usage/usage.js';

export type ServiceTier = 'standard' | 'batch' | 'flex' | 'priority';

export interface PriceQuery {
  provider?: string;
  /** Any spelling a span may carry: dated snapshots, `openai/gpt-4o`, Bedrock or Vertex ids, Azure deployments. */
  model: string;
  usage: Usage;
  /** The instant of the call; chooses the price in force (effective_from). */
  at: Date;
  serviceTier?: ServiceTier;
  /** Anthropic fast mode: the usage reported speed "fast". */
  speed?: 'standard' | 'fast';
  /** Where the call was served: `regional` for a data-residency / in-geography endpoint (see processingScope). */
  processing?: 'global' | 'regional';
  /** Per-call fee counts the provider reported (web searches, grounding queries): priced from the entry's `fees`. */
  toolCalls?: ToolCalls;
}

/** Calls per fee kind, as the provider reported them (non-negative integers; absent = 0). */
export type ToolCalls = Partial<Record<FeeKind, number>>;

/** One per-call fee applied to a call: `billed` is `calls`, or 1 for a fee charged once per request. */
export interface FeeLine {
  kind: FeeKind;
  calls: number;
  billed: number;
  /** The rate in USD per 1,000 billed calls, exact decimal string. */
  usdPer1000: string;
  costUsd: string;
}

export interface PricedResult {
  priced: true;
  /** Catalog provider name. */
  provider: string;
  /** Catalog model name (the normalised label used in metrics). */
  model: string;
  /** Identifies the price entry used (stored in the ledger next to the cost). */
  priceId: string;
  effectiveFrom: string;
  serviceTier: ServiceTier;
  /** Per-type cost in USD; the five and feeCostUsd (when present) add up exactly to totalUsd. */
  costUsd: Record<TokenType, Decimal>;
  totalUsd: Decimal;
  /** Per-call fees (not tokens), when the call reported calls the entry charges for; included in totalUsd. */
  feeCostUsd?: Decimal;
  fees?: FeeLine[];
  /** Which context-size tier was applied, if the entry has tiers (e.g. "above 200000 input tokens"). */
  contextTier?: string;
  /** For entries with time-of-day pricing: whether the call's instant fell in the peak hours. */
  pricePeriod?: 'peak' | 'off_peak';
  /** Premiums applied to every rate, e.g. ["fast mode x6", "regional processing x1.1"]. */
  adjustments?: string[];
  /** 'override' when a configured override supplied the price, else 'catalog'. */
  origin: 'catalog' | 'override';
  /** The rates applied (USD per million tokens, after context and service tiers), as exact decimal strings. */
  ratesUsdPerMtok?: AppliedRates;
  /** The public page the price was taken from, and when (absent for overrides without a source). */
  source?: string;
  sourceDate?: string;
}

/**
 * Per-type rates actually applied to a call; `cache_write_1h` is the rate for the 1-hour part of cache_write, the
 * modality rates those of the audio part of input and the audio / image parts of output ('' when the model has none).
 */
export type AppliedRates = Record<TokenType | 'cache_write_1h' | 'input_audio' | 'output_audio' | 'output_image', string>;

export interface UnpricedResult {
  priced: false;
  provider: string;
  /** The normalised name tried (lower-cased, prefixes stripped). */
  model: string;
  reason: string;
  /** Up to three close catalog names. */
  suggestions: string[];
}

export type PriceResult = PricedResult | UnpricedResult;

/** A priced call with its money as exact decimal strings (`PriceBook.priceStrings`). */
export interface PricedStringsResult extends Omit<PricedResult, 'costUsd' | 'totalUsd' | 'ratesUsdPerMtok' | 'feeCostUsd'> {
  /** Per-type cost in USD as exact decimal strings (decimal.js `toFixed()` form); with feeCostUsd they add up to totalUsd. */
  costUsd: Record<TokenType, string>;
  totalUsd: string;
  feeCostUsd?: string;
  /** Shared by every call priced with the same rates: do not modify. */
  ratesUsdPerMtok: Readonly<AppliedRates>;
}

export type PriceStringsResult = PricedStringsResult | UnpricedResult;
