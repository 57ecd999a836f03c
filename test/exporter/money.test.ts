import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ExactSum, Money, addMoney, canonicalMoney, isCanonicalDecimal } from '../../src/exporter/money.js';

/** Plain decimal strings as costs are written: short ones of real calls, long ones past 2^53, trailing zeros. */
const plainArb = fc.oneof(
  fc.tuple(fc.nat(1000), fc.nat(99_999_999), fc.integer({ min: 0, max: 12 })).map(([i, f, d]) => (d === 0 ? `${i}` : `${i}.${String(f).padStart(d, '0').slice(0, d)}`)),
  fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 30n }), fc.integer({ min: 0, max: 40 })).map(([digits, d]) => {
    const s = digits.toString().padStart(d + 1, '0');
    return d === 0 ? s : `${s.slice(0, s.length - d)}.${s.slice(s.length - d)}`;
  }),
  fc.constantFrom('0', '0.0', '00.50', '007', '0.000000000001', '9007199254740991', '9007199254740993', '0.1', '0.2'),
);
// Strings decimal.js accepts that are not plain: they move the sum to decimal.js.
const otherArb = fc.constantFrom('1e-7', '2.5E3', '-0.5', '-3', '.5', '5.');

function reference(values: string[]): string {
  let acc = new Money(0);
  for (const v of values) acc = acc.plus(v);
  return acc.toFixed();
}

describe('ExactSum', () => {
  it('sums plain decimal strings exactly as decimal.js does', () => {
    fc.assert(
      fc.property(fc.array(plainArb, { maxLength: 30 }), (values) => {
        const s = new ExactSum();
        for (const v of values) s.add(v);
        expect(s.toString()).toBe(reference(values));
        expect(s.toNumber()).toBe(new Money(reference(values)).toNumber());
      }),
      { numRuns: 2000 },
    );
  });

  it('falls back to decimal.js for other spellings, with the same result', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(plainArb, otherArb), { maxLength: 20 }), (values) => {
        const s = new ExactSum();
        for (const v of values) s.add(v);
        expect(s.toString()).toBe(reference(values));
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects what decimal.js rejects', () => {
    expect(() => new ExactSum('abc')).toThrow();
    expect(() => addMoney('0.1', 'x')).toThrow();
  });

  it('keeps a million small additions exact (0.1 + 0.2 = 0.3)', () => {
    const s = new ExactSum('0.1');
    s.add('0.2');
    expect(s.toString()).toBe('0.3');
    for (let i = 0; i < 1_000_000; i++) s.add('0.000000001');
    expect(s.toString()).toBe('0.301');
  });
});

describe('addMoney and canonicalMoney', () => {
  it('equal decimal.js', () => {
    fc.assert(
      fc.property(fc.oneof(plainArb, otherArb), fc.oneof(plainArb, otherArb), (a, b) => {
        expect(addMoney(a, b)).toBe(new Money(a).plus(b).toFixed());
        expect(canonicalMoney(a)).toBe(new Money(a).toFixed());
      }),
      { numRuns: 2000 },
    );
    expect(addMoney(1, '0.5')).toBe('1.5');
  });

  it('canonicalMoney passes canonical spellings through and only those (isCanonicalDecimal)', () => {
    const spelling = fc
      .tuple(fc.stringMatching(/^[0-9]{0,22}$/), fc.constantFrom('', '.'), fc.stringMatching(/^[0-9]{0,22}$/), fc.constantFrom('', '', '', 'e3', '-', ' '))
      .map(([i, dot, f, junk]) => `${i}${dot}${f}${junk}`);
    fc.assert(
      fc.property(fc.oneof(plainArb, otherArb, spelling), (a) => {
        let decimalJs: string | undefined;
        try {
          decimalJs = new Money(a).toFixed();
        } catch {
          decimalJs = undefined;
        }
        if (isCanonicalDecimal(a)) expect(decimalJs).toBe(a);
        if (decimalJs !== undefined && !/^-/.test(decimalJs) && decimalJs === a) expect(isCanonicalDecimal(a)).toBe(true);
        if (decimalJs !== undefined) expect(canonicalMoney(a)).toBe(decimalJs);
      }),
      { numRuns: 5000 },
    );
    for (const s of ['0', '7', '10', '0.5', '12.25', '123456789012345678901.000000000000000000001']) expect(isCanonicalDecimal(s)).toBe(true);
    for (const s of ['', '00', '01', '0.50', '1.', '.5', '1e3', '-1', '1.0', ' 1', '0.']) expect(isCanonicalDecimal(s)).toBe(false);
  });
});
