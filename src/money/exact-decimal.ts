import { Decimal } from 'decimal.js';

/**
 * Money arithmetic happens in a private high-precision Decimal so that no product or sum is ever rounded
 * (the default 20 significant digits would round a 10^12-token call). Results handed to other modules are
 * converted back to the shared `Decimal` class from their exact string form (construction never rounds).
 */
export const ExactDecimal = Decimal.clone({ precision: 200, rounding: Decimal.ROUND_HALF_EVEN, toExpNeg: -100, toExpPos: 100 });
export type ExactDecimal = InstanceType<typeof ExactDecimal>;

export function toShared(d: ExactDecimal | Decimal): Decimal {
  return new Decimal(d.toFixed());
}

export function toExact(d: Decimal | ExactDecimal | string | number): ExactDecimal {
  return new ExactDecimal(typeof d === 'object' ? d.toFixed() : d);
}
