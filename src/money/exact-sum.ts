/**
 * `ExactSum`: an exact running sum of decimal strings for the exporter's per-record counters, and the canonical
 * string form every module writes money in (see index.ts).
 */
import type { Decimal } from 'decimal.js';
import { ExactDecimal } from './exact-decimal.js';

/** 10^0 .. 10^15: scaling by these keeps a number exact while the product stays a safe integer. */
const POW10 = Array.from({ length: 16 }, (_, i) => 10 ** i);
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * An exact sum of decimal strings, cheaper than decimal.js on the per-record path: the value is kept as an
 * integer count of 10^-scale units, a JS number while it is a safe integer and a BigInt past that. Any string
 * that is not a plain non-negative decimal ("1e-7", "-0.5") moves the sum to ExactDecimal for good, so
 * the result is always what ExactDecimal would give (exact; it rounds only past 200 significant digits).
 */
export class ExactSum {
  private units = 0;
  private big: bigint | undefined;
  private scale = 0;
  private slow: ExactDecimal | undefined;

  constructor(initial?: string) {
    if (initial !== undefined) this.add(initial);
  }

  add(value: string): void {
    if (this.slow === undefined) {
      // One pass over a plain decimal ("123", "0.00061605"): its digits as a number while they fit (15 digits
      // always do), where the dot is; anything else goes to decimal.js.
      const len = value.length;
      let n = 0;
      let dot = -1;
      let plain = len > 0;
      for (let i = 0; i < len; i++) {
        const c = value.charCodeAt(i);
        if (c >= 48 && c <= 57) n = n * 10 + (c - 48);
        else if (c === 46 && dot === -1 && i > 0 && i < len - 1) dot = i;
        else {
          plain = false;
          break;
        }
      }
      if (plain) {
        const decimals = dot === -1 ? 0 : len - dot - 1;
        const digits = dot === -1 ? len : len - 1;
        this.addDigits(value, dot, digits <= 15 ? n : Number.NaN, decimals);
        return;
      }
    }
    this.slow = (this.slow ?? new ExactDecimal(this.toString())).plus(value);
  }

  /** Adds a plain decimal with `decimals` decimals; `n` is its digits as a number, NaN when they may not fit. */
  private addDigits(value: string, dot: number, n: number, decimals: number): void {
    if (decimals > this.scale) this.rescale(decimals);
    const shift = this.scale - decimals;
    if (this.big === undefined && n === n && shift <= 15) {
      const sum = this.units + n * POW10[shift]!;
      if (sum <= MAX_SAFE) {
        this.units = sum;
        return;
      }
    }
    const digits = dot === -1 ? value : value.slice(0, dot) + value.slice(dot + 1);
    this.big = (this.big ?? BigInt(this.units)) + BigInt(digits) * 10n ** BigInt(shift);
  }

  private rescale(scale: number): void {
    const shift = scale - this.scale;
    this.scale = scale;
    if (this.big === undefined && shift <= 15) {
      const u = this.units * POW10[shift];
      if (u <= MAX_SAFE) {
        this.units = u;
        return;
      }
    }
    this.big = (this.big ?? BigInt(this.units)) * 10n ** BigInt(shift);
  }

  /** The exact sum, written as decimal.js's toFixed() writes it. */
  toString(): string {
    if (this.slow !== undefined) return this.slow.toFixed();
    const units = this.big ?? this.units;
    if (units == 0) return '0';
    let s = String(units);
    const scale = this.scale;
    if (s.length <= scale) s = '0'.repeat(scale - s.length + 1) + s;
    const cut = s.length - scale;
    let end = s.length;
    while (end > cut && s.charCodeAt(end - 1) === 48) end--;
    return end === cut ? s.slice(0, cut) : `${s.slice(0, cut)}.${s.slice(cut, end)}`;
  }

  toNumber(): number {
    return Number(this.toString());
  }
}

/** a + b, exact, as a decimal string (decimal.js toFixed() form). */
export function addMoney(a: Decimal.Value, b: Decimal.Value): string {
  if (typeof a === 'string' && typeof b === 'string') {
    const s = new ExactSum(a);
    s.add(b);
    return s.toString();
  }
  return new ExactDecimal(a).plus(b).toFixed();
}

/** The exact decimal string of `value` in decimal.js toFixed() form ("0.50" → "0.5"). */
export function canonicalMoney(value: string): string {
  // Rollups from the journal ledger are already in that form (one per touched user per request): a scan, not a
  // parse and a format.
  if (isCanonicalDecimal(value)) return value;
  return new ExactSum(value).toString();
}

/**
 * True for a plain non-negative decimal as decimal.js toFixed() writes it: "0", or digits without a leading
 * zero, optionally "." and digits not ending in zero ("0.5", "12.25"; not "00", "0.50", "1.", ".5", "1e3").
 */
export function isCanonicalDecimal(value: string): boolean {
  const len = value.length;
  if (len === 0) return false;
  const first = value.charCodeAt(0);
  if (first < 48 || first > 57) return false;
  let i = 1;
  if (first === 48) {
    if (len === 1) return true;
  } else {
    while (i < len) {
      const c = value.charCodeAt(i);
      if (c < 48 || c > 57) break;
      i++;
    }
    if (i === len) return true;
  }
  // A fraction must follow: "." then at least one digit, the last not a zero.
  if (value.charCodeAt(i) !== 46 || i === len - 1) return false;
  for (let k = i + 1; k < len; k++) {
    const c = value.charCodeAt(k);
    if (c < 48 || c > 57) return false;
  }
  return value.charCodeAt(len - 1) !== 48;
}

export function sumMoney(values: Iterable<Decimal.Value>): string {
  let acc = new ExactDecimal(0);
  for (const v of values) acc = acc.plus(v);
  return acc.toFixed();
}
