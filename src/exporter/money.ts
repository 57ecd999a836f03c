import type { Decimal } from 'decimal.js';
import { ExactDecimal } from '../pricing/index.js';

/** Sums of money: pricing's exact Decimal, so that adding millions of per-call costs never rounds. */
export const Money = ExactDecimal;

export function addMoney(a: Decimal.Value, b: Decimal.Value): string {
  return new Money(a).plus(b).toFixed();
}

export function sumMoney(values: Iterable<Decimal.Value>): string {
  let acc = new Money(0);
  for (const v of values) acc = acc.plus(v);
  return acc.toFixed();
}
