import { describe, it, expect } from 'vitest';
import { createWorkload, demoUsers, createRng } from '../../src/demo/workload.js';

function calls(seed: number, users: number, n: number) {
  const w = createWorkload({ seed, users });
  return Array.from({ length: n }, () => w.next());
}

describe('demo workload', () => {
  it('gives the same users and calls for the same seed', () => {
    expect(calls(1, 12, 200)).toEqual(calls(1, 12, 200));
    expect(demoUsers({ seed: 7, users: 12 })).toEqual(demoUsers({ seed: 7, users: 12 }));
  });

  it('gives a different workload for a different seed', () => {
    const a = calls(1, 12, 50).map((c) => `${c.user.id}:${c.model}:${c.prompt}`);
    const b = calls(2, 12, 50).map((c) => `${c.user.id}:${c.model}:${c.prompt}`);
    expect(a).not.toEqual(b);
  });

  it('spreads 12 users over the free, pro and team plans with unique ids', () => {
    const users = demoUsers({ seed: 1, users: 12 });
    expect(users).toHaveLength(12);
    expect(new Set(users.map((u) => u.id)).size).toBe(12);
    for (const plan of ['free', 'pro', 'team']) expect(users.filter((u) => u.plan === plan)).toHaveLength(4);
  });

  it('names users beyond the built-in list uniquely', () => {
    const users = demoUsers({ seed: 1, users: 60 });
    expect(new Set(users.map((u) => u.id)).size).toBe(60);
  });

  it('mixes providers, streaming, cache-marked prompts and reasoning models', () => {
    const cs = calls(1, 12, 100);
    expect(new Set(cs.map((c) => c.provider))).toEqual(new Set(['openai', 'anthropic']));
    expect(cs.some((c) => c.stream)).toBe(true);
    expect(cs.some((c) => !c.stream)).toBe(true);
    expect(cs.some((c) => c.cacheSystem)).toBe(true);
    expect(cs.some((c) => c.reasoningEffort !== undefined)).toBe(true);
    expect(cs.every((c) => c.provider === 'anthropic' || !c.cacheSystem)).toBe(true);
    // The heavy free user makes enough calls to run past the free plan's request limit.
    const heavy = cs.filter((c) => c.user.plan === 'free' && c.user.weight === 8).length;
    expect(heavy).toBeGreaterThan(10);
  });

  it('lets every user make a call before anyone makes a second one', () => {
    const first = calls(9, 12, 12).map((c) => c.user.id);
    expect(new Set(first).size).toBe(12);
  });

  it('numbers the calls in order', () => {
    expect(calls(3, 4, 5).map((c) => c.seq)).toEqual([0, 1, 2, 3, 4]);
  });

  it('rejects a non-positive or fractional user count', () => {
    expect(() => createWorkload({ seed: 1, users: 0 })).toThrow(/positive integer/);
    expect(() => createWorkload({ seed: 1, users: 1.5 })).toThrow(/positive integer/);
  });

  it('has a PRNG in [0, 1)', () => {
    const r = createRng(123);
    for (let i = 0; i < 1000; i++) {
      const x = r();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });
});
