import { TOKEN_TYPES, type TokenType } from '../contract/names.js';

/**
 * One call's tokens in DESIGN.md's five non-overlapping buckets. Every field is a non-negative integer and
 * their sum is the billable total.
 */
export interface Usage {
  input: number;
  cache_read: number;
  cache_write: number;
  output: number;
  reasoning: number;
  /**
   * The part of `cache_write` written with a 1-hour TTL (Anthropic prices it higher than the 5-minute default).
   * Not a sixth bucket: it is included in `cache_write`. Absent or 0 means every cache write was 5-minute.
   */
  cache_write_1h?: number;
  /**
   * Modality parts, for pricing only (like cache_write_1h, not more buckets): the part of `input` (uncached) that
   * was audio, and the parts of `output` that were audio or image tokens. Absent or 0 means text.
   */
  input_audio?: number;
  output_audio?: number;
  output_image?: number;
}

export function zeroUsage(): Usage {
  return { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 };
}

export function totalTokens(u: Usage): number {
  let sum = 0;
  for (const t of TOKEN_TYPES) sum += u[t];
  return sum;
}

/** Adds `b` into a copy of `a`. */
export function addUsage(a: Usage, b: Usage): Usage {
  const out: Usage = { ...zeroUsage() };
  for (const t of TOKEN_TYPES) out[t] = a[t] + b[t];
  const h = (a.cache_write_1h ?? 0) + (b.cache_write_1h ?? 0);
  if (h > 0) out.cache_write_1h = h;
  return out;
}

export type { TokenType };
