/**
 * Exact money as integers: an amount is an integer count of 10^-scale USD. A JS number while it is a safe
 * integer (every real call), BigInt past that. Used where decimal.js would cost too much per call: pricing a
 * call (tokens × per-token rate) and checking that a record's per-type costs add up to its total.
 */

/** "", "0", "00", ... for the zeros after the decimal point. */
const ZEROS = Array.from({ length: 40 }, (_, i) => '0'.repeat(i));
const POW10 = Array.from({ length: 16 }, (_, k) => 10 ** k);

/** An exact integer count of 10^-scale units in the canonical string form (see index.ts). */
export function scaledToDecimalString(units: number | bigint, scale: number): string {
  if (typeof units === 'number') return safeScaledToDecimalString(units, scale);
  if (units === 0n) return '0';
  let s = String(units);
  if (s.length <= scale) s = '0'.repeat(scale - s.length + 1) + s;
  const cut = s.length - scale;
  let end = s.length;
  while (end > cut && s.charCodeAt(end - 1) === 48) end--;
  return end === cut ? s.slice(0, cut) : `${s.slice(0, cut)}.${s.slice(cut, end)}`;
}

/** `scaledToDecimalString` for a safe integer: the trailing zeros dropped arithmetically (exact), one String(). */
export function safeScaledToDecimalString(units: number, scale: number): string {
  if (units === 0) return '0';
  let u = units;
  let sc = scale;
  while (sc > 0 && u % 10 === 0) {
    u /= 10;
    sc--;
  }
  const s = String(u);
  if (sc === 0) return s;
  const cut = s.length - sc;
  return cut > 0 ? `${s.slice(0, cut)}.${s.slice(cut)}` : `0.${ZEROS[-cut] ?? '0'.repeat(-cut)}${s}`;
}

/** The digits after the point of a plain decimal string ("1.25" → 2, "3" → 0). */
export function fractionDigits(s: string): number {
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

/**
 * Whether the plain non-negative decimal strings `parts` add up exactly to `total` (each at most `scale`
 * fraction digits; "0" parts are skipped). Scaled integers: plain numbers while every scaled value has at most
 * 15 digits (their sum stays below 2^53), BigInt otherwise. decimal.js costs ~0.5 µs per addition; this runs
 * on every record a ledger commits.
 */
export function sumEquals(parts: readonly string[], total: string, scale: number): boolean {
  let sum = 0;
  for (let k = 0; k < parts.length; k++) {
    const c = parts[k];
    if (c === '0') continue;
    const v = scaledNumber(c, scale);
    if (Number.isNaN(v)) return bigSumEquals(parts, total, scale);
    sum += v;
  }
  const tv = scaledNumber(total, scale);
  return Number.isNaN(tv) ? bigSumEquals(parts, total, scale) : sum === tv;
}

function bigSumEquals(parts: readonly string[], total: string, scale: number): boolean {
  let big = 0n;
  for (const c of parts) if (c !== '0') big += BigInt(scaledDigits(c, scale));
  return big === BigInt(scaledDigits(total, scale));
}

/** A plain decimal string × 10^scale as an exact integer number, or NaN when it needs more than 15 digits. */
function scaledNumber(s: string, scale: number): number {
  let v = 0;
  let digits = 0;
  let frac = -1;
  for (let k = 0; k < s.length; k++) {
    const ch = s.charCodeAt(k);
    if (ch === 46) {
      frac = 0;
      continue;
    }
    if (v !== 0 || ch !== 48) digits++; // leading zeros do not count
    v = v * 10 + (ch - 48);
    if (frac >= 0) frac++;
  }
  const shift = scale - (frac < 0 ? 0 : frac);
  if (digits + shift > 15) return NaN;
  return v * POW10[shift];
}

/** The digits of a plain decimal string as an integer count of 10^-scale (scale >= its fraction digits), no leading zeros. */
function scaledDigits(s: string, scale: number): string {
  const dot = s.indexOf('.');
  const digits = dot < 0 ? s + '0'.repeat(scale) : s.slice(0, dot) + s.slice(dot + 1) + '0'.repeat(scale - (s.length - dot - 1));
  let k = 0;
  while (k < digits.length - 1 && digits.charCodeAt(k) === 48) k++;
  return k === 0 ? digits : digits.slice(k);
}
