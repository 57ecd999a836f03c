/**
 * Per-call fee counts (web searches, grounding queries) reach the exporter: the real SDKs call a local server
 * answering in each provider's wire format, and the spans tokenmeter records go through the exporter's own OTLP
 * decoding, extraction and pricing.
 */
import Anthropic from '@anthropic-ai/sdk';
import * as genai from '@google/genai';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTR_TOOL_CALLS } from '../../src/contract/names.js';
import { instrument, trackUsage } from '../../src/instrumentation/index.js';
import { captureWarnings } from '../../src/instrumentation/warn.js';
import { anthropicPricingAttributes, geminiGroundingQueries, openAIResponsesToolCalls } from '../../src/instrumentation/pricing-facts.js';
import { PriceBook } from '../../src/pricing/index.js';
import { extractedSpan, startCannedProvider, type CannedProvider } from './canned-provider.js';
import { createHarness, type Harness } from './harness.js';

let h: Harness;
let canned: CannedProvider;
let baseUrl = '';
let replies: CannedProvider['replies'];
let streams: CannedProvider['streams'];
const book = PriceBook.load();
const AT = new Date('2026-11-24T12:00:00Z');

beforeAll(async () => {
  h = await createHarness();
  instrument(OpenAI);
  instrument(Anthropic);
  instrument(genai);
  canned = await startCannedProvider();
  ({ baseUrl, replies, streams } = canned);
});

afterAll(async () => {
  await canned.close();
  await h.shutdown();
});

function extracted() {
  const { attrs, record: rec } = extractedSpan(h);
  const price = book.priceStrings({ provider: rec.provider, model: rec.rawModel, usage: rec.usage, at: AT, toolCalls: rec.toolCalls });
  return { attrs, record: rec, price };
}

const anthropicMessage = (usage: Record<string, unknown>) => ({
  id: 'msg_1',
  type: 'message',
  role: 'assistant',
  model: 'claude-sonnet-4-6',
  content: [{ type: 'text', text: 'ok' }],
  stop_reason: 'end_turn',
  usage,
});

