import { diag } from '@opentelemetry/api';
import type { PriceBook } from '../pricing/index.js';
import { addUsage, zeroUsage, type Usage } from '../usage/index.js';
import { whenEstimatesSettled } from './call.js';
import { runCollecting, type TrackedCall, type UsageCollector } from './scope.js';

export interface TrackUsageOptions {
  /** The prices to apply (e.g. with your negotiated overrides). Default: the shipped catalog. */
  priceBook?: PriceBook;
}

/** One call inside `trackUsage`, with its locally computed price. */
export interface TrackedCallCost extends TrackedCall {
  /** Exact USD decimal string; undefined when the model has no known price. */
  costUsd: string | undefined;
}

export interface UsageTotals<T> {
  /** What `fn` returned. */
  result: T;
  /** Summed tokens of every call that ended inside `fn`, by non-overlapping type. */
  usage: Usage;
  /** Calls that ended inside `fn`. */
  requests: number;
  /** Of those, calls whose counts were estimated (the provider reported none). */
  estimatedRequests: number;
  /** Of those, calls that failed. */
  failedRequests: number;
  /** Of those, calls whose model has no known price: their tokens are in `usage` but not in `costUsd`. */
  unpricedRequests: number;
  /** Total cost in USD of the priced calls, an exact decimal string (e.g. "0.000123"). */
  costUsd: string;
  calls: TrackedCallCost[];
}

type Pricing = typeof import('../pricing/index.js');

/*
 * The pricing engine (catalog, decimal.js, YAML, schemas) is loaded on the first trackUsage, not when the app
 * imports tokenmeter: apps that only instrument never load it.
 */
let pricingModule: Promise<Pricing> | undefined;
let defaultBook: PriceBook | undefined;

function loadPricing(): Promise<Pricing> {
  pricingModule ??= import('../pricing/index.js');
  return pricingModule;
}

function priceCall(pricing: Pricing, book: PriceBook | undefined, call: TrackedCall): string | undefined {
  if (book === undefined) return undefined;
  const result = book.price({
    provider: call.provider,
    model: call.model,
    usage: call.usage,
    at: new Date(call.endTimeMillis),
    serviceTier: pricing.parseServiceTier(call.serviceTier),
    toolCalls: call.toolCalls,
  });
  return result.priced ? result.totalUsd.toFixed() : undefined;
}

/**
 * Runs `fn` and returns, next to its result, the summed usage, request count and cost of every LLM call that
 * ended inside it (also inside nested `trackUsage` and `withUser` scopes): for apps that return usage and cost
 * in their own API responses, and for agent loops that make many calls per user request. A stream counts when
 * it has been read to its end (or broken off) inside `fn`. If `fn` throws, the error propagates unchanged.
 */
export async function trackUsage<T>(fn: () => T | Promise<T>, options: TrackUsageOptions = {}): Promise<UsageTotals<T>> {
  const collector: UsageCollector = { calls: [], parent: undefined };
  const result = await runCollecting(collector, fn);
  // A call that ended inside fn may still be waiting for the tokenizer (the first estimate of the process).
  await whenEstimatesSettled();
  const pricing = await loadPricing();
  let book = options.priceBook;
  if (book === undefined) {
    try {
      book = defaultBook ??= pricing.PriceBook.load();
    } catch (err) {
      diag.error('tokenmeter: could not load the price catalog; trackUsage reports no cost', err);
    }
  }
  let usage = zeroUsage();
  // Exact: the default Decimal keeps 20 significant digits and would round a long sum.
  let cost = new pricing.ExactDecimal(0);
  let estimatedRequests = 0;
  let failedRequests = 0;
  let unpricedRequests = 0;
  const calls: TrackedCallCost[] = [];
  for (const call of collector.calls) {
    usage = addUsage(usage, call.usage);
    if (call.estimated) estimatedRequests++;
    if (call.outcome === 'error') failedRequests++;
    let costUsd: string | undefined;
    try {
      costUsd = priceCall(pricing, book, call);
    } catch (err) {
      diag.error('tokenmeter: pricing a tracked call failed', err);
    }
    if (costUsd === undefined) unpricedRequests++;
    else cost = cost.plus(costUsd);
    calls.push({ ...call, costUsd });
  }
  return { result, usage, requests: calls.length, estimatedRequests, failedRequests, unpricedRequests, costUsd: cost.toFixed(), calls };
}
