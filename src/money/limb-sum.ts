/**
 * `LimbSum`: an exact, mutable running sum of non-negative decimal amounts (the journal ledger's totals). decimal.js
 * allocates on every addition (about 0.5 µs with the string parse), and the ledger adds each call to five totals;
 * this keeps the common case in seven integer limbs (base 10^9: 27 integer and 36 fraction digits, every limb a
 * small integer) and switches a total to ExactDecimal only when a value does not fit.
 */
import { ExactDecimal } from './exact-decimal.js';

const BASE = 1e9;
const FRACTION_DIGITS = 36;
const INTEGER_DIGITS = 27;
const POW10 = Array.from({ length: 10 }, (_, k) => 10 ** k);
const DECIMAL = /^\d+(\.\d+)?$/;

/** Fraction digits [start, start + 9) of `f` as a limb (missing digits are zeros). */
function chunk(f: string, start: number): number {
  if (start >= f.length) return 0;
  const part = f.slice(start, start + 9);
  return Number(part) * POW10[9 - part.length];
}

/** Integer digits: the 9 ending `end` digits before the end of `int` (a limb). */
function intChunk(int: string, fromEnd: number): number {
  const end = int.length - fromEnd;
  if (end <= 0) return 0;
  return Number(int.slice(Math.max(0, end - 9), end));
}

export class LimbSum {
  /**
   * value = (i2·10^18 + i1·10^9 + i0 + f3·10^-9 + f2·10^-18 + f1·10^-27 + f0·10^-36), each limb in [0, 10^9): small
   * integers, which V8 keeps inside the object (a double field would be a separate heap number each).
   */
  f0 = 0;
  f1 = 0;
  f2 = 0;
  f3 = 0;
  i0 = 0;
  i1 = 0;
  i2 = 0;
  /** Set once a value did not fit the limbs: the whole total is then this. */
  big: ExactDecimal | undefined = undefined;

  /** A non-negative decimal string (digits, optionally a point and more digits), e.g. "0.005875". */
  static of(s: string): LimbSum {
    const m = new LimbSum();
    m.addString(s);
    return m;
  }

  /** Makes this the value of `s` (a reusable scratch value). */
  set(s: string): void {
    this.f0 = this.f1 = this.f2 = this.f3 = this.i0 = this.i1 = this.i2 = 0;
    this.big = undefined;
    this.addString(s);
  }

  clone(): LimbSum {
    const m = new LimbSum();
    m.add(this);
    return m;
  }

  isZero(): boolean {
    if (this.big) return this.big.isZero();
    return this.f0 === 0 && this.f1 === 0 && this.f2 === 0 && this.f3 === 0 && this.i0 === 0 && this.i1 === 0 && this.i2 === 0;
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
    const i0 = intChunk(int, 0);
    const i1 = intLen > 9 ? intChunk(int, 9) : 0;
    const i2 = intLen > 18 ? intChunk(int, 18) : 0;
    if (fracLen === 0) this.#addLimbs(0, 0, 0, 0, i0, i1, i2);
    else {
      const f = s.slice(dot + 1);
      this.#addLimbs(fracLen > 27 ? chunk(f, 27) : 0, fracLen > 18 ? chunk(f, 18) : 0, fracLen > 9 ? chunk(f, 9) : 0, chunk(f, 0), i0, i1, i2);
    }
  }

  add(m: LimbSum): void {
    if (m.big || this.big) this.big = this.#toBig().plus(m.toFixed());
    else this.#addLimbs(m.f0, m.f1, m.f2, m.f3, m.i0, m.i1, m.i2);
  }

  #addLimbs(f0: number, f1: number, f2: number, f3: number, i0: number, i1: number, i2: number): void {
    // Each limb is below 10^9, so a sum carries at most 1 and stays a small integer.
    let v = this.f0 + f0;
    let c = v >= BASE ? 1 : 0;
    this.f0 = v - c * BASE;
    v = this.f1 + f1 + c;
    c = v >= BASE ? 1 : 0;
    this.f1 = v - c * BASE;
    v = this.f2 + f2 + c;
    c = v >= BASE ? 1 : 0;
    this.f2 = v - c * BASE;
    v = this.f3 + f3 + c;
    c = v >= BASE ? 1 : 0;
    this.f3 = v - c * BASE;
    v = this.i0 + i0 + c;
    c = v >= BASE ? 1 : 0;
    this.i0 = v - c * BASE;
    v = this.i1 + i1 + c;
    c = v >= BASE ? 1 : 0;
    this.i1 = v - c * BASE;
    v = this.i2 + i2 + c;
    if (v >= BASE) {
      // Beyond 27 integer digits: continue exactly in decimal.js (the limbs alone would lose the carry).
      this.i2 = v - BASE;
      const big = new ExactDecimal(this.#limbString()).plus('1e27');
      this.f0 = this.f1 = this.f2 = this.f3 = this.i0 = this.i1 = this.i2 = 0;
      this.big = big;
      return;
    }
    this.i2 = v;
  }

  #toBig(): ExactDecimal {
    return this.big ?? new ExactDecimal(this.toFixed());
  }

  #limbString(): string {
    // The usual total (under 10^9, at most 18 fraction digits: a user's or a call's cost) without the nine-digit
    // padded pieces: the last non-zero fraction limb's trailing zeros dropped arithmetically, one padStart each.
    if (this.i1 === 0 && this.i2 === 0 && this.f0 === 0 && this.f1 === 0) {
      let f3 = this.f3;
      let f2 = this.f2;
      if (f2 === 0) {
        if (f3 === 0) return String(this.i0);
        let d = 9;
        while (f3 % 10 === 0) {
          f3 /= 10;
          d--;
        }
        return `${this.i0}.${String(f3).padStart(d, '0')}`;
      }
      let d = 9;
      while (f2 % 10 === 0) {
        f2 /= 10;
        d--;
      }
      return `${this.i0}.${String(f3).padStart(9, '0')}${String(f2).padStart(d, '0')}`;
    }
    const int = this.i2 > 0 ? String(this.i2) + String(this.i1).padStart(9, '0') + String(this.i0).padStart(9, '0') : this.i1 > 0 ? String(this.i1) + String(this.i0).padStart(9, '0') : String(this.i0);
    if (this.f0 === 0 && this.f1 === 0 && this.f2 === 0 && this.f3 === 0) return int;
    const frac = String(this.f3).padStart(9, '0') + String(this.f2).padStart(9, '0') + String(this.f1).padStart(9, '0') + String(this.f0).padStart(9, '0');
    let end = frac.length;
    while (frac.charCodeAt(end - 1) === 48) end--;
    return `${int}.${frac.slice(0, end)}`;
  }

  /** The exact value as decimal.js `toFixed()` writes it ("0", "3", "0.00047125"). */
  toFixed(): string {
    return this.big ? this.big.toFixed() : this.#limbString();
  }
}
