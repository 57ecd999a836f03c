import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Decimal } from 'decimal.js';
import {
  ExactDecimal,
  ExactSum,
  LimbSum,
  addMoney,
  canonicalMoney,
  fractionDigits,
  isCanonicalDecimal,
  scaledToDecimalString,
  sumEquals,
} from '../../src/money/index.js';

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
  let acc = new ExactDecimal(0);
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
        expect(s.toNumber()).toBe(new ExactDecimal(reference(values)).toNumber());
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
        expect(addMoney(a, b)).toBe(new ExactDecimal(a).plus(b).toFixed());
        expect(canonicalMoney(a)).toBe(new ExactDecimal(a).toFixed());
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
          decimalJs = new ExactDecimal(a).toFixed();
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

/** The reference: the decimal.js package itself, at a precision no test value reaches. */
const D = Decimal.clone({ precision: 500 });
const ref = (values: readonly string[]) => values.reduce((a, v) => a.plus(v), new D(0)).toFixed();

describe('the canonical string form (every money writer agrees with decimal.js toFixed)', () => {
  it('ExactSum, LimbSum and canonicalMoney all write the canonical form of the same value', () => {
    fc.assert(
      fc.property(fc.array(plainArb, { minLength: 1, maxLength: 12 }), (values) => {
        const want = ref(values);
        expect(isCanonicalDecimal(want)).toBe(true);
        const e = new ExactSum();
        const l = new LimbSum();
        for (const v of values) {
          e.add(v);
          l.addString(v);
        }
        expect(e.toString()).toBe(want);
        expect(l.toFixed()).toBe(want);
        expect(canonicalMoney(values[0])).toBe(new D(values[0]).toFixed());
      }),
      { numRuns: 1500 },
    );
  });
});

describe('LimbSum (the journal ledger totals)', () => {
  it('writes the usual totals (under 10^9, at most 18 fraction digits) as decimal.js does', () => {
    const usual = fc
      .tuple(fc.integer({ min: 0, max: 999_999_999 }), fc.bigInt({ min: 0n, max: 10n ** 18n - 1n }), fc.integer({ min: 0, max: 18 }))
      .map(([int, frac, d]) => (d === 0 ? String(int) : `${int}.${(frac % 10n ** BigInt(d)).toString().padStart(d, '0')}`));
    fc.assert(
      fc.property(fc.array(usual, { minLength: 1, maxLength: 4 }), (values) => {
        const want = ref(values);
        const l = new LimbSum();
        for (const v of values) l.addString(v);
        // Sums past 10^9 take the general path: both are checked against decimal.js.
        expect(l.toFixed()).toBe(want);
      }),
      { numRuns: 3000 },
    );
    for (const v of ['0', '5', '0.1', '0.000000001', '0.000000000000000001', '0.100000000000000001', '999999999.999999999999999999', '12.5', '0.00001515', '3.00000000100000000']) {
      expect(LimbSum.of(v).toFixed()).toBe(new D(v).toFixed());
    }
  });

  it('adds like decimal.js: strings and other sums, carries across limbs, past 27 integer or 36 fraction digits', () => {
    const wide = fc.oneof(
      plainArb,
      fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 40n }), fc.integer({ min: 0, max: 45 })).map(([digits, d]) => {
        const t = digits.toString().padStart(d + 1, '0');
        return d === 0 ? t : `${t.slice(0, t.length - d)}.${t.slice(t.length - d)}`;
      }),
      fc.constantFrom('999999999999999999999999999.999999999999999999999999999999999999', '0.000000000000000000000000000000000001'),
    );
    fc.assert(
      fc.property(fc.array(wide, { maxLength: 20 }), fc.array(wide, { maxLength: 5 }), (a, b) => {
        const x = new LimbSum();
        for (const v of a) x.addString(v);
        const y = new LimbSum();
        for (const v of b) y.addString(v);
        const copy = x.clone();
        x.add(y);
        expect(x.toFixed()).toBe(ref([...a, ...b]));
        expect(copy.toFixed()).toBe(ref(a));
        expect(x.isZero()).toBe(new D(ref([...a, ...b])).isZero());
        const z = LimbSum.of(b[0] ?? '0');
        z.set(a[0] ?? '0');
        expect(z.toFixed()).toBe(ref([a[0] ?? '0']));
      }),
      { numRuns: 1500 },
    );
  });
});

describe('sumEquals (the per-type costs of a record against its total)', () => {
  it('is true exactly when decimal.js says the parts add up to the total', () => {
    fc.assert(
      fc.property(fc.array(plainArb, { minLength: 1, maxLength: 5 }), fc.boolean(), plainArb, (parts, exact, other) => {
        const total = exact ? ref(parts) : other;
        const scale = Math.max(fractionDigits(total), ...parts.map(fractionDigits));
        expect(sumEquals(parts, total, scale)).toBe(new D(ref(parts)).eq(total));
      }),
      { numRuns: 3000 },
    );
  });

  it('off by one unit in the last place is caught, also past 2^53', () => {
    expect(sumEquals(['0.1', '0.2'], '0.3', 1)).toBe(true);
    expect(sumEquals(['0.1', '0.2'], '0.30000000000000004', 17)).toBe(false);
    expect(sumEquals(['9007199254740993', '0'], '9007199254740993', 0)).toBe(true);
    expect(sumEquals(['9007199254740993', '1'], '9007199254740993', 0)).toBe(false);
    expect(sumEquals(['0.000000000000000000000000000001', '1'], '1.000000000000000000000000000001', 30)).toBe(true);
  });
});

describe('scaledToDecimalString (the integer costs of pricing)', () => {
  it('writes units × 10^-scale as decimal.js does, for numbers and BigInts', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 35n }), fc.integer({ min: 0, max: 38 }), (units, scale) => {
        const want = new D(units.toString()).div(new D(10).pow(scale)).toFixed();
        expect(scaledToDecimalString(units, scale)).toBe(want);
        if (units <= BigInt(Number.MAX_SAFE_INTEGER)) expect(scaledToDecimalString(Number(units), scale)).toBe(want);
      }),
      { numRuns: 3000 },
    );
  });
});
