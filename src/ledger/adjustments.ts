/**
 * Price adjustments (issue 18, re-pricing): a call's cost recomputed from its stored token counts with a later
 * price, applied to the ledger in one transaction with an audit record. The shapes both ledgers share and the
 * checks of an adjustment batch; the planning (which calls, what price) is in src/report/reprice.ts.
 *
 * An adjustment replaces a call's costs (per type, fee, gross, discount, net) and its price id; tokens, requests,
 * user, plan, provider and model stay as they were committed (a call priced for the first time keeps the model
 * name it was stored under). Each one names the cost it replaces (`old`), so applying a batch computed from a
 * ledger that changed meanwhile is refused, and running the same re-pricing twice changes nothing the second time.
 */
import { TOKEN_TYPES, type TokenType } from '../contract/names.js';
import { ExactDecimal, isCanonicalDecimal } from '../money/index.js';
import { LedgerError } from './errors.js';
import type { LedgerRecord } from './types.js';

/** The cost side of a call, as the ledger holds it (net of any volume discount). */
export interface CallCosts {
  priced: boolean;
  priceId?: string;
  /** Per-type costs, net. */
  costUsd: Record<TokenType, string>;
  /** The per-call fee part, net, when the call has one. */
  feeCostUsd?: string;
  /** Net total: the five per-type costs + fee. */
  totalCostUsd: string;
  /** Before the volume discount. */
  grossCostUsd: string;
  discountUsd: string;
}

export interface CallAdjustment {
  traceId: string;
  spanId: string;
  /** ISO instant of the call's billing period. */
  periodStart: string;
  userId: string;
  plan: string;
  provider: string;
  model: string;
  old: CallCosts;
  new: CallCosts;
}

export interface RepriceRequest {
  /** Who asked: the OS user or `--by`. */
  by: string;
  /** The command's arguments (or the API request's fields), as given. */
  arguments: string[];
  adjustments: CallAdjustment[];
}

/** One (period, user, plan)'s part of a re-pricing. */
export interface AuditUserLine {
  periodStart: string;
  userId: string;
  plan: string;
  calls: number;
  /** new − old, exact (negative when the price went down). */
  deltaUsd: string;
}

/** The audit record of one applied re-pricing. */
export interface RepriceAudit {
  id: string;
  /** ISO instant it was applied. */
  at: string;
  by: string;
  arguments: string[];
  calls: number;
  /** Calls that had no price before. */
  newlyPriced: number;
  deltaUsd: string;
  /** Period starts (ISO) it touched, sorted. */
  periods: string[];
  /** The (old, new) price id pairs, sorted; old null for calls that had no price. */
  priceIds: [old: string | null, new: string][];
  /** Per (period, user, plan), sorted by period, user, plan (byte order). */
  users: AuditUserLine[];
}

/** Largest number of calls one re-pricing may change (one journal entry / one transaction holds them all). */
export const MAX_ADJUSTMENTS = 250_000;
const MAX_TEXT = 4096;

export const callKey = (traceId: string, spanId: string): string => `${traceId}${spanId}`;

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function checkCosts(c: CallCosts, where: string, mustBePriced: boolean): void {
  if (typeof c !== 'object' || c === null) throw new LedgerError(`${where}: missing`);
  if (mustBePriced && (c.priced !== true || typeof c.priceId !== 'string' || c.priceId.length === 0)) throw new LedgerError(`${where}: a new cost must be priced with a price id`);
  const money = (v: unknown, name: string) => {
    if (typeof v !== 'string' || !isCanonicalDecimal(v)) throw new LedgerError(`${where}.${name}: not an exact non-negative decimal string`);
  };
  for (const t of TOKEN_TYPES) money(c.costUsd?.[t], `costUsd.${t}`);
  if (c.feeCostUsd !== undefined) money(c.feeCostUsd, 'feeCostUsd');
  money(c.totalCostUsd, 'totalCostUsd');
  money(c.grossCostUsd, 'grossCostUsd');
  money(c.discountUsd, 'discountUsd');
  let sum = new ExactDecimal(c.feeCostUsd ?? '0');
  for (const t of TOKEN_TYPES) sum = sum.plus(c.costUsd[t]);
  if (!sum.eq(c.totalCostUsd)) throw new LedgerError(`${where}: per-type costs and fee add up to ${sum.toFixed()}, not totalCostUsd ${c.totalCostUsd}`);
  if (!new ExactDecimal(c.grossCostUsd).minus(c.discountUsd).eq(c.totalCostUsd)) throw new LedgerError(`${where}: gross − discount ≠ totalCostUsd`);
}

