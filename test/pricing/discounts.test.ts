import { describe, it, expect } from 'vitest';
import { Decimal } from 'decimal.js';
import { allocateDiscount, volumeDiscountUsd, volumeDiscountsSchema } from '../../src/pricing/index.js';

const D = (s: string) => new Decimal(s);
const TEN = [{ above_usd: '10000', percent_off: '10' }];
const TWO = [
  { above_usd: '50000', percent_off: '15' },
  { above_usd: '10000', percent_off: '10' },
];

describe('volumeDiscountUsd (marginal, by prior spend this period)', () => {
  it.each([
    ['below the threshold', TEN, '0', '9999.99', '0'],
    ['exactly up to the threshold', TEN, '9000', '1000', '0'],
    ['straddling: only the part above is discounted', TEN, '9500', '1000', '50'],
    ['entirely above', TEN, '20000', '0.3', '0.03'],
    ['float trap 0.1 + 0.2 above the threshold', TEN, '10000.1', '0.2', '0.02'],
    ['two bands, straddling both', TWO, '9000', '42000', '4150'],
    ['two bands, top band only', TWO, '60000', '100', '15'],
    ['no tiers', [], '1000000', '5', '0'],
    ['zero gross', TEN, '20000', '0', '0'],
  ] as const)('%s', (_name, tiers, prior, gross, expected) => {
    expect(volumeDiscountUsd(tiers, D(prior), D(gross)).toFixed()).toBe(expected);
  });

  it('rejects negative amounts', () => {
    expect(() => volumeDiscountUsd(TEN, D('-1'), D('1'))).toThrow(RangeError);
  });

  it('schema: per provider, decimal strings, percent ≤ 100, unique thresholds', () => {
    expect(volumeDiscountsSchema.safeParse({ openai: TEN, anthropic: TWO }).success).toBe(true);
    expect(volumeDiscountsSchema.safeParse({ openai: [{ above_usd: 10000, percent_off: '10' }] }).success).toBe(false);
    expect(volumeDiscountsSchema.safeParse({ openai: [{ above_usd: '1', percent_off: '101' }] }).success).toBe(false);
    expect(volumeDiscountsSchema.safeParse({ openai: [...TEN, ...TEN] }).success).toBe(false);
    expect(volumeDiscountsSchema.safeParse({ openai: [{ above_usd: 'lots', percent_off: 'half' }] }).success).toBe(false);
  });
});

describe('allocateDiscount', () => {
  const cost = { input: D('3'), cache_read: D('0'), cache_write: D('0'), output: D('6'), reasoning: D('1') };
  it('spreads proportionally', () => {
    const s = allocateDiscount(cost, D('1'));
    expect([s.input, s.cache_read, s.cache_write, s.output, s.reasoning].map((d) => d.toFixed())).toEqual(['0.3', '0', '0', '0.6', '0.1']);
  });
  it('puts the rounding remainder on the largest bucket so the sum is exact', () => {
    const c = { input: D('1'), cache_read: D('1'), cache_write: D('0'), output: D('1'), reasoning: D('0') };
    const s = allocateDiscount(c, D('1'));
    expect(s.input.toFixed()).toBe('0.333333333334');
    expect(s.cache_read.toFixed()).toBe('0.333333333333');
    expect(s.output.toFixed()).toBe('0.333333333333');
    expect(s.input.plus(s.cache_read).plus(s.output).toFixed()).toBe('1');
  });
  it('zero cost, zero discount', () => {
    const z = { input: D('0'), cache_read: D('0'), cache_write: D('0'), output: D('0'), reasoning: D('0') };
    expect(Object.values(allocateDiscount(z, D('0'))).every((d) => d.isZero())).toBe(true);
  });
  it('refuses a discount larger than the cost', () => {
    expect(() => allocateDiscount(cost, D('10.01'))).toThrow(RangeError);
  });
});
