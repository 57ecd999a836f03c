import { expect } from 'vitest';
import type { Usage } from '../../src/usage/index.js';

/** Usage from the five buckets in DESIGN.md order (input, cache_read, cache_write, output, reasoning). */
export function buckets(input: number, cache_read: number, cache_write: number, output: number, reasoning: number, cache_write_1h?: number): Usage {
  const u: Usage = { input, cache_read, cache_write, output, reasoning };
  if (cache_write_1h !== undefined) u.cache_write_1h = cache_write_1h;
  return u;
}

export interface Case {
  name: string;
  raw: unknown;
  usage: Usage;
  /** Each pattern must match one warning; no pattern = no warnings. */
  warnings?: RegExp[];
}

/** Runs one table case: exact buckets, and exactly the expected warnings in order. */
export function check(fn: (raw: any) => { usage: Usage; warnings: string[] }, c: Case): void {
  const out = fn(c.raw);
  expect(out.usage).toEqual(c.usage);
  expect(out.warnings).toHaveLength(c.warnings?.length ?? 0);
  c.warnings?.forEach((w, i) => expect(out.warnings[i]).toMatch(w));
}
