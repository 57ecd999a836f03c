import { describe, expect, it } from 'vitest';
import { normalizeAiSdkUsage, UsageError } from '../../src/usage/index.js';
import { buckets, check, type Case } from './helpers.js';

const v3 = (input: Record<string, unknown>, output: Record<string, unknown>) => ({ inputTokens: input, outputTokens: output });

const cases: Case[] = [
  {
    name: 'V3 OpenAI: the input total includes cache reads, the output total includes reasoning',
    raw: v3({ total: 1200, noCache: 200, cacheRead: 1000, cacheWrite: undefined }, { total: 50, text: 30, reasoning: 20 }),
    usage: buckets(200, 1000, 0, 30, 20),
  },
  {
    name: 'V3 Anthropic: cache reads and writes inside the total',
    raw: v3({ total: 2500, noCache: 100, cacheRead: 2000, cacheWrite: 400 }, { total: 50, text: undefined, reasoning: undefined }),
    usage: buckets(100, 2000, 400, 50, 0),
  },
  {
    name: 'V3 with only noCache (no total)',
    raw: v3({ total: undefined, noCache: 70, cacheRead: 5, cacheWrite: undefined }, { total: undefined, text: 9, reasoning: 1 }),
    usage: buckets(70, 5, 0, 9, 1),
  },
  {
    name: 'V3 raw provider usage alongside is ignored',
    raw: { ...v3({ total: 10, noCache: 10 }, { total: 3 }), raw: { prompt_tokens: 999 } },
    usage: buckets(10, 0, 0, 3, 0),
  },
  {
    name: 'V3 noCache that disagrees with the total is flagged; the total wins',
    raw: v3({ total: 100, noCache: 90, cacheRead: 20 }, { total: 5 }),
    usage: buckets(80, 20, 0, 5, 0),
    warnings: [/inputTokens\.noCache \(90\) differs from total - cacheRead - cacheWrite \(80\)/],
  },
  {
    name: 'V3 cache reads above the total are clamped and flagged',
    raw: v3({ total: 10, cacheRead: 12 }, { total: 1 }),
    usage: buckets(0, 10, 0, 1, 0),
    warnings: [/inputTokens\.cacheRead \(12\) exceeds inputTokens\.total \(10\)/],
  },
  {
    name: 'V3 reasoning above the output total is clamped and flagged',
    raw: v3({ total: 1 }, { total: 5, reasoning: 8 }),
    usage: buckets(1, 0, 0, 0, 5),
    warnings: [/outputTokens\.reasoning \(8\) exceeds outputTokens\.total \(5\)/],
  },
  {
    name: 'V2 flat (OpenAI semantics): inputTokens include cachedInputTokens, outputTokens include reasoningTokens',
    raw: { inputTokens: 1200, outputTokens: 50, totalTokens: 1250, reasoningTokens: 20, cachedInputTokens: 1000 },
    usage: buckets(200, 1000, 0, 30, 20),
  },
  { name: 'embedding usage', raw: { tokens: 42 }, usage: buckets(42, 0, 0, 0, 0) },
];

describe('normalizeAiSdkUsage', () => {
  it.each(cases)('$name', (c) => check(normalizeAiSdkUsage, c));

  it('V2 Anthropic (exclusive input_tokens): cache reads are added, not subtracted', () => {
    const out = normalizeAiSdkUsage({ inputTokens: 100, outputTokens: 5, cachedInputTokens: 2000 }, { excludesCache: true });
    expect(out.usage).toEqual(buckets(100, 2000, 0, 5, 0));
  });

  it.each([
    ['not an object', 'usage'],
    [null, 'usage'],
    [[1, 2], 'usage'],
    [{}, 'usage'],
    [{ inputTokens: { total: undefined }, outputTokens: { total: undefined } }, 'usage'],
    [v3({ total: -1 }, { total: 1 }), 'inputTokens.total'],
    [v3({ total: 1.5 }, { total: 1 }), 'inputTokens.total'],
    [v3({ total: '12' }, { total: 1 }), 'inputTokens.total'],
    [v3({ total: 1 }, { total: Number.NaN }), 'outputTokens.total'],
    [v3({ total: 1 }, { total: 1e12 }), 'outputTokens.total'],
    [{ inputTokens: 'x', outputTokens: 1 }, 'inputTokens'],
    [{ inputTokens: [1], outputTokens: 1 }, 'inputTokens'],
    [{ tokens: -3 }, 'tokens'],
    [{ tokens: Infinity }, 'tokens'],
  ])('rejects %j (field %s)', (raw, field) => {
    let err: unknown;
    try {
      normalizeAiSdkUsage(raw);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).field).toBe(field);
  });
});
