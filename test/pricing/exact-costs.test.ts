import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { TOKEN_TYPES, type TokenType } from '../../src/contract/names.js';
import { ExactDecimal, PriceBook } from '../../src/pricing/index.js';
import { scaledToDecimalString } from '../../src/money/index.js';
import type { Usage } from '../../src/usage/usage.js';

/**
 * The per-call costs are computed with integers scaled to the rates' decimals (numbers, BigInt past 2^53) instead
 * of decimal.js. They must be exactly what decimal.js computes: tokens × rate / 10^6 per type, summed.
 */

/** The formula as written with decimal.js (the implementation before the integer arithmetic). */
function reference(usage: Usage, rates: Record<TokenType | 'cache_write_1h', string>): { costUsd: Record<TokenType, string>; totalUsd: string } {
  const cost = (n: number, rate: string) => new ExactDecimal(n).times(rate).div(1_000_000);
  const h = usage.cache_write_1h ?? 0;
  const exact: Record<TokenType, ExactDecimal> = {
    input: cost(usage.input, rates.input),
    cache_read: cost(usage.cache_read, rates.cache_read),
    cache_write: cost(usage.cache_write - h, rates.cache_write).plus(cost(h, rates.cache_write_1h)),
    output: cost(usage.output, rates.output),
    reasoning: cost(usage.reasoning, rates.reasoning),
  };
  let total = new ExactDecimal(0);
  const costUsd = {} as Record<TokenType, string>;
  for (const t of TOKEN_TYPES) {
    total = total.plus(exact[t]);
    costUsd[t] = exact[t].toFixed();
  }
  return { costUsd, totalUsd: total.toFixed() };
}

// Rates as the schema allows them: up to 9 integer digits and 12 decimals (trailing zeros included).
const rateArb = fc
  .tuple(fc.bigInt({ min: 0n, max: 999_999_999n }), fc.integer({ min: 0, max: 12 }), fc.bigInt({ min: 0n, max: 999_999_999_999n }))
  .map(([int, decimals, frac]) => (decimals === 0 ? `${int}` : `${int}.${(frac % 10n ** BigInt(decimals)).toString().padStart(decimals, '0')}`));
const smallRateArb = fc.constantFrom('0', '0.01', '0.075', '0.15', '1.25', '2.50', '3', '15', '75.000', '0.000000000001');

// Counts of real calls, and huge ones (still safe integers) that push the products past 2^53.
const countArb = fc.oneof(fc.integer({ min: 0, max: 5_000_000 }), fc.constant(0), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
const usageArb = fc
  .record({ input: countArb, cache_read: countArb, cache_write: countArb, output: countArb, reasoning: countArb, share: fc.double({ min: 0, max: 1, noNaN: true }) })
  .map(({ share, ...b }): Usage => {
    const usage: Usage = { ...b };
    const h = Math.floor(b.cache_write * share);
    if (h > 0) usage.cache_write_1h = h;
    return usage;
  });

function bookWith(rates: Record<TokenType | 'cache_write_1h', string>): PriceBook {
  return PriceBook.load({ overrides: [{ provider: 'vllm', model: 'm', prices_usd_per_mtok: rates }] });
}

const AT = new Date('2026-11-24T00:00:00Z');

describe('exact per-call costs', () => {
  it('equal decimal.js to the last digit, for any schema-valid rates and any safe-integer counts', () => {
    fc.assert(
      fc.property(
        fc.record({
          input: fc.oneof(rateArb, smallRateArb),
          cache_read: fc.oneof(rateArb, smallRateArb),
          cache_write: fc.oneof(rateArb, smallRateArb),
          cache_write_1h: fc.oneof(rateArb, smallRateArb),
          output: fc.oneof(rateArb, smallRateArb),
          reasoning: fc.oneof(rateArb, smallRateArb),
        }),
        usageArb,
        (rates, usage) => {
          const book = bookWith(rates);
          const r = book.priceStrings({ provider: 'vllm', model: 'm', usage, at: AT });
          expect(r.priced).toBe(true);
          if (!r.priced) return;
          expect({ costUsd: r.costUsd, totalUsd: r.totalUsd }).toEqual(reference(usage, rates));
          // price() hands out the same values as Decimals.
          const d = book.price({ provider: 'vllm', model: 'm', usage, at: AT });
          if (!d.priced) throw new Error('unpriced');
          for (const t of TOKEN_TYPES) expect(d.costUsd[t].toFixed()).toBe(r.costUsd[t]);
          expect(d.totalUsd.toFixed()).toBe(r.totalUsd);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('equal decimal.js for every catalog model and service tier on realistic calls', () => {
    const book = PriceBook.load();
    const count = fc.integer({ min: 0, max: 3_000_000 });
    let checked = 0;
    for (const e of book.entries) {
      for (const tier of Object.keys(e.plans) as (keyof typeof e.plans)[]) {
        fc.assert(
          fc.property(fc.record({ input: count, cache_read: count, cache_write: count, output: count, reasoning: count }), (usage) => {
            const r = book.priceStrings({ provider: e.provider, model: e.model, usage, at: AT, serviceTier: tier });
            if (!r.priced) return;
            checked++;
            expect({ costUsd: r.costUsd, totalUsd: r.totalUsd }).toEqual(reference(usage, r.ratesUsdPerMtok));
          }),
          { numRuns: 20 },
        );
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('writes scaled integers the way decimal.js toFixed() does', () => {
    expect(scaledToDecimalString(0, 9)).toBe('0');
    expect(scaledToDecimalString(0n, 9)).toBe('0');
    expect(scaledToDecimalString(61605, 8)).toBe('0.00061605');
    expect(scaledToDecimalString(3_000_000, 6)).toBe('3');
    expect(scaledToDecimalString(3_500_000, 6)).toBe('3.5');
    expect(scaledToDecimalString(12_345_000_000n, 6)).toBe('12345');
    expect(scaledToDecimalString(7, 0)).toBe('7');
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 40n }), fc.integer({ min: 0, max: 30 }), (units, scale) => {
        expect(scaledToDecimalString(units, scale)).toBe(new ExactDecimal(units.toString()).div(new ExactDecimal(10).pow(scale)).toFixed());
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: 0, max: 10_000 }).map((n) => n * 1000)), fc.integer({ min: 0, max: 45 }), (units, scale) => {
        expect(scaledToDecimalString(units, scale)).toBe(scaledToDecimalString(BigInt(units), scale));
        expect(scaledToDecimalString(units, scale)).toBe(new ExactDecimal(units).div(new ExactDecimal(10).pow(scale)).toFixed());
      }),
      { numRuns: 1000 },
    );
  });
});
