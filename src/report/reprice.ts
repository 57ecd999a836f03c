/**
 * Re-pricing (issue 18): which calls a corrected price changes, and by how much. Reads the ledger's calls in a
 * range (`scanCalls`, streamed), prices each again from its stored token counts with the current catalog +
 * overrides at the instant it was charged to, and keeps the calls whose price id or cost differs, with their old
 * and new costs: the request `Ledger.applyReprice` applies in one transaction with its audit record.
 *
 * What is recomputed is what the ledger stores: provider, the model as reported, the token counts, the service tier,
 * the per-call fee counts and the charge instant. A volume discount the call got is kept (capped at its new cost).
 * Premiums decided from span facts the ledger does not store (Anthropic fast mode, regional processing outside
 * Bedrock) are not re-applied: narrow `--model` to the models whose price was wrong.
 */
import { TOKEN_TYPES } from '../contract/names.js';
import { auditOf, costsOf, sameCosts, MAX_ADJUSTMENTS, type AuditUserLine, type CallAdjustment, type CallCosts, type RepriceAudit } from '../ledger/adjustments.js';
import type { LedgerCall } from '../ledger/call-scan.js';
import { netCostsOf } from '../ledger/ledger-interface.js';
import { chargeInstant, DEFAULT_CLOCK_SKEW_MILLIS, DEFAULT_LATE_ARRIVAL_MILLIS, type ChargeWindow } from '../exporter/pipeline.js';
import { ExactDecimal, normalizeModelId, parseServiceTier, processingScope, type PriceQuery, type PriceStringsResult } from '../pricing/index.js';
import type { LedgerRecord } from '../ledger/types.js';

export interface RepriceQuery {
  /** Calls whose span ended at or after this instant. */
  from: Date;
  /** ... and before this one (absent: up to now). */
  to?: Date;
  /** Only calls of this model (the stored catalog name or the name as reported, any spelling the catalog knows). */
  model?: string;
}

export interface RepricePricing {
  priceStrings(query: PriceQuery): PriceStringsResult;
}

export interface RepriceLedger {
  scanCalls(filter: { from?: Date; to?: Date }): AsyncIterable<LedgerCall>;
}

export interface RepricePlan {
  /** Calls in the range (and of the model). */
  scanned: number;
  adjustments: CallAdjustment[];
  /** Per (period, user, plan): the difference, exact. */
  users: AuditUserLine[];
  deltaUsd: string;
  /** Calls that had no price and get one. */
  newlyPriced: number;
  /** Calls that still have no price (no catalog entry or override for their model at their time). */
  stillUnpriced: number;
  /** Priced calls the current prices do not price (an override removed): left as they are. */
  noPriceNow: number;
  /**
   * Calls whose stored cost is exactly the current price with a premium (fast mode, regional processing): billed
   * with it, and the ledger does not store whether a premium applied, so they are left as they are.
   */
  premiumKept: number;
  /**
   * Changed calls of a model with a premium: if one of them was billed with it, its new cost (the plain price) drops
   * it. The plan cannot tell; the CLI and the API say so.
   */
  premiumPossible: number;
}

/** A plan larger than one re-pricing may be (MAX_ADJUSTMENTS). */
export class RepriceTooLargeError extends Error {}

function matchesModel(c: LedgerRecord, wanted: string | undefined): boolean {
  if (wanted === undefined) return true;
  const w = wanted.toLowerCase();
  if (c.model.toLowerCase() === w || c.rawModel.toLowerCase() === w) return true;
  const n = normalizeModelId(wanted);
  return normalizeModelId(c.model) === n || normalizeModelId(c.rawModel) === n;
}

/** A premium the ledger does not store, tried to tell a call billed with it from one whose price changed. */
type Premium = Pick<PriceQuery, 'speed' | 'processing'>;
const PREMIUMS: readonly Premium[] = [{ speed: 'fast' }, { processing: 'regional' }, { speed: 'fast', processing: 'regional' }];

function price(pricing: RepricePricing, c: LedgerCall, atMillis: number, premium?: Premium): PriceStringsResult {
  const query: PriceQuery = { provider: c.provider, model: c.rawModel, usage: c.usage, at: new Date(atMillis) };
  const tier = parseServiceTier(c.serviceTier);
  if (tier) query.serviceTier = tier;
  if (c.toolCalls !== undefined) query.toolCalls = c.toolCalls;
  // Only the model id is stored of the facts processingScope reads (a Bedrock geo or in-region profile id).
  const scope = processingScope({ provider: c.provider, rawModel: c.rawModel });
  if (scope) query.processing = scope;
  if (premium?.speed) query.speed = premium.speed;
  if (premium?.processing && scope === undefined) query.processing = premium.processing;
  try {
    return pricing.priceStrings(query);
  } catch (err) {
    return { priced: false, provider: c.provider, model: c.model, reason: String(err), suggestions: [] };
  }
}

