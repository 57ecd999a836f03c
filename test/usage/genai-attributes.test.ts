import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { normalizeGenAiAttributes, usageToGenAiAttributes, type Usage } from '../../src/usage/index.js';
import { buckets, check, type Case } from './helpers.js';

const cases: Case[] = [
  { name: 'ordinary', raw: { 'gen_ai.usage.input_tokens': 100, 'gen_ai.usage.output_tokens': 20 }, usage: buckets(100, 0, 0, 20, 0) },
  {
    name: 'input_tokens includes cache read AND cache creation',
    raw: {
      'gen_ai.usage.input_tokens': 3000, 'gen_ai.usage.cache_read.input_tokens': 2000,
      'gen_ai.usage.cache_creation.input_tokens': 900, 'gen_ai.usage.output_tokens': 10,
    },
    usage: buckets(100, 2000, 900, 10, 0),
  },
  {
    name: 'output_tokens includes reasoning',
    raw: { 'gen_ai.usage.input_tokens': 5, 'gen_ai.usage.output_tokens': 500, 'gen_ai.usage.reasoning.output_tokens': 448 },
    usage: buckets(5, 0, 0, 52, 448),
  },
  {
    name: 'tokenmeter 1h cache-creation part',
    raw: {
      'gen_ai.usage.input_tokens': 1100, 'gen_ai.usage.cache_creation.input_tokens': 1000,
      'tokenmeter.usage.cache_creation.1h.input_tokens': 400, 'gen_ai.usage.output_tokens': 1,
    },
    usage: buckets(100, 0, 1000, 1, 0, 400),
  },
  {
    name: 'deprecated prompt_tokens / completion_tokens',
    raw: { 'gen_ai.usage.prompt_tokens': 42, 'gen_ai.usage.completion_tokens': 7, 'gen_ai.system': 'openai' },
    usage: buckets(42, 0, 0, 7, 0),
  },
  {
    name: 'current names win over deprecated ones, with a warning when they differ',
    raw: { 'gen_ai.usage.input_tokens': 50, 'gen_ai.usage.prompt_tokens': 40, 'gen_ai.usage.output_tokens': 3, 'gen_ai.usage.completion_tokens': 3 },
    usage: buckets(50, 0, 0, 3, 0),
    warnings: [/gen_ai\.usage\.prompt_tokens \(40\) differs from gen_ai\.usage\.input_tokens \(50\)/],
  },
  {
    name: 'OTLP/JSON int64 strings and bigints',
    raw: { 'gen_ai.usage.input_tokens': '2048', 'gen_ai.usage.cache_read.input_tokens': 1024n, 'gen_ai.usage.output_tokens': '0' },
    usage: buckets(1024, 1024, 0, 0, 0),
  },
  {
    name: 'exclusive input_tokens (Anthropic-style instrumentation) is clamped and flagged',
    raw: { 'gen_ai.usage.input_tokens': 20, 'gen_ai.usage.cache_read.input_tokens': 1800, 'gen_ai.usage.output_tokens': 5 },
    usage: buckets(0, 20, 0, 5, 0),
    warnings: [/gen_ai\.usage\.cache_read\.input_tokens \(1800\) exceeds gen_ai\.usage\.input_tokens \(20\); clamped to 20/],
  },
  {
    name: 'cache read + creation above input: creation clamped to what is left',
    raw: { 'gen_ai.usage.input_tokens': 100, 'gen_ai.usage.cache_read.input_tokens': 60, 'gen_ai.usage.cache_creation.input_tokens': 50 },
    usage: buckets(0, 60, 40, 0, 0),
    warnings: [/cache_creation\.input_tokens \(50\) exceeds gen_ai\.usage\.input_tokens \(100\) minus gen_ai\.usage\.cache_read\.input_tokens \(60\); clamped to 40/],
  },
  {
    name: 'reasoning above output is clamped and flagged',
    raw: { 'gen_ai.usage.input_tokens': 1, 'gen_ai.usage.output_tokens': 10, 'gen_ai.usage.reasoning.output_tokens': 11 },
    usage: buckets(1, 0, 0, 0, 10),
    warnings: [/reasoning\.output_tokens \(11\) exceeds gen_ai\.usage\.output_tokens \(10\)/],
  },
];

describe('normalizeGenAiAttributes', () => {
  it.each(cases)('$name', (c) => check(normalizeGenAiAttributes, c));
});

describe('usageToGenAiAttributes', () => {
  it('writes inclusive totals and only the non-zero details', () => {
    expect(usageToGenAiAttributes(buckets(10, 0, 0, 5, 0))).toEqual({ 'gen_ai.usage.input_tokens': 10, 'gen_ai.usage.output_tokens': 5 });
    expect(usageToGenAiAttributes(buckets(10, 20, 30, 5, 6, 7))).toEqual({
      'gen_ai.usage.input_tokens': 60,
      'gen_ai.usage.output_tokens': 11,
      'gen_ai.usage.cache_read.input_tokens': 20,
      'gen_ai.usage.cache_creation.input_tokens': 30,
      'gen_ai.usage.reasoning.output_tokens': 6,
      'tokenmeter.usage.cache_creation.1h.input_tokens': 7,
    });
  });

  it('round-trips through normalizeGenAiAttributes (property)', () => {
    // Realistic sizes: the inclusive totals of a call stay within MAX_PLAUSIBLE_TOKENS.
    const n = fc.nat({ max: 10_000_000 });
    const usage = fc
      .record({ input: n, cache_read: n, cache_write: n, output: n, reasoning: n })
      .chain((u) =>
        fc.option(fc.integer({ min: 1, max: Math.max(1, u.cache_write) }), { nil: undefined }).map((h): Usage =>
          h === undefined || u.cache_write === 0 ? u : { ...u, cache_write_1h: h },
        ),
      );
    fc.assert(
      fc.property(usage, (u) => {
        const out = normalizeGenAiAttributes(usageToGenAiAttributes(u));
        expect(out.warnings).toEqual([]);
        expect(out.usage).toEqual(u);
      }),
    );
  });
});
