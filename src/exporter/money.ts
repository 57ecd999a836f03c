import { Decimal } from 'decimal.js';

/**
 * Sums of money: a Decimal with ample precision so that adding millions of per-call costs never rounds, and
 * plain notation (no exponent) in the strings the API returns.
 */
export const Money = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_EVEN, toExpNeg: -60, toExpPos: 60 });

export function addMoney(a: Decimal.Value, b: Decimal.Value): string {
  return new Money(a).plus(b).toFixed();
}

export function sumMoney(values: Iterable<Decimal.Value>): string {
  let acc = new Money(0);
  for (const v of values) acc = acc.plus(v);
  return acc.toFixed();
}
