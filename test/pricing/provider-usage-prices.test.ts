/**
 * From what a provider reports to what a call costs: each case feeds a raw usage payload in the provider's own
 * shape through its normaliser and prices the buckets. The expected strings were worked out by hand from the
 * list prices in data/price-catalog.yaml (USD per million tokens), so a wrong subtraction rule (cached tokens
 * billed twice, cache writes billed as input, reasoning added on top of completion tokens) fails here.
 */
import { describe, it, expect } from 'vitest';
import { PriceBook } from '../../src/pricing/index.js';
import {
  normalizeAnthropicUsage,
  normalizeBedrockConverseUsage,
  normalizeGeminiUsage,
  normalizeGenAiAttributes,
  normalizeOpenAIChatUsage,
  normalizeOpenAIResponsesUsage,
  type NormalizedUsage,
} from '../../src/usage/index.js';
import type { TokenType } from '../../src/contract/names.js';

interface Case {
  name: string;
  normalize: (raw: never) => NormalizedUsage;
  raw: unknown;
  provider: string;
  model: string;
  /** The five buckets (and the 1-hour part) the payload must normalise to. */
  buckets: Record<TokenType, number> & { cache_write_1h?: number };
  cost: Record<TokenType, string>;
  total: string;
  /** The call instant (default AT). */
  at?: string;
}

const AT = new Date('2026-11-24T12:00:00Z');

