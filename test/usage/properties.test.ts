import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  normalizeAnthropicUsage,
  normalizeBedrockConverseUsage,
  normalizeGeminiUsage,
  normalizeGenAiAttributes,
  normalizeOpenAIChatUsage,
  normalizeOpenAIResponsesUsage,
  totalTokens,
  type Usage,
} from '../../src/usage/index.js';

// Counts up to a quarter of the bound, so that sums of fields never reach MAX_PLAUSIBLE_TOKENS.
const count = fc.nat({ max: 12_500_000 });
const maybe = fc.option(count, { nil: undefined });

function assertBuckets(u: Usage): void {
  for (const v of [u.input, u.cache_read, u.cache_write, u.output, u.reasoning]) {
    expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
  }
  if (u.cache_write_1h !== undefined) {
    expect(Number.isSafeInteger(u.cache_write_1h) && u.cache_write_1h > 0 && u.cache_write_1h <= u.cache_write).toBe(true);
  }
}

/** Arbitrary, possibly inconsistent, raw shapes with at least one count, per normaliser. */
const shapes: Array<[string, (raw: any) => { usage: Usage }, fc.Arbitrary<unknown>]> = [
  ['openai chat', normalizeOpenAIChatUsage, fc.record({
    prompt_tokens: count, completion_tokens: maybe,
    prompt_tokens_details: fc.record({ cached_tokens: maybe }), completion_tokens_details: fc.record({ reasoning_tokens: maybe }),
  })],
  ['openai responses', normalizeOpenAIResponsesUsage, fc.record({
    input_tokens: maybe, output_tokens: count,
    input_tokens_details: fc.record({ cached_tokens: maybe }), output_tokens_details: fc.record({ reasoning_tokens: maybe }),
  })],
  ['anthropic', normalizeAnthropicUsage, fc.record({
    input_tokens: count, output_tokens: maybe, cache_read_input_tokens: maybe, cache_creation_input_tokens: maybe,
    cache_creation: fc.record({ ephemeral_5m_input_tokens: maybe, ephemeral_1h_input_tokens: maybe }),
  })],
  ['gemini', normalizeGeminiUsage, fc.record({
    promptTokenCount: count, cachedContentTokenCount: maybe, candidatesTokenCount: maybe, thoughtsTokenCount: maybe,
    toolUsePromptTokenCount: maybe, totalTokenCount: maybe,
  })],
  ['bedrock', normalizeBedrockConverseUsage, fc.record({
    inputTokens: count, outputTokens: maybe, cacheReadInputTokens: maybe, cacheWriteInputTokens: maybe,
    cacheDetails: fc.array(fc.record({ inputTokens: count, ttl: fc.constantFrom('5m', '1h') }), { maxLength: 3 }),
  })],
  ['genai attributes', normalizeGenAiAttributes, fc.record({
    'gen_ai.usage.input_tokens': count, 'gen_ai.usage.output_tokens': maybe, 'gen_ai.usage.cache_read.input_tokens': maybe,
    'gen_ai.usage.cache_creation.input_tokens': maybe, 'gen_ai.usage.reasoning.output_tokens': maybe,
    'tokenmeter.usage.cache_creation.1h.input_tokens': maybe,
  })],
];

describe('every normaliser yields non-negative integer buckets, even from inconsistent input', () => {
  it.each(shapes)('%s', (_name, fn, arb) => {
    fc.assert(fc.property(arb, (raw) => assertBuckets(fn(raw).usage)));
  });
});

describe('bucket sums equal the provider totals for consistent input', () => {
  it('openai chat: buckets sum to prompt + completion, no warnings', () => {
    const arb = fc.tuple(count, count).chain(([p, c]) => fc.tuple(fc.constant(p), fc.constant(c), fc.nat({ max: p }), fc.nat({ max: c })));
    fc.assert(
      fc.property(arb, ([p, c, cached, reasoning]) => {
        const out = normalizeOpenAIChatUsage({
          prompt_tokens: p, completion_tokens: c, total_tokens: p + c,
          prompt_tokens_details: { cached_tokens: cached }, completion_tokens_details: { reasoning_tokens: reasoning },
        });
        expect(out.warnings).toEqual([]);
        expect(totalTokens(out.usage)).toBe(p + c);
        expect(out.usage.cache_read).toBe(cached);
        expect(out.usage.reasoning).toBe(reasoning);
      }),
    );
  });

  it('anthropic: buckets sum to input + cache_read + cache_creation + output', () => {
    fc.assert(
      fc.property(count, count, count, count, (input, read, creation, output) => {
        const out = normalizeAnthropicUsage({
          input_tokens: input, cache_read_input_tokens: read, cache_creation_input_tokens: creation, output_tokens: output,
        });
        expect(out.warnings).toEqual([]);
        expect(totalTokens(out.usage)).toBe(input + read + creation + output);
      }),
    );
  });

  it('gemini: buckets sum to totalTokenCount', () => {
    const arb = count.chain((p) => fc.tuple(fc.constant(p), fc.nat({ max: p }), count, count, count));
    fc.assert(
      fc.property(arb, ([prompt, cached, candidates, thoughts, tool]) => {
        const total = prompt + candidates + thoughts + tool;
        const out = normalizeGeminiUsage({
          promptTokenCount: prompt, cachedContentTokenCount: cached, candidatesTokenCount: candidates,
          thoughtsTokenCount: thoughts, toolUsePromptTokenCount: tool, totalTokenCount: total,
        });
        expect(out.warnings).toEqual([]);
        expect(totalTokens(out.usage)).toBe(total);
      }),
    );
  });
});
