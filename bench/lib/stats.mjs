// Small statistics helpers shared by every benchmark.

export function median(values) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function range(values) {
  if (values.length === 0) return [NaN, NaN];
  return [Math.min(...values), Math.max(...values)];
}

/** { median, min, max, n } of a list. */
export function summary(values) {
  const [min, max] = range(values);
  return { median: median(values), min, max, n: values.length };
}

/** Formats a number with a fixed count of significant-ish digits for tables. */
export function fmt(v, digits = 1) {
  if (v === undefined || v === null || Number.isNaN(v)) return 'n/a';
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(Math.max(0, digits - 1));
  if (a >= 10) return v.toFixed(digits);
  return v.toFixed(digits + 1);
}

/** "median (min–max)". */
export function fmtRange(s, digits = 1) {
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return 'n/a';
  if (n >= 1024 * 1024 * 1024) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 * 1024) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The growth exponent k of y ∝ x^k: the least-squares slope of ln y against ln x over [x, y] points. 1 is linear,
 * 0 is flat (no growth); NaN with fewer than two distinct x.
 */
export function growthExponent(points) {
  const pts = points.filter(([x, y]) => x > 0 && y > 0 && Number.isFinite(x) && Number.isFinite(y)).map(([x, y]) => [Math.log(x), Math.log(y)]);
  if (pts.length < 2) return NaN;
  const mx = pts.reduce((a, [x]) => a + x, 0) / pts.length;
  const my = pts.reduce((a, [, y]) => a + y, 0) / pts.length;
  let num = 0;
  let den = 0;
  for (const [x, y] of pts) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/**
 * A 95% bootstrap interval of `statistic(...samples)`: each sample list is resampled with replacement, `rounds`
 * times, with a fixed seed (the same figures give the same interval). Returns { estimate, lo, hi }.
 */
export function bootstrapInterval(samples, statistic, { rounds = 4000, seed = 0x2545f491 } = {}) {
  let state = seed >>> 0;
  // mulberry32: small, fast, good enough to pick resample indices.
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const estimate = statistic(...samples);
  const values = new Array(rounds);
  const resampled = samples.map((s) => new Array(s.length));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i];
      const out = resampled[i];
      for (let j = 0; j < s.length; j++) out[j] = s[Math.floor(random() * s.length)];
    }
    values[r] = statistic(...resampled);
  }
  values.sort((a, b) => a - b);
  return { estimate, lo: values[Math.floor(0.025 * (rounds - 1))], hi: values[Math.ceil(0.975 * (rounds - 1))] };
}