/** The call's costs at the current prices, or undefined when they do not price it. */
export function currentCosts(c: LedgerCall, pricing: RepricePricing, window: ChargeWindow, premium?: Premium): CallCosts | undefined {
  const { atMillis } = chargeInstant(c.endTimeMillis, c.receivedAtMillis, window);
  let p = price(pricing, c, atMillis, premium);
  // As at ingest: a call with no price at its charge instant but one at its arrival is priced at its arrival.
  if (!p.priced && c.receivedAtMillis !== atMillis) {
    const atArrival = price(pricing, c, c.receivedAtMillis, premium);
    if (atArrival.priced) p = atArrival;
  }
  if (!p.priced) return undefined;
  if (c.discountUsd === undefined || new ExactDecimal(c.discountUsd).isZero()) {
    // No volume discount (nearly every call): the price's own strings are the costs, no split to compute.
    const plain: CallCosts = { priced: true, priceId: p.priceId, costUsd: { ...p.costUsd }, totalCostUsd: p.totalUsd, grossCostUsd: p.totalUsd, discountUsd: '0' };
    if (p.feeCostUsd !== undefined) plain.feeCostUsd = p.feeCostUsd;
    return plain;
  }
  const gross: LedgerRecord = { ...c, costUsd: { ...p.costUsd }, totalCostUsd: p.totalUsd };
  if (p.feeCostUsd !== undefined) gross.feeCostUsd = p.feeCostUsd;
  else delete gross.feeCostUsd;
  const grossTotal = new ExactDecimal(p.totalUsd);
  const oldDiscount = new ExactDecimal(c.discountUsd ?? '0');
  const discount = oldDiscount.gt(grossTotal) ? grossTotal : oldDiscount;
  const net = netCostsOf(gross, discount);
  const costUsd = {} as CallCosts['costUsd'];
  for (const t of TOKEN_TYPES) costUsd[t] = net.costUsd[t].toFixed();
  const out: CallCosts = {
    priced: true,
    priceId: p.priceId,
    costUsd,
    totalCostUsd: net.total.toFixed(),
    grossCostUsd: net.gross.toFixed(),
    discountUsd: net.discount.toFixed(),
  };
  if (net.fee !== undefined) out.feeCostUsd = net.fee.toFixed();
  return out;
}

/** Computes the re-pricing of the calls in the range (nothing is written). */
export async function planReprice(ledger: RepriceLedger, pricing: RepricePricing, q: RepriceQuery, window?: ChargeWindow): Promise<RepricePlan> {
  const w = window ?? { lateArrivalMillis: DEFAULT_LATE_ARRIVAL_MILLIS, clockSkewMillis: DEFAULT_CLOCK_SKEW_MILLIS };
  const adjustments: CallAdjustment[] = [];
  let scanned = 0;
  let stillUnpriced = 0;
  let noPriceNow = 0;
  let premiumKept = 0;
  let premiumPossible = 0;
  for await (const c of ledger.scanCalls({ from: q.from, ...(q.to !== undefined ? { to: q.to } : {}) })) {
    if (!matchesModel(c, q.model)) continue;
    scanned++;
    const now = currentCosts(c, pricing, w);
    if (now === undefined) {
      if (c.priced) noPriceNow++;
      else stillUnpriced++;
      continue;
    }
    const old = costsOf(c);
    if (sameCosts(old, now)) continue;
    if (c.priced) {
      // Only for the calls that would change (rare): the same call with each premium the ledger does not record.
      const withPremium = PREMIUMS.map((premium) => currentCosts(c, pricing, w, premium)).filter((x): x is CallCosts => x !== undefined && !sameCosts(x, now));
      if (withPremium.some((x) => sameCosts(old, x))) {
        premiumKept++;
        continue;
      }
      if (withPremium.length > 0) premiumPossible++;
    }
    if (adjustments.length >= MAX_ADJUSTMENTS) {
      throw new RepriceTooLargeError(`more than ${MAX_ADJUSTMENTS} calls would change: re-price a shorter range (--from/--to) or one model (--model) at a time`);
    }
    adjustments.push({ traceId: c.traceId, spanId: c.spanId, periodStart: c.periodStart, userId: c.userId, plan: c.plan, provider: c.provider, model: c.model, old, new: now });
  }
  const summary = auditOf({ by: '-', arguments: [], adjustments }, '', '');
  return { scanned, adjustments, users: summary.users, deltaUsd: summary.deltaUsd, newlyPriced: summary.newlyPriced, stillUnpriced, noPriceNow, premiumKept, premiumPossible };
}

