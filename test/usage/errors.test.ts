import { describe, expect, it } from 'vitest';
import {
  MAX_PLAUSIBLE_TOKENS,
  UsageError,
  normalizeAnthropicUsage,
  normalizeBedrockConverseUsage,
  normalizeGeminiUsage,
  normalizeGenAiAttributes,
  normalizeOpenAIChatUsage,
  normalizeOpenAIResponsesUsage,
} from '../../src/usage/index.js';

type Normalizer = (raw: any) => unknown;

interface ErrorCase {
  name: string;
  fn: Normalizer;
  raw: unknown;
  field: string;
  message: RegExp;
}

const chat = normalizeOpenAIChatUsage;
const cases: ErrorCase[] = [
  { name: 'negative', fn: chat, raw: { prompt_tokens: -1, completion_tokens: 2 }, field: 'prompt_tokens', message: /"prompt_tokens" is negative: -1/ },
  { name: 'fractional', fn: chat, raw: { prompt_tokens: 1.5 }, field: 'prompt_tokens', message: /"prompt_tokens" is not an integer: 1\.5/ },
  { name: 'NaN', fn: chat, raw: { prompt_tokens: 3, completion_tokens: NaN }, field: 'completion_tokens', message: /"completion_tokens" is not a number: NaN/ },
  { name: 'Infinity', fn: chat, raw: { prompt_tokens: Infinity }, field: 'prompt_tokens', message: /is not finite: Infinity/ },
  { name: 'numeric string in provider JSON', fn: chat, raw: { prompt_tokens: '12a' }, field: 'prompt_tokens', message: /is not a number: "12a"/ },
  { name: 'absurd (1e12)', fn: chat, raw: { prompt_tokens: 1e12 }, field: 'prompt_tokens', message: /exceeds MAX_PLAUSIBLE_TOKENS \(50000000\): 1000000000000/ },
  {
    name: 'nested field named with its path', fn: chat, raw: { prompt_tokens: 5, prompt_tokens_details: { cached_tokens: -3 } },
    field: 'prompt_tokens_details.cached_tokens', message: /"prompt_tokens_details\.cached_tokens" is negative: -3/,
  },
  { name: 'details not an object', fn: chat, raw: { prompt_tokens: 5, prompt_tokens_details: 7 }, field: 'prompt_tokens_details', message: /is not an object: 7/ },
  { name: 'total_tokens is validated too', fn: chat, raw: { prompt_tokens: 5, total_tokens: -5 }, field: 'total_tokens', message: /is negative/ },
  { name: 'null usage', fn: chat, raw: null, field: 'usage', message: /OpenAI chat usage is not an object: null/ },
  { name: 'array usage', fn: chat, raw: [1, 2], field: 'usage', message: /not an object: an array/ },
  { name: 'missing every count', fn: chat, raw: {}, field: 'usage', message: /no token counts \(none of prompt_tokens, completion_tokens/ },
  { name: 'only total_tokens cannot be split', fn: chat, raw: { total_tokens: 10 }, field: 'usage', message: /no token counts/ },
  { name: 'responses: 1.5', fn: normalizeOpenAIResponsesUsage, raw: { input_tokens: 1, output_tokens: 1.5 }, field: 'output_tokens', message: /not an integer: 1\.5/ },
  { name: 'responses: string', fn: normalizeOpenAIResponsesUsage, raw: 'usage', field: 'usage', message: /not an object: "usage"/ },
  {
    name: 'anthropic: negative 1h split', fn: normalizeAnthropicUsage, raw: { input_tokens: 1, cache_creation: { ephemeral_1h_input_tokens: -2 } },
    field: 'cache_creation.ephemeral_1h_input_tokens', message: /is negative: -2/,
  },
  { name: 'anthropic: missing all', fn: normalizeAnthropicUsage, raw: { service_tier: 'standard' }, field: 'usage', message: /Anthropic usage has no token counts/ },
  { name: 'anthropic: undefined', fn: normalizeAnthropicUsage, raw: undefined, field: 'usage', message: /not an object: undefined/ },
  { name: 'gemini: NaN', fn: normalizeGeminiUsage, raw: { promptTokenCount: NaN }, field: 'promptTokenCount', message: /not a number: NaN/ },
  { name: 'gemini: snake_case negative', fn: normalizeGeminiUsage, raw: { prompt_token_count: -7 }, field: 'prompt_token_count', message: /"prompt_token_count" is negative/ },
  { name: 'gemini: a whole response instead of usageMetadata', fn: normalizeGeminiUsage, raw: { usageMetadata: { promptTokenCount: 1 } }, field: 'usage', message: /no token counts/ },
  {
    name: 'gemini: prompt + tool-use beyond the bound', fn: normalizeGeminiUsage,
    raw: { promptTokenCount: MAX_PLAUSIBLE_TOKENS, toolUsePromptTokenCount: MAX_PLAUSIBLE_TOKENS }, field: 'usage.input', message: /bucket "input" exceeds/,
  },
  { name: 'bedrock: 1e12', fn: normalizeBedrockConverseUsage, raw: { inputTokens: 1e12, outputTokens: 1 }, field: 'inputTokens', message: /exceeds MAX_PLAUSIBLE_TOKENS/ },
  { name: 'bedrock: cacheDetails not an array', fn: normalizeBedrockConverseUsage, raw: { inputTokens: 1, cacheDetails: {} }, field: 'cacheDetails', message: /is not an array: an object/ },
  {
    name: 'bedrock: bad cacheDetails entry', fn: normalizeBedrockConverseUsage, raw: { inputTokens: 1, cacheDetails: [{ inputTokens: '5', ttl: '1h' }] },
    field: 'cacheDetails[0].inputTokens', message: /is not a number: "5"/,
  },
  { name: 'genai: "12a"', fn: normalizeGenAiAttributes, raw: { 'gen_ai.usage.input_tokens': '12a' }, field: 'gen_ai.usage.input_tokens', message: /is not an integer: "12a"/ },
  { name: 'genai: "1.5"', fn: normalizeGenAiAttributes, raw: { 'gen_ai.usage.output_tokens': '1.5' }, field: 'gen_ai.usage.output_tokens', message: /not an integer: "1\.5"/ },
  { name: 'genai: "-4"', fn: normalizeGenAiAttributes, raw: { 'gen_ai.usage.input_tokens': '-4' }, field: 'gen_ai.usage.input_tokens', message: /is negative: "-4"/ },
  {
    name: 'genai: int64 string beyond the bound', fn: normalizeGenAiAttributes, raw: { 'gen_ai.usage.input_tokens': '9223372036854775807' },
    field: 'gen_ai.usage.input_tokens', message: /exceeds MAX_PLAUSIBLE_TOKENS/,
  },
  { name: 'genai: bigint negative', fn: normalizeGenAiAttributes, raw: { 'gen_ai.usage.input_tokens': -1n }, field: 'gen_ai.usage.input_tokens', message: /is negative: -1/ },
  { name: 'genai: boolean', fn: normalizeGenAiAttributes, raw: { 'gen_ai.usage.input_tokens': true }, field: 'gen_ai.usage.input_tokens', message: /is not a number: boolean/ },
  { name: 'genai: array value', fn: normalizeGenAiAttributes, raw: { 'gen_ai.usage.input_tokens': [1] }, field: 'gen_ai.usage.input_tokens', message: /not a number: an array/ },
  { name: 'genai: no usage attributes', fn: normalizeGenAiAttributes, raw: { 'gen_ai.operation.name': 'chat' }, field: 'usage', message: /GenAI span usage has no token counts/ },
  { name: 'genai: null attributes', fn: normalizeGenAiAttributes, raw: null, field: 'usage', message: /not an object/ },
  {
    name: 'long hostile strings are truncated in the message', fn: normalizeGenAiAttributes, raw: { 'gen_ai.usage.input_tokens': 'x'.repeat(10_000) },
    field: 'gen_ai.usage.input_tokens', message: /^usage field "gen_ai\.usage\.input_tokens" is not an integer: "x{40}\.\.\."$/,
  },
];

describe('UsageError paths', () => {
  it.each(cases)('$name', ({ fn, raw, field, message }) => {
    let caught: unknown;
    try {
      fn(raw);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as UsageError).field).toBe(field);
    expect((caught as UsageError).message).toMatch(message);
    expect((caught as UsageError).name).toBe('UsageError');
  });

  it('accepts exactly MAX_PLAUSIBLE_TOKENS and rejects one more', () => {
    expect(normalizeOpenAIChatUsage({ prompt_tokens: MAX_PLAUSIBLE_TOKENS }).usage.input).toBe(MAX_PLAUSIBLE_TOKENS);
    expect(() => normalizeOpenAIChatUsage({ prompt_tokens: MAX_PLAUSIBLE_TOKENS + 1 })).toThrow(UsageError);
  });
});