const cases: Case[] = [
  {
    // 86 × 2.50 + 1920 × 1.25 + 300 × 10.00 = 215 + 2400 + 3000 = 5615 µ$
    name: 'OpenAI chat: cached tokens are subtracted from prompt_tokens, not billed twice (gpt-4o)',
    normalize: normalizeOpenAIChatUsage,
    raw: { prompt_tokens: 2006, completion_tokens: 300, total_tokens: 2306, prompt_tokens_details: { cached_tokens: 1920 } },
    provider: 'openai',
    model: 'gpt-4o-2024-08-06',
    buckets: { input: 86, cache_read: 1920, cache_write: 0, output: 300, reasoning: 0 },
    cost: { input: '0.000215', cache_read: '0.0024', cache_write: '0', output: '0.003', reasoning: '0' },
    total: '0.005615',
  },
  {
    // 75 × 1.10 + 162 × 4.40 + 1024 × 4.40 = 82.5 + 712.8 + 4505.6 = 5300.9 µ$
    name: 'OpenAI chat: reasoning tokens are inside completion_tokens, not added on top (o4-mini)',
    normalize: normalizeOpenAIChatUsage,
    raw: { prompt_tokens: 75, completion_tokens: 1186, completion_tokens_details: { reasoning_tokens: 1024 } },
    provider: 'openai',
    model: 'o4-mini-2025-04-16',
    buckets: { input: 75, cache_read: 0, cache_write: 0, output: 162, reasoning: 1024 },
    cost: { input: '0.0000825', cache_read: '0', cache_write: '0', output: '0.0007128', reasoning: '0.0045056' },
    total: '0.0053009',
  },
  {
    // 904 × 0.25 + 4096 × 0.025 + 260 × 2.00 + 640 × 2.00 = 226 + 102.4 + 520 + 1280 = 2128.4 µ$
    name: 'OpenAI chat: cached and reasoning together (gpt-5-mini)',
    normalize: normalizeOpenAIChatUsage,
    raw: {
      prompt_tokens: 5000,
      completion_tokens: 900,
      prompt_tokens_details: { cached_tokens: 4096 },
      completion_tokens_details: { reasoning_tokens: 640 },
    },
    provider: 'openai',
    model: 'gpt-5-mini',
    buckets: { input: 904, cache_read: 4096, cache_write: 0, output: 260, reasoning: 640 },
    cost: { input: '0.000226', cache_read: '0.0001024', cache_write: '0', output: '0.00052', reasoning: '0.00128' },
    total: '0.0021284',
  },
  {
    // 952 × 1.25 + 2048 × 0.125 + 52 × 10 + 448 × 10 = 1190 + 256 + 520 + 4480 = 6446 µ$
    name: 'OpenAI Responses: input_tokens ⊇ cached, output_tokens ⊇ reasoning (gpt-5)',
    normalize: normalizeOpenAIResponsesUsage,
    raw: {
      input_tokens: 3000,
      input_tokens_details: { cached_tokens: 2048 },
      output_tokens: 500,
      output_tokens_details: { reasoning_tokens: 448 },
      total_tokens: 3500,
    },
    provider: 'openai',
    model: 'gpt-5',
    buckets: { input: 952, cache_read: 2048, cache_write: 0, output: 52, reasoning: 448 },
    cost: { input: '0.00119', cache_read: '0.000256', cache_write: '0', output: '0.00052', reasoning: '0.00448' },
    total: '0.006446',
  },
  {
    // 21 × 3.00 + 1800 × 0.30 + 393 × 15.00 = 63 + 540 + 5895 = 6498 µ$
    name: 'Anthropic: cache reads are ADDED to input_tokens, not subtracted (claude-sonnet-4-5)',
    normalize: normalizeAnthropicUsage,
    raw: { input_tokens: 21, cache_read_input_tokens: 1800, cache_creation_input_tokens: 0, output_tokens: 393 },
    provider: 'anthropic',
    model: 'claude-sonnet-4-5-20250929',
    buckets: { input: 21, cache_read: 1800, cache_write: 0, output: 393, reasoning: 0 },
    cost: { input: '0.000063', cache_read: '0.00054', cache_write: '0', output: '0.005895', reasoning: '0' },
    total: '0.006498',
  },
  {
    // 50 × 1.00 + 100 × 0.10 + (500 × 1.25 + 1000 × 2.00) + 7 × 5.00 = 50 + 10 + 2625 + 35 = 2720 µ$
    name: 'Anthropic: cache writes at the 5-minute and 1-hour rates, added to input (claude-haiku-4-5)',
    normalize: normalizeAnthropicUsage,
    raw: {
      input_tokens: 50,
      cache_read_input_tokens: 100,
      cache_creation_input_tokens: 1500,
      cache_creation: { ephemeral_5m_input_tokens: 500, ephemeral_1h_input_tokens: 1000 },
      output_tokens: 7,
    },
    provider: 'anthropic',
    model: 'claude-haiku-4-5-20251001',
    buckets: { input: 50, cache_read: 100, cache_write: 1500, cache_write_1h: 1000, output: 7, reasoning: 0 },
    cost: { input: '0.00005', cache_read: '0.00001', cache_write: '0.002625', output: '0.000035', reasoning: '0' },
    total: '0.00272',
  },
  {
    // 1000 × 0.80 + 3000 × 0.08 + 2000 × 1.00 + 400 × 4.00 = 800 + 240 + 2000 + 1600 = 4640 µ$
    name: 'Bedrock InvokeModel (Anthropic shape) with a Bedrock model id (claude-3-5-haiku)',
    normalize: normalizeAnthropicUsage,
    raw: { input_tokens: 1000, cache_read_input_tokens: 3000, cache_creation_input_tokens: 2000, output_tokens: 400 },
    provider: 'aws.bedrock',
    model: 'anthropic.claude-3-5-haiku-20241022-v1:0',
    buckets: { input: 1000, cache_read: 3000, cache_write: 2000, output: 400, reasoning: 0 },
    cost: { input: '0.0008', cache_read: '0.00024', cache_write: '0.002', output: '0.0016', reasoning: '0' },
    total: '0.00464',
  },
  {
    // 1000 × 3.00 + 20000 × 0.30 + 5000 × 6.00 (1-hour) + 800 × 15.00 = 3000 + 6000 + 30000 + 12000 = 51000 µ$
    name: 'Bedrock Converse: inputTokens excludes cache reads and writes (cross-region claude-sonnet-4 id)',
    normalize: normalizeBedrockConverseUsage,
    raw: {
      inputTokens: 1000,
      outputTokens: 800,
      totalTokens: 26800,
      cacheReadInputTokens: 20000,
      cacheWriteInputTokens: 5000,
      cacheDetails: [{ inputTokens: 5000, ttl: '1h' }],
    },
    provider: 'aws.bedrock',
    model: 'us.anthropic.claude-sonnet-4-20250514-v1:0',
    buckets: { input: 1000, cache_read: 20000, cache_write: 5000, cache_write_1h: 5000, output: 800, reasoning: 0 },
    cost: { input: '0.003', cache_read: '0.006', cache_write: '0.03', output: '0.012', reasoning: '0' },
    total: '0.051',
  },
  {
    // Prompt 250000 > 200k: the whole request at 2.50 / 0.25 / 15.00.
    // 200000 × 2.50 + 50000 × 0.25 + 1000 × 15 + 3000 × 15 = 500000 + 12500 + 15000 + 45000 = 572500 µ$
    name: 'Gemini: promptTokenCount ⊇ cached, thoughts beside candidates, above the 200k tier (gemini-2.5-pro)',
    normalize: normalizeGeminiUsage,
    raw: { promptTokenCount: 250000, cachedContentTokenCount: 50000, candidatesTokenCount: 1000, thoughtsTokenCount: 3000, totalTokenCount: 254000 },
    provider: 'gcp.gemini',
    model: 'gemini-2.5-pro',
    buckets: { input: 200000, cache_read: 50000, cache_write: 0, output: 1000, reasoning: 3000 },
    cost: { input: '0.5', cache_read: '0.0125', cache_write: '0', output: '0.015', reasoning: '0.045' },
    total: '0.5725',
  },
  {
    // Prompt exactly 200000: standard rates 1.25 / 0.125 / 10.00. 125000 + 12500 + 100 = 137600 µ$
    name: 'Gemini on Vertex: a 200000-token prompt with cache stays in the base tier (gemini-2.5-pro)',
    normalize: normalizeGeminiUsage,
    raw: { promptTokenCount: 200000, cachedContentTokenCount: 100000, candidatesTokenCount: 10 },
    provider: 'gcp.vertex_ai',
    model: 'projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro',
    buckets: { input: 100000, cache_read: 100000, cache_write: 0, output: 10, reasoning: 0 },
    cost: { input: '0.125', cache_read: '0.0125', cache_write: '0', output: '0.0001', reasoning: '0' },
    total: '0.1376',
  },
  {
    // DeepSeek V3.2 (0.28 / 0.028 / 0.42; a cache write is a miss, billed as input):
    // 1000 × 0.28 + 8000 × 0.028 + 1000 × 0.28 + 300 × 0.42 + 200 × 0.42 = 280 + 224 + 280 + 126 + 84 = 994 µ$
    name: 'OTel GenAI span attributes: input_tokens ⊇ cache read and creation, output_tokens ⊇ reasoning (deepseek-chat)',
    normalize: normalizeGenAiAttributes,
    raw: {
      'gen_ai.usage.input_tokens': 10000,
      'gen_ai.usage.cache_read.input_tokens': 8000,
      'gen_ai.usage.cache_creation.input_tokens': 1000,
      'gen_ai.usage.output_tokens': 500,
      'gen_ai.usage.reasoning.output_tokens': 200,
    },
    provider: 'deepseek',
    model: 'deepseek-chat',
    // At the V3.2 price: the name was served at V4 Flash prices from 2026-04-24 and retired 2026-07-24.
    at: '2026-01-15T00:00:00Z',
    buckets: { input: 1000, cache_read: 8000, cache_write: 1000, output: 300, reasoning: 200 },
    cost: { input: '0.00028', cache_read: '0.000224', cache_write: '0.00028', output: '0.000126', reasoning: '0.000084' },
    total: '0.000994',
  },
  {
    // Azure OpenAI reports the OpenAI chat shape; priced from the first-party entry.
    // 500 × 0.40 + 500 × 0.10 + 100 × 1.60 = 200 + 50 + 160 = 410 µ$
    name: 'Azure OpenAI chat usage (gpt-4.1-mini)',
    normalize: normalizeOpenAIChatUsage,
    raw: { prompt_tokens: 1000, completion_tokens: 100, prompt_tokens_details: { cached_tokens: 500 } },
    provider: 'azure.ai.openai',
    model: 'gpt-4.1-mini',
    buckets: { input: 500, cache_read: 500, cache_write: 0, output: 100, reasoning: 0 },
    cost: { input: '0.0002', cache_read: '0.00005', cache_write: '0', output: '0.00016', reasoning: '0' },
    total: '0.00041',
  },
];

describe('provider usage payloads priced end to end (hand-computed)', () => {
  const book = PriceBook.load();
  it.each(cases)('$name', (c) => {
    const { usage, warnings } = c.normalize(c.raw as never);
    expect(warnings).toEqual([]);
    const expected = { ...c.buckets };
    if (!expected.cache_write_1h) delete expected.cache_write_1h;
    const got = { ...usage };
    if (!got.cache_write_1h) delete got.cache_write_1h;
    expect(got).toEqual(expected);
    const r = book.price({ provider: c.provider, model: c.model, usage, at: c.at ? new Date(c.at) : AT });
    if (!r.priced) throw new Error(`unpriced: ${r.reason}`);
    expect(Object.fromEntries(Object.entries(r.costUsd).map(([k, v]) => [k, v.toFixed()]))).toEqual(c.cost);
    expect(r.totalUsd.toFixed()).toBe(c.total);
  });
});
