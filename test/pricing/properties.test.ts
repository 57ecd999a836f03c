import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { Decimal } from 'decimal.js';
import { TOKEN_TYPES } from '../../src/contract/names.js';
import { PriceBook, allocateDiscount, volumeDiscountUsd } from '../../src/pricing/index.js';
import type { ServiceTier } from '../../src/pricing/index.js';
import type { Usage } from '../../src/usage/usage.js';

const book = PriceBook.load();
const AT = new Date('2026-11-24T00:00:00Z');
// Every (model, tier) the catalog can price now, chat models only (embeddings cannot price output).
const targets: { model: string; tier: ServiceTier }[] = [];
for (const e of book.entries) {
  for (const tier of Object.keys(e.plans) as ServiceTier[]) {
    if (e.raw.prices_usd_per_mtok.output !== undefined && !targets.some((t) => t.model === e.model && t.tier === tier)) {
      targets.push({ model: e.model, tier });
    }
  }
}

const count = fc.integer({ min: 0, max: 2_000_000_000 });
const usageArb = fc
  .record({ input: count, cache_read: count, cache_write: count, output: count, reasoning: count, oneHourShare: fc.double({ min: 0, max: 1, noNaN: true }) })
  .map(({ oneHourShare, ...b }): Usage => {
    const usage: Usage = { ...b };
    const h = Math.floor(b.cache_write * oneHourShare);
    if (h > 0) usage.cache_write_1h = h;
    return usage;
  });

describe('pricing properties', () => {
  it('the per-type costs add up exactly to the total', () => {
    fc.assert(
      fc.property(fc.constantFrom(...targets), usageArb, (t, usage) => {
        const r = book.price({ model: t.model, usage, at: AT, serviceTier: t.tier });
        if (!r.priced) return; // e.g. a service tier without long-context rates above the threshold
        let sum = new Decimal(0);
        for (const k of TOKEN_TYPES) sum = Decimal.add(sum, r.costUsd[k]);
        expect(sum.toFixed()).toBe(r.totalUsd.toFixed());
        expect(r.totalUsd.isNegative()).toBe(false);
      }),
      { numRuns: 400 },
    );
  });

  it('cost never decreases when tokens grow', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...targets),
        usageArb,
        fc.constantFrom(...TOKEN_TYPES),
        fc.integer({ min: 1, max: 500_000 }),
        (t, usage, bucket, extra) => {
          const a = book.price({ model: t.model, usage, at: AT, serviceTier: t.tier });
          const grown: Usage = { ...usage, [bucket]: usage[bucket] + extra };
          const b = book.price({ model: t.model, usage: grown, at: AT, serviceTier: t.tier });
          if (!a.priced || !b.priced) return;
          expect(b.totalUsd.gte(a.totalUsd)).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('volume discounts are monotone and never exceed the gross amount', () => {
    const tiers = [
      { above_usd: '10000', percent_off: '10' },
      { above_usd: '50000', percent_off: '15' },
    ];
    const money = fc.integer({ min: 0, max: 10_000_000 }).map((c) => new Decimal(c).div(100));
    fc.assert(
      fc.property(money, money, (prior, gross) => {
        const d = volumeDiscountUsd(tiers, prior, gross);
        expect(d.gte(0) && d.lte(gross)).toBe(true);
        // Splitting a call in two at any point gives the same total discount (marginal = path independent).
        const half = gross.div(2).toDecimalPlaces(2);
        const split = volumeDiscountUsd(tiers, prior, half).plus(volumeDiscountUsd(tiers, prior.plus(half), gross.minus(half)));
        expect(split.toFixed()).toBe(d.toFixed());
      }),
      { numRuns: 300 },
    );
  });

  it('an allocated discount adds up exactly and never exceeds a bucket', () => {
    fc.assert(
      fc.property(fc.constantFrom(...targets), usageArb, fc.integer({ min: 0, max: 100 }), (t, usage, pct) => {
        const r = book.price({ model: t.model, usage, at: AT, serviceTier: t.tier });
        if (!r.priced) return;
        const discount = r.totalUsd.times(pct).div(100).toDecimalPlaces(10, Decimal.ROUND_DOWN);
        const shares = allocateDiscount(r.costUsd, discount);
        let sum = new Decimal(0);
        for (const k of TOKEN_TYPES) {
          sum = sum.plus(shares[k]);
          expect(shares[k].gte(0)).toBe(true);
          expect(shares[k].lte(r.costUsd[k])).toBe(true);
        }
        expect(sum.toFixed()).toBe(discount.toFixed());
      }),
      { numRuns: 300 },
    );
  });
});