/** Checks a batch (shape, money syntax, sums, no call twice); throws LedgerError naming the first problem. */
export function validateRepriceRequest(req: RepriceRequest): void {
  if (typeof req !== 'object' || req === null) throw new LedgerError('re-pricing: the request must be an object');
  if (typeof req.by !== 'string' || req.by.length === 0 || req.by.length > 256) throw new LedgerError('re-pricing: "by" must be 1 to 256 characters');
  if (!Array.isArray(req.arguments) || req.arguments.some((a) => typeof a !== 'string' || a.length > MAX_TEXT) || req.arguments.length > 64) {
    throw new LedgerError('re-pricing: "arguments" must be at most 64 strings');
  }
  if (!Array.isArray(req.adjustments) || req.adjustments.length === 0) throw new LedgerError('re-pricing: no adjustments');
  if (req.adjustments.length > MAX_ADJUSTMENTS) throw new LedgerError(`re-pricing: ${req.adjustments.length} calls in one re-pricing, at most ${MAX_ADJUSTMENTS}: narrow --from/--to or --model`);
  const seen = new Set<string>();
  req.adjustments.forEach((a, i) => {
    const where = `re-pricing: adjustment ${i}`;
    if (typeof a.traceId !== 'string' || !/^[0-9a-f]{32}$/.test(a.traceId) || typeof a.spanId !== 'string' || !/^[0-9a-f]{16}$/.test(a.spanId)) throw new LedgerError(`${where}: bad trace or span id`);
    for (const k of ['userId', 'plan', 'provider', 'model', 'periodStart'] as const) {
      if (typeof a[k] !== 'string' || a[k].length > MAX_TEXT) throw new LedgerError(`${where}: bad ${k}`);
    }
    if (!Number.isFinite(Date.parse(a.periodStart))) throw new LedgerError(`${where}: bad periodStart`);
    checkCosts(a.old, `${where}.old`, false);
    checkCosts(a.new, `${where}.new`, true);
    const k = callKey(a.traceId, a.spanId);
    if (seen.has(k)) throw new LedgerError(`${where}: the call ${a.traceId}/${a.spanId} twice`);
    seen.add(k);
  });
}

/** Whether two cost sides are the same (price id and every amount). */
export function sameCosts(a: CallCosts, b: CallCosts): boolean {
  if (a.priced !== b.priced || (a.priceId ?? null) !== (b.priceId ?? null)) return false;
  // Amounts are canonical decimal strings almost always: equal strings are equal amounts (no parsing).
  if (
    a.totalCostUsd === b.totalCostUsd && a.grossCostUsd === b.grossCostUsd && a.discountUsd === b.discountUsd && a.feeCostUsd === b.feeCostUsd &&
    TOKEN_TYPES.every((t) => a.costUsd[t] === b.costUsd[t])
  ) {
    return true;
  }
  if ((a.feeCostUsd === undefined) !== (b.feeCostUsd === undefined)) return false;
  if (a.feeCostUsd !== undefined && !new ExactDecimal(a.feeCostUsd).eq(b.feeCostUsd!)) return false;
  for (const t of TOKEN_TYPES) if (!new ExactDecimal(a.costUsd[t]).eq(b.costUsd[t])) return false;
  return new ExactDecimal(a.totalCostUsd).eq(b.totalCostUsd) && new ExactDecimal(a.grossCostUsd).eq(b.grossCostUsd) && new ExactDecimal(a.discountUsd).eq(b.discountUsd);
}