/** `YYYY-MM-DD` (a UTC day) or an ISO instant with a zone; `end`: a day means the end of that day. */
export function parseRepriceDate(v: string, name: string, end: boolean): Date {
  if (typeof v !== 'string' || v.length === 0 || v.length > 40) throw new RepriceInputError(`${name} must be a date (YYYY-MM-DD, UTC) or an ISO instant such as 2026-11-03T12:00:00Z`);
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (day) {
    const d = new Date(`${v}T00:00:00.000Z`);
    if (!Number.isFinite(d.getTime()) || d.toISOString().slice(0, 10) !== v) throw new RepriceInputError(`${name}: ${JSON.stringify(v)} is not a calendar date`);
    return end ? new Date(d.getTime() + 86_400_000) : d;
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(v)) {
    throw new RepriceInputError(`${name} must be a date (YYYY-MM-DD, UTC) or an ISO instant with a zone such as 2026-11-03T12:00:00Z, got ${JSON.stringify(v.slice(0, 40))}`);
  }
  const d = new Date(v);
  if (!Number.isFinite(d.getTime())) throw new RepriceInputError(`${name}: ${JSON.stringify(v)} is not a valid instant`);
  return d;
}

/** A bad re-pricing argument (CLI flag or API field). */
export class RepriceInputError extends Error {}

/** Checks a re-pricing's range and model; returns the query. */
export function repriceQuery(input: { from?: unknown; to?: unknown; model?: unknown }, names = { from: '--from', to: '--to', model: '--model' }): RepriceQuery {
  if (input.from === undefined) throw new RepriceInputError(`${names.from} is required (the first day to re-price)`);
  if (typeof input.from !== 'string') throw new RepriceInputError(`${names.from} must be a string`);
  const from = parseRepriceDate(input.from, names.from, false);
  const q: RepriceQuery = { from };
  if (input.to !== undefined) {
    if (typeof input.to !== 'string') throw new RepriceInputError(`${names.to} must be a string`);
    q.to = parseRepriceDate(input.to, names.to, true);
    if (q.to.getTime() <= from.getTime()) throw new RepriceInputError(`${names.to} must be after ${names.from}`);
  }
  if (input.model !== undefined) {
    // eslint-disable-next-line no-control-regex -- a model name with control characters is refused, not printed
    if (typeof input.model !== 'string' || input.model.trim().length === 0 || input.model.length > 256 || /[\u0000-\u001f\u007f]/.test(input.model)) {
      throw new RepriceInputError(`${names.model} must be a model name of 1 to 256 printable characters`);
    }
    q.model = input.model;
  }
  return q;
}

/** Per-user lines of a re-pricing shown by the API at most (the CLI prints them all, streamed). */
export const MAX_API_REPRICE_USERS = 1000;

/** A plan (and its audit record once applied) as JSON: the API's answer and `tokenmeter reprice --format json`. */
export function repricePlanJson(q: RepriceQuery, plan: RepricePlan, audit: RepriceAudit | undefined, maxUsers = Number.POSITIVE_INFINITY): Record<string, unknown> {
  return {
    dry_run: audit === undefined,
    from: q.from.toISOString(),
    to: q.to?.toISOString() ?? null,
    model: q.model ?? null,
    scanned_calls: plan.scanned,
    calls: plan.adjustments.length,
    newly_priced_calls: plan.newlyPriced,
    still_unpriced_calls: plan.stillUnpriced,
    no_price_now_calls: plan.noPriceNow,
    premium_kept_calls: plan.premiumKept,
    premium_possible_calls: plan.premiumPossible,
    delta_usd: plan.deltaUsd,
    users: plan.users.slice(0, maxUsers).map((u) => ({ period_start: u.periodStart, user: u.userId, plan: u.plan, calls: u.calls, delta_usd: u.deltaUsd })),
    ...(plan.users.length > maxUsers ? { users_truncated: plan.users.length } : {}),
    ...(audit ? { audit: { id: audit.id, at: audit.at, by: audit.by, arguments: audit.arguments, price_ids: audit.priceIds } } : {}),
  };
}