describe('per-call fee counts from the provider response', () => {
  it('Anthropic usage.server_tool_use.web_search_requests: priced at $10 per 1,000 searches', async () => {
    h.reset();
    replies['/v1/messages'] = anthropicMessage({ input_tokens: 10000, output_tokens: 1000, server_tool_use: { web_search_requests: 3, web_fetch_requests: 2 } });
    const client = new Anthropic({ apiKey: 'k', baseURL: baseUrl, maxRetries: 0 });
    await client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'search' }] });
    const { attrs, record, price } = extracted();
    expect(attrs[ATTR_TOOL_CALLS.web_search]).toBe(3);
    expect(record.toolCalls).toEqual({ web_search: 3 });
    // 10,000 × $3 + 1,000 × $15 per Mtok = 0.045; 3 × $10 / 1,000 = 0.03.
    expect(price).toMatchObject({ priced: true, feeCostUsd: '0.03', totalUsd: '0.075' });
  });

  it('Anthropic stream: the count in the final message_delta usage wins', async () => {
    h.reset();
    streams['/v1/messages'] = [
      { type: 'message_start', message: { ...anthropicMessage({ input_tokens: 10, output_tokens: 1, server_tool_use: { web_search_requests: 0 } }), content: [], stop_reason: null } },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'ok' } },
      { type: 'content_block_stop', index: 0 },
      { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 5, server_tool_use: { web_search_requests: 2 } } },
      { type: 'message_stop' },
    ];
    try {
      const client = new Anthropic({ apiKey: 'k', baseURL: baseUrl, maxRetries: 0 });
      const stream = await client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'search' }] });
      for await (const _ of stream) void _;
      const { record, price } = extracted();
      expect(record.toolCalls).toEqual({ web_search: 2 });
      expect(price).toMatchObject({ priced: true, feeCostUsd: '0.02' });
    } finally {
      delete streams['/v1/messages'];
    }
  });

  it('OpenAI Responses: each web_search_call item is one call (a failed one is not billed)', async () => {
    h.reset();
    replies['/responses'] = {
      id: 'resp_1',
      object: 'response',
      created_at: 1,
      status: 'completed',
      model: 'gpt-5.5',
      output: [
        { type: 'web_search_call', id: 'ws_1', status: 'completed', action: { type: 'search', query: 'a' } },
        { type: 'web_search_call', id: 'ws_2', status: 'completed', action: { type: 'search', query: 'b' } },
        { type: 'web_search_call', id: 'ws_3', status: 'failed' },
        { type: 'message', id: 'msg_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'ok', annotations: [] }] },
      ],
      usage: { input_tokens: 1000, input_tokens_details: { cached_tokens: 0 }, output_tokens: 100, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 1100 },
    };
    const client = new OpenAI({ apiKey: 'k', baseURL: baseUrl, maxRetries: 0 });
    await client.responses.create({ model: 'gpt-5.5', input: 'search', tools: [{ type: 'web_search' }] });
    const { attrs, record, price } = extracted();
    expect(attrs[ATTR_TOOL_CALLS.web_search]).toBe(2);
    expect(record.toolCalls).toEqual({ web_search: 2 });
    // 1,000 × $5 + 100 × $30 per Mtok = 0.008; 2 × $10 / 1,000 = 0.02.
    expect(price).toMatchObject({ priced: true, feeCostUsd: '0.02', totalUsd: '0.028' });
  });

  it('OpenAI Responses with only the web_search_preview tool: preview calls ($25 / 1,000 on gpt-4o)', async () => {
    h.reset();
    replies['/responses'] = {
      id: 'resp_2',
      object: 'response',
      created_at: 1,
      status: 'completed',
      model: 'gpt-4o-2024-08-06',
      output: [
        { type: 'web_search_call', id: 'ws_1', status: 'completed' },
        { type: 'message', id: 'msg_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'ok', annotations: [] }] },
      ],
      usage: { input_tokens: 1000, input_tokens_details: { cached_tokens: 0 }, output_tokens: 100, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 1100 },
    };
    const client = new OpenAI({ apiKey: 'k', baseURL: baseUrl, maxRetries: 0 });
    await client.responses.create({ model: 'gpt-4o', input: 'search', tools: [{ type: 'web_search_preview' }] });
    const { record, price } = extracted();
    expect(record.toolCalls).toEqual({ web_search_preview: 1 });
    expect(price).toMatchObject({ priced: true, feeCostUsd: '0.025', totalUsd: '0.0285' });
  });

  it('Gemini groundingMetadata.webSearchQueries: distinct non-empty queries', async () => {
    h.reset();
    replies['/v1beta/models/gemini-3-flash-preview:generateContent'] = {
      candidates: [
        {
          content: { role: 'model', parts: [{ text: 'ok' }] },
          finishReason: 'STOP',
          groundingMetadata: { webSearchQueries: ['', 'meter pricing', 'meter pricing', 'grounding fees', '  '] },
        },
      ],
      usageMetadata: { promptTokenCount: 100, candidatesTokenCount: 10, totalTokenCount: 110 },
      modelVersion: 'gemini-3-flash-preview',
      responseId: 'r1',
    };
    const ai = new GoogleGenAI({ apiKey: 'k', httpOptions: { baseUrl } });
    await ai.models.generateContent({ model: 'gemini-3-flash-preview', contents: 'search', config: { tools: [{ googleSearch: {} }] } });
    const { attrs, record, price } = extracted();
    expect(attrs[ATTR_TOOL_CALLS.search_grounding]).toBe(2);
    expect(record.toolCalls).toEqual({ search_grounding: 2 });
    // 100 × $0.50 + 10 × $3 per Mtok = 0.00008; Gemini 3 bills per query: 2 × $14 / 1,000 = 0.028.
    expect(price).toMatchObject({ priced: true, feeCostUsd: '0.028', totalUsd: '0.02808' });
  });

  it('a call without tools carries no count', async () => {
    h.reset();
    replies['/v1/messages'] = anthropicMessage({ input_tokens: 10, output_tokens: 1 });
    const client = new Anthropic({ apiKey: 'k', baseURL: baseUrl, maxRetries: 0 });
    await client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
    const { attrs, record, price } = extracted();
    for (const k of Object.values(ATTR_TOOL_CALLS)) expect(attrs[k]).toBeUndefined();
    expect(record.toolCalls).toBeUndefined();
    expect(price.priced && price.feeCostUsd).toBeUndefined();
  });
});

