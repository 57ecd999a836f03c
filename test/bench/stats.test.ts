/**
 * The bootstrap interval the instrumentation bench judges the goal's margins with (bench/lib/stats.mjs): a margin
 * is met or not met only when its 95% interval lies wholly on one side of zero.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs module of the bench, without types.
import { bootstrapInterval, median } from '../../bench/lib/stats.mjs';

type Stat = (...xs: number[][]) => number;
const diffOfMedians: Stat = (a, b) => median(a) - median(b);

describe('bootstrapInterval', () => {
  it('separates two sets of processes whose difference is far larger than their spread', () => {
    const slow = [110.2, 111.5, 109.8, 112.0, 110.9, 111.1, 110.4, 111.8, 110.0];
    const fast = [100.1, 101.3, 99.7, 100.8, 100.5, 101.0, 99.9, 100.2, 100.6];
    const m = bootstrapInterval([slow, fast], diffOfMedians);
    expect(m.estimate).toBeCloseTo(110.9 - 100.5, 9);
    expect(m.lo).toBeGreaterThan(0);
    expect(m.hi).toBeGreaterThanOrEqual(m.estimate);
    expect(m.lo).toBeLessThanOrEqual(m.estimate);
  });

  it('does not separate a difference smaller than the spread (the verdict stays undecided)', () => {
    const a = [100, 104, 98, 107, 101, 96, 103];
    const b = [101, 97, 105, 99, 102, 95, 106];
    const m = bootstrapInterval([a, b], diffOfMedians);
    expect(m.lo).toBeLessThan(0);
    expect(m.hi).toBeGreaterThan(0);
  });

  it('is reproducible (fixed seed) and narrows with more processes', () => {
    const few = [10, 14, 9, 13, 11];
    const many = [...few, 12, 10.5, 11.5, 12.5, 9.5, 13.5, 10, 14, 11, 12, 10.8, 11.2, 12.2, 9.8, 13.1];
    const zero = [0];
    const a = bootstrapInterval([few, zero], diffOfMedians);
    expect(bootstrapInterval([few, zero], diffOfMedians)).toEqual(a);
    const b = bootstrapInterval([many, zero], diffOfMedians);
    expect(b.hi - b.lo).toBeLessThan(a.hi - a.lo);
  });
});
