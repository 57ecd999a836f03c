/**
 * Volume discounts by monthly spend per provider, and spreading a discount over the five token types.
 * Pure functions of their inputs, so the ledger can apply them inside its commit with the period's prior spend.
 */
import { Decimal } from 'decimal.js';
import { z } from 'zod';
import { TOKEN_TYPES, type TokenType } from '../contract/names.js';
import { decimalStringSchema } from './catalog-schema.js';
import { ExactDecimal, toExact, toShared } from './decimal.js';

const DECIMAL_RE = /^\d{1,9}(\.\d{1,12})?$/;

/**
 * One marginal tier: the part of the period's spend above `above_usd` is discounted by `percent_off`, until the
 * next tier's threshold takes over (like tax brackets). `{above_usd: "10000", percent_off: "10"}` = 10% off
 * the part above $10,000.
 */
export const volumeDiscountTierSchema = z.strictObject({
  above_usd: decimalStringSchema,
  // zod runs refinements even after a failed regex, so guard before constructing a Decimal.
  percent_off: decimalStringSchema.refine((s) => !DECIMAL_RE.test(s) || new Decimal(s).lte(100), { error: 'must be at most 100' }),
});
export type VolumeDiscountTier = z.infer<typeof volumeDiscountTierSchema>;

const tierListSchema = z
  .array(volumeDiscountTierSchema)
  .max(100)
  .refine((tiers) => new Set(tiers.map((t) => (DECIMAL_RE.test(t.above_usd) ? new Decimal(t.above_usd).toFixed() : t.above_usd))).size === tiers.length, {
    error: 'two tiers have the same above_usd',
  });

/** Per provider (catalog name or OTel provider name): its marginal tiers. */
export const volumeDiscountsSchema = z.record(z.string().min(1).max(100), tierListSchema);
export type VolumeDiscounts = z.infer<typeof volumeDiscountsSchema>;

/**
 * The discount in USD on a call costing `grossUsd` when the provider's spend earlier in the period was
 * `priorSpendUsd` (gross, before discounts). Marginal: a call straddling a threshold is discounted only on the
 * part above it. Exact; never rounds.
 */
export function volumeDiscountUsd(tiers: readonly VolumeDiscountTier[], priorSpendUsd: Decimal, grossUsd: Decimal): Decimal {
  const prior = toExact(priorSpendUsd);
  const gross = toExact(grossUsd);
  if (prior.isNegative() || gross.isNegative() || !prior.isFinite() || !gross.isFinite()) {
    throw new RangeError('volumeDiscountUsd: spend amounts must be finite and non-negative');
  }
  const bands = tiers
    .map((t) => ({ above: new ExactDecimal(t.above_usd), percent: new ExactDecimal(t.percent_off) }))
    .sort((a, b) => a.above.comparedTo(b.above));
  const start = prior;
  const end = prior.plus(gross);
  let discount = new ExactDecimal(0);
  for (let i = 0; i < bands.length; i++) {
    const lo = bands[i].above;
    const hi = i + 1 < bands.length ? bands[i + 1].above : undefined;
    const from = ExactDecimal.max(start, lo);
    const to = hi === undefined ? end : ExactDecimal.min(end, hi);
    if (to.gt(from)) discount = discount.plus(to.minus(from).times(bands[i].percent).div(100));
  }
  return toShared(discount);
}

/** Decimal places of each per-type share; the remainder goes to the largest bucket so the sum is exact. */
export const ALLOCATION_DECIMAL_PLACES = 12;

/**
 * Spreads `discountUsd` over the token types (and, when given, the per-call fee part: key `fee`) in proportion to
 * their cost. Each share is rounded down to ALLOCATION_DECIMAL_PLACES and the remainder is put on the largest part
 * (first in TOKEN_TYPES order, then `fee`, on a tie), so the shares add up exactly to `discountUsd`. Returns the
 * discount per part (subtract it from the part's cost to get the net cost).
 */
export function allocateDiscount<K extends TokenType | 'fee' = TokenType>(costUsd: Record<K, Decimal>, discountUsd: Decimal): Record<K, Decimal> {
  const keys = (Object.keys(costUsd) as K[]).sort((a, b) => partOrder(a) - partOrder(b));
  const costs = {} as Record<K, ExactDecimal>;
  let total = new ExactDecimal(0);
  for (const t of keys) {
    const c = toExact(costUsd[t]);
    if (c.isNegative() || !c.isFinite()) throw new RangeError(`allocateDiscount: cost of ${t} must be finite and non-negative`);
    costs[t] = c;
    total = total.plus(c);
  }
  const discount = toExact(discountUsd);
  if (discount.isNegative() || !discount.isFinite()) throw new RangeError('allocateDiscount: discount must be finite and non-negative');
  if (discount.gt(total)) throw new RangeError('allocateDiscount: discount exceeds the cost it is spread over');

  const shares = {} as Record<K, ExactDecimal>;
  let largest: K = keys[0];
  let allocated = new ExactDecimal(0);
  for (const t of keys) {
    const share = total.isZero()
      ? new ExactDecimal(0)
      : discount.times(costs[t]).div(total).toDecimalPlaces(ALLOCATION_DECIMAL_PLACES, ExactDecimal.ROUND_DOWN);
    shares[t] = share;
    allocated = allocated.plus(share);
    if (costs[t].gt(costs[largest])) largest = t;
  }
  shares[largest] = shares[largest].plus(discount.minus(allocated));
  const out = {} as Record<K, Decimal>;
  for (const t of keys) out[t] = toShared(shares[t]);
  return out;
}

function partOrder(k: string): number {
  const i = (TOKEN_TYPES as readonly string[]).indexOf(k);
  return i === -1 ? TOKEN_TYPES.length : i;
}