describe('fees in the app and what is not metered', () => {
  it('trackUsage adds the fee to the cost it reports', async () => {
    h.reset();
    replies['/v1/messages'] = anthropicMessage({ input_tokens: 10000, output_tokens: 1000, server_tool_use: { web_search_requests: 3 } });
    const client = new Anthropic({ apiKey: 'k', baseURL: baseUrl, maxRetries: 0 });
    const totals = await trackUsage(() => client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'search' }] }));
    expect(totals.calls[0]!.toolCalls).toEqual({ web_search: 3 });
    // Priced at the call's end (now): claude-sonnet-4-6 $3 / $15, web search $10 / 1,000.
    expect(totals.costUsd).toBe('0.075');
  });

  it('Chat Completions web search (no count in the response) is said once on stderr, never priced as a fee', async () => {
    h.reset();
    const lines: string[] = [];
    const restore = captureWarnings(lines);
    try {
      replies['/chat/completions'] = {
        id: 'chatcmpl-s',
        object: 'chat.completion',
        created: 1,
        model: 'gpt-4o-search-preview',
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 },
      };
      const client = new OpenAI({ apiKey: 'k', baseURL: baseUrl, maxRetries: 0 });
      for (let i = 0; i < 2; i++) {
        await client.chat.completions.create({ model: 'gpt-4o-search-preview', web_search_options: {}, messages: [{ role: 'user', content: 'hi' }] });
      }
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/web_search_options\) is charged per call.*not their search fee/);
      expect(h.finished().every((s) => s.attributes[ATTR_TOOL_CALLS.web_search] === undefined)).toBe(true);
    } finally {
      restore();
    }
  });
});

describe('fee-count readers on hostile input', () => {
  it('Anthropic: only a positive safe integer is taken; anything else is left out with a warning', () => {
    for (const v of [-1, 1.5, '3', Number.NaN, 2 ** 60, { n: 1 }]) {
      const warnings: string[] = [];
      expect(anthropicPricingAttributes({ server_tool_use: { web_search_requests: v } }, undefined, warnings)).toEqual({});
      expect(warnings, String(v)).toHaveLength(1);
    }
    expect(anthropicPricingAttributes({ server_tool_use: 'x' })).toEqual({});
    expect(anthropicPricingAttributes({ server_tool_use: { web_search_requests: 0 } })).toEqual({});
  });

  it('OpenAI: non-arrays and odd items count nothing; both tools offered count as web_search', () => {
    expect(openAIResponsesToolCalls(null, undefined)).toBeUndefined();
    expect(openAIResponsesToolCalls('web_search_call', undefined)).toBeUndefined();
    expect(openAIResponsesToolCalls([null, 7, { type: 'web_search_call', status: 'failed' }], undefined)).toBeUndefined();
    const both = [{ type: 'web_search' }, { type: 'web_search_preview_2025_03_11' }];
    expect(openAIResponsesToolCalls([{ type: 'web_search_call' }], both)).toEqual({ web_search: 1 });
    expect(openAIResponsesToolCalls([{ type: 'web_search_call' }], [{ type: 'web_search_preview_2025_03_11' }])).toEqual({ web_search_preview: 1 });
  });

  it('Gemini: non-string queries are skipped and the set is bounded', () => {
    const seen = new Set<string>();
    geminiGroundingQueries({ candidates: [{ groundingMetadata: { webSearchQueries: [1, null, { q: 'x' }, 'ok'] } }, null] }, seen);
    expect([...seen]).toEqual(['ok']);
    geminiGroundingQueries({ candidates: [{ groundingMetadata: { webSearchQueries: Array.from({ length: 20_000 }, (_, i) => `q${i}`) } }] }, seen);
    expect(seen.size).toBe(10_000);
  });
});
