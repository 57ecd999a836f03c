/**
 * Price-changing facts in the provider's own usage (Anthropic fast mode and processing location, OpenAI audio
 * parts) reach the exporter: the real SDKs call a local server answering with those usage fields, and the spans
 * tokenmeter records go through the exporter's own OTLP decoding and extraction.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTR_INFERENCE_GEO, ATTR_INPUT_AUDIO_TOKENS, ATTR_OUTPUT_AUDIO_TOKENS, ATTR_SPEED } from '../../src/contract/names.js';
import { instrument } from '../../src/instrumentation/index.js';
import { anthropicPricingAttributes, openAIPricingAttributes } from '../../src/instrumentation/pricing-facts.js';
import { extractedSpan, startCannedProvider, type CannedProvider } from './canned-provider.js';
import { createHarness, type Harness } from './harness.js';

let h: Harness;
let canned: CannedProvider;
let baseUrl = '';
let replies: CannedProvider['replies'];

beforeAll(async () => {
  h = await createHarness();
  instrument(OpenAI);
  instrument(Anthropic);
  canned = await startCannedProvider();
  ({ baseUrl, replies } = canned);
});

afterAll(async () => {
  await canned.close();
  await h.shutdown();
});

const extracted = () => extractedSpan(h);

describe('price-changing facts from the provider usage', () => {
  it('Anthropic fast mode and inference_geo reach the usage record', async () => {
    h.reset();
    replies['/v1/messages'] = {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-opus-4-6',
      content: [{ type: 'text', text: 'ok' }],
      stop_reason: 'end_turn',
      usage: { input_tokens: 100, output_tokens: 20, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, speed: 'fast', inference_geo: 'us' },
    };
    const client = new Anthropic({ apiKey: 'k', baseURL: baseUrl, maxRetries: 0 });
    await client.messages.create({ model: 'claude-opus-4-6', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    const { attrs, record } = extracted();
    expect(attrs[ATTR_SPEED]).toBe('fast');
    expect(attrs[ATTR_INFERENCE_GEO]).toBe('us');
    expect(record.speed).toBe('fast');
    expect(record.inferenceGeo).toBe('us');
    expect(record.usage.input).toBe(100);
    expect(record.usage.output).toBe(20);
  });

  it('OpenAI audio parts of the input and output buckets reach the usage record', async () => {
    h.reset();
    replies['/chat/completions'] = {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1,
      model: 'gpt-audio',
      choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
      usage: {
        prompt_tokens: 300,
        completion_tokens: 80,
        total_tokens: 380,
        prompt_tokens_details: { cached_tokens: 100, audio_tokens: 150 },
        completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 60 },
      },
    };
    const client = new OpenAI({ apiKey: 'k', baseURL: baseUrl, maxRetries: 0 });
    await client.chat.completions.create({ model: 'gpt-audio', messages: [{ role: 'user', content: 'hi' }] });
    const { attrs, record } = extracted();
    expect(attrs[ATTR_INPUT_AUDIO_TOKENS]).toBe(150);
    expect(attrs[ATTR_OUTPUT_AUDIO_TOKENS]).toBe(60);
    expect(record.usage).toMatchObject({ input: 200, cache_read: 100, output: 80, input_audio: 150, output_audio: 60 });
  });

  it('a plain call carries none of them', async () => {
    h.reset();
    replies['/chat/completions'] = {
      id: 'chatcmpl-2',
      object: 'chat.completion',
      created: 1,
      model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 },
    };
    const client = new OpenAI({ apiKey: 'k', baseURL: baseUrl, maxRetries: 0 });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const { attrs, record } = extracted();
    for (const k of [ATTR_SPEED, ATTR_INFERENCE_GEO, ATTR_INPUT_AUDIO_TOKENS, ATTR_OUTPUT_AUDIO_TOKENS]) expect(attrs[k]).toBeUndefined();
    expect(record.speed).toBeUndefined();
    expect(record.usage.input_audio ?? 0).toBe(0);
  });
});

describe('pricing-facts readers on hostile input', () => {
  it('Anthropic: only short printable strings are taken', () => {
    expect(anthropicPricingAttributes(null)).toEqual({});
    expect(anthropicPricingAttributes('fast')).toEqual({});
    expect(anthropicPricingAttributes({ speed: 7, inference_geo: ['us'] })).toEqual({});
    expect(anthropicPricingAttributes({ speed: 'fa\u0000st', inference_geo: 'u\u202es' })).toEqual({});
    expect(anthropicPricingAttributes({ speed: 'x'.repeat(65) })).toEqual({});
    expect(anthropicPricingAttributes({ speed: 'standard', inference_geo: 'global' })).toEqual({ [ATTR_SPEED]: 'standard', [ATTR_INFERENCE_GEO]: 'global' });
  });

  it('OpenAI: counts must be positive safe integers; a part larger than its bucket is clamped and said', () => {
    const usage = { input: 50, cache_read: 100, cache_write: 0, output: 10, reasoning: 0 };
    const warnings: string[] = [];
    const bad = { prompt_tokens_details: { audio_tokens: -1 }, completion_tokens_details: { audio_tokens: 1.5 } };
    expect(openAIPricingAttributes(bad, usage, warnings, 'prompt_tokens_details', 'completion_tokens_details')).toEqual({});
    expect(openAIPricingAttributes({ prompt_tokens_details: { audio_tokens: Number.MAX_SAFE_INTEGER + 2 } }, usage, warnings, 'prompt_tokens_details', 'completion_tokens_details')).toEqual({});
    expect(warnings).toEqual([]);
    const big = { prompt_tokens_details: { audio_tokens: 120 }, completion_tokens_details: { audio_tokens: 25 } };
    expect(openAIPricingAttributes(big, usage, warnings, 'prompt_tokens_details', 'completion_tokens_details')).toEqual({ [ATTR_INPUT_AUDIO_TOKENS]: 50, [ATTR_OUTPUT_AUDIO_TOKENS]: 10 });
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('audio_tokens (120) exceeds the uncached input tokens (50)');
  });
});
