import type { Usage } from '../../src/usage/usage.js';

/** Usage from the five buckets (and the 1-hour part of cache_write). */
export function u(input: number, cacheRead = 0, cacheWrite = 0, output = 0, reasoning = 0, cacheWrite1h = 0): Usage {
  const usage: Usage = { input, cache_read: cacheRead, cache_write: cacheWrite, output, reasoning };
  if (cacheWrite1h) usage.cache_write_1h = cacheWrite1h;
  return usage;
}

export const M = 1_000_000;
