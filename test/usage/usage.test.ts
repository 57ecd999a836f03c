import { describe, expect, it } from 'vitest';
import { addUsage, totalTokens, zeroUsage } from '../../src/usage/index.js';

describe('Usage', () => {
  it('sums the five buckets', () => {
    expect(totalTokens({ input: 1, cache_read: 2, cache_write: 3, output: 4, reasoning: 5 })).toBe(15);
  });
  it('adds two usages including the 1-hour cache-write part', () => {
    const a = { ...zeroUsage(), input: 10, cache_write: 5, cache_write_1h: 2 };
    const b = { ...zeroUsage(), output: 7, cache_write: 1, cache_write_1h: 1 };
    expect(addUsage(a, b)).toEqual({ input: 10, cache_read: 0, cache_write: 6, output: 7, reasoning: 0, cache_write_1h: 3 });
  });
});
