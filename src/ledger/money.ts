/**
 * An exact, mutable running sum of non-negative decimal amounts for the journal ledger's totals. decimal.js
 * allocates on every addition (about 0.5 µs with the string parse), and the ledger adds each call to five totals;
 * this keeps the common case in five integer limbs (base 10^12: 24 integer and 36 fraction digits, every limb an
 * exact integer in a double) and switches a total to ExactDecimal only when a value does not fit.
 */
import { ExactDecimal } from '../pricing/index.js';

const BASE = 1e12;
const FRACTION_DIGITS = 36;
const INTEGER_DIGITS = 24;
const POW10 = Array.from({ length: 13 }, (_, k) => 10 ** k);
const DECIMAL = /^\d+(\.\d+)?$/;

/** Fraction digits [start, start + 12) of `f` as a limb (missing digits are zeros). */
function chunk(f: string, start: number): number {
  if (start >= f.length) return 0;
  const part = f.slice(start, start + 12);
  return Number(part) * POW10[12 - part.length];
}

export class Money {
  /** value = (l4·10^48 + l3·10^36 + l2·10^24 + l1·10^12 + l0) · 10^-36, each limb in [0, 10^12). */
  l0 = 0;
  l1 = 0;
  l2 = 0;
  l3 = 0;
  l4 = 0;
  /** Set once a value did not fit the limbs: the whole total is then this. */
  big: ExactDecimal | undefined;

  /** A non-negative decimal string (digits, optionally a point and more digits), e.g. "0.005875". */
  static of(s: string): Money {
    const m = new Money();
    m.addString(s);
    return m;
  }

  /** Makes this the value of `s` (a reusable scratch value). */
  set(s: string): void {
    this.l0 = this.l1 = this.l2 = this.l3 = this.l4 = 0;
    this.big = undefined;
    this.addString(s);
  }

  clone(): Money {
    const m = new Money();
    m.add(this);
    return m;
  }

  isZero(): boolean {
    return this.big ? this.big.isZero() : this.l0 === 0 && this.l1 === 0 && this.l2 === 0 && this.l3 === 0 && this.l4 === 0;
  }

  addString(s: string): void {
    if (s === '0') return;
    const dot = s.indexOf('.');
    const intLen = dot < 0 ? s.length : dot;
    const fracLen = dot < 0 ? 0 : s.length - dot - 1;
    if (this.big || intLen > INTEGER_DIGITS || fracLen > FRACTION_DIGITS || !DECIMAL.test(s)) {
      this.big = this.#toBig().plus(s); // throws on anything that is not a decimal number
      return;
    }
    const int = dot < 0 ? s : s.slice(0, dot);
    const hi = intLen > 12 ? Number(int.slice(0, intLen - 12)) : 0;
    const lo = Number(intLen > 12 ? int.slice(intLen - 12) : int);
    if (fracLen === 0) this.#addLimbs(0, 0, 0, lo, hi);
    else {
      const f = s.slice(dot + 1);
      this.#addLimbs(chunk(f, 24), chunk(f, 12), chunk(f, 0), lo, hi);
    }
  }

  add(m: Money): void {
    if (m.big || this.big) this.big = this.#toBig().plus(m.toFixed());
    else this.#addLimbs(m.l0, m.l1, m.l2, m.l3, m.l4);
  }

  #addLimbs(a0: number, a1: number, a2: number, a3: number, a4: number): void {
    // Each limb is below 10^12, so a sum carries at most 1.
    let v = this.l0 + a0;
    let c = v >= BASE ? 1 : 0;
    this.l0 = v - c * BASE;
    v = this.l1 + a1 + c;
    c = v >= BASE ? 1 : 0;
    this.l1 = v - c * BASE;
    v = this.l2 + a2 + c;
    c = v >= BASE ? 1 : 0;
    this.l2 = v - c * BASE;
    v = this.l3 + a3 + c;
    c = v >= BASE ? 1 : 0;
    this.l3 = v - c * BASE;
    this.l4 += a4 + c;
    if (this.l4 >= BASE) {
      // Beyond 24 integer digits: continue exactly in decimal.js (the limbs alone would lose the carry).
      const big = new ExactDecimal(this.l4).times('1e48').plus(this.#limbString(false));
      this.l0 = this.l1 = this.l2 = this.l3 = this.l4 = 0;
      this.big = big;
    }
  }

  #toBig(): ExactDecimal {
    return this.big ?? new ExactDecimal(this.toFixed());
  }

  /** The digits of l3..l0 as a decimal string (l4 too when `withHigh`). */
  #limbString(withHigh: boolean): string {
    let int = withHigh && this.l4 > 0 ? String(this.l4) + String(this.l3).padStart(12, '0') : String(this.l3);
    if (!withHigh && int.length === 0) int = '0';
    if (this.l0 === 0 && this.l1 === 0 && this.l2 === 0) return int;
    let frac = String(this.l2).padStart(12, '0');
    if (this.l0 !== 0 || this.l1 !== 0) {
      frac += String(this.l1).padStart(12, '0');
      if (this.l0 !== 0) frac += String(this.l0).padStart(12, '0');
    }
    let end = frac.length;
    while (frac.charCodeAt(end - 1) === 48) end--;
    return `${int}.${frac.slice(0, end)}`;
  }

  /** The exact value as decimal.js `toFixed()` writes it ("0", "3", "0.00047125"). */
  toFixed(): string {
    return this.big ? this.big.toFixed() : this.#limbString(true);
  }
}