/** The cost side of a committed record (as commit / scanCalls return it). */
export function costsOf(r: LedgerRecord): CallCosts {
  const c: CallCosts = {
    priced: r.priced,
    costUsd: { ...r.costUsd },
    totalCostUsd: r.totalCostUsd,
    grossCostUsd: r.grossCostUsd ?? r.totalCostUsd,
    discountUsd: r.discountUsd ?? '0',
  };
  if (r.priceId !== undefined) c.priceId = r.priceId;
  if (r.feeCostUsd !== undefined) c.feeCostUsd = r.feeCostUsd;
  return c;
}

/** A committed record with an adjustment's new costs in place of its own. */
export function adjustedRecord<T extends LedgerRecord>(r: T, c: CallCosts): T {
  const out: T = { ...r, priced: c.priced, costUsd: { ...c.costUsd }, totalCostUsd: c.totalCostUsd };
  if (c.priceId !== undefined) out.priceId = c.priceId;
  else delete out.priceId;
  if (c.feeCostUsd !== undefined) out.feeCostUsd = c.feeCostUsd;
  else delete out.feeCostUsd;
  if (new ExactDecimal(c.discountUsd).isZero()) {
    delete out.discountUsd;
    delete out.grossCostUsd;
  } else {
    out.discountUsd = c.discountUsd;
    out.grossCostUsd = c.grossCostUsd;
  }
  return out;
}

/** The audit record of a batch (everything but id and time, which the ledger sets when it applies it). */
export function auditOf(req: RepriceRequest, id: string, at: string): RepriceAudit {
  const users = new Map<string, AuditUserLine & { sum: ExactDecimal }>();
  const pairs = new Map<string, [string | null, string]>();
  let total = new ExactDecimal(0);
  let newlyPriced = 0;
  for (const a of req.adjustments) {
    const delta = new ExactDecimal(a.new.totalCostUsd).minus(a.old.totalCostUsd);
    total = total.plus(delta);
    if (!a.old.priced) newlyPriced++;
    const ps = new Date(a.periodStart).toISOString();
    const k = `${ps}\u0000${a.userId}\u0000${a.plan}`;
    let u = users.get(k);
    if (!u) users.set(k, (u = { periodStart: ps, userId: a.userId, plan: a.plan, calls: 0, deltaUsd: '0', sum: new ExactDecimal(0) }));
    u.calls++;
    u.sum = u.sum.plus(delta);
    const pair: [string | null, string] = [a.old.priced ? (a.old.priceId ?? null) : null, a.new.priceId!];
    pairs.set(JSON.stringify(pair), pair);
  }
  const lines = [...users.values()]
    .map(({ sum, ...u }) => ({ ...u, deltaUsd: sum.toFixed() }))
    .sort((x, y) => cmp(x.periodStart, y.periodStart) || cmp(x.userId, y.userId) || cmp(x.plan, y.plan));
  return {
    id,
    at,
    by: req.by,
    arguments: [...req.arguments],
    calls: req.adjustments.length,
    newlyPriced,
    deltaUsd: total.toFixed(),
    periods: [...new Set(lines.map((u) => u.periodStart))].sort(),
    priceIds: [...pairs.values()].sort((x, y) => cmp(x[0] ?? '', y[0] ?? '') || cmp(x[1], y[1])),
    users: lines,
  };
}

/** A new audit id: the time and random bits (sortable, unguessable enough to name in a report). */
export function newAuditId(atMillis: number, random: () => string): string {
  return `rp-${new Date(atMillis).toISOString().replace(/[-:.]/g, '').slice(0, 15)}z-${random()}`;
}

/** `sum + delta` as a canonical decimal; refuses a negative result (a total cannot go below zero). */
export function shifted(sum: string, delta: string, what: string): string {
  const v = new ExactDecimal(sum).plus(delta);
  if (v.isNegative() && !v.isZero()) throw new LedgerError(`re-pricing would make ${what} negative (${v.toFixed()})`);
  return v.toFixed();
}
