import * as genai from '@google/genai';
import { GoogleGenAI, GenerateContentResponse } from '@google/genai';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { instrument, withUser } from '../../src/instrumentation/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { estimateTokens, loadEstimator, normalizeGenAiAttributes } from '../../src/usage/index.js';
import { startGeminiServer, type GeminiServer } from './gemini-server.js';
import { createHarness, onlySpan, usageAttrs, type Harness } from './harness.js';

let h: Harness;
let server: GeminiServer;
let ai: GoogleGenAI;
let vertex: GoogleGenAI;
const book = PriceBook.load();
const AT = new Date('2026-11-24T12:00:00Z');

beforeAll(async () => {
  // The tokenizer built first: a call needing an estimate before then ends a moment later, once it is
  // (test/instrumentation/deferred-estimate.test.ts); these tests read the span right after the call.
  await loadEstimator();
  h = await createHarness();
  server = await startGeminiServer();
  expect(instrument(genai)).toEqual(['models.generateContent', 'models.generateContentStream', 'models.embedContent']);
  ai = new GoogleGenAI({ apiKey: 'test-key', httpOptions: { baseUrl: server.url } });
  // Vertex AI express mode (an API key, no Google Cloud credentials needed) against the same local server.
  vertex = new GoogleGenAI({ vertexai: true, apiKey: 'test-key', httpOptions: { baseUrl: server.url } });
});
afterAll(async () => {
  await server?.close();
  await h?.shutdown();
});
afterEach(() => {
  h.reset();
  server.reset();
});

/** What the exporter does with the span: its usage attributes back into buckets, priced by the price book. */
function priced(span: ReadableSpan): { costUsd: Record<string, string>; totalUsd: string; model: string } {
  const usage = normalizeGenAiAttributes(span.attributes).usage;
  const r = book.priceStrings({
    provider: String(span.attributes['gen_ai.provider.name']),
    model: String(span.attributes['gen_ai.response.model'] ?? span.attributes['gen_ai.request.model']),
    usage,
    at: AT,
  });
  if (!r.priced) throw new Error(`unpriced: ${r.reason}`);
  return { costUsd: { ...r.costUsd }, totalUsd: r.totalUsd, model: r.model };
}

// prompt 1200 of which 1000 cached, tool-use prompt 100, candidates 300, thoughts 500 (total 2100).
const RICH = { promptTokenCount: 1200, cachedContentTokenCount: 1000, toolUsePromptTokenCount: 100, candidatesTokenCount: 300, thoughtsTokenCount: 500, totalTokenCount: 2100 };
const RICH_ATTRS = {
  'gen_ai.usage.input_tokens': 1300,
  'gen_ai.usage.cache_read.input_tokens': 1000,
  'gen_ai.usage.output_tokens': 800,
  'gen_ai.usage.reasoning.output_tokens': 500,
};

describe('@google/genai models.generateContent', () => {
  it('records a call with usageMetadata in the five buckets and prices it exactly (gemini-2.5-flash)', async () => {
    server.setUsage(RICH);
    const res = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'Explain the meter.', config: { maxOutputTokens: 400, temperature: 0.2 } });
    expect(res).toBeInstanceOf(GenerateContentResponse);
    expect(res.text).toBe('The meter counts every token once.');
    expect(server.requests[0].path).toMatch(/^\/v1(beta)?\/models\/gemini-2\.5-flash:generateContent$/);
    const span = onlySpan(h);
    expect(span.name).toBe('generate_content gemini-2.5-flash');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'generate_content',
      'gen_ai.provider.name': 'gcp.gemini',
      'gen_ai.request.model': 'gemini-2.5-flash',
      'gen_ai.response.model': 'gemini-2.5-flash',
      'gen_ai.response.id': 'resp-1',
      'gen_ai.response.finish_reasons': ['STOP'],
      'gen_ai.request.max_tokens': 400,
      'gen_ai.request.temperature': 0.2,
      'server.address': '127.0.0.1',
    });
    expect(usageAttrs(span.attributes)).toEqual(RICH_ATTRS);
    expect(normalizeGenAiAttributes(span.attributes).usage).toEqual({ input: 300, cache_read: 1000, cache_write: 0, output: 300, reasoning: 500 });
    // 300 × 0.30 + 1000 × 0.03 + 300 × 2.50 + 500 × 2.50 (thoughts at the output rate) = 90 + 30 + 750 + 1250 = 2120 µ$
    expect(priced(span)).toEqual({
      model: 'gemini-2.5-flash',
      costUsd: { input: '0.00009', cache_read: '0.00003', cache_write: '0', output: '0.00075', reasoning: '0.00125' },
      totalUsd: '0.00212',
    });
  });

  it('attributes the call to the withUser user and plan', async () => {
    await withUser({ id: 'user-7', plan: 'pro' }, () => ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' }));
    expect(onlySpan(h).attributes).toMatchObject({ 'user.id': 'user-7', 'tokenmeter.plan': 'pro' });
  });

  it('reprices the whole request at the above-200k tier (gemini-2.5-pro)', async () => {
    server.setUsage({ promptTokenCount: 250000, candidatesTokenCount: 1000, totalTokenCount: 251000 });
    await ai.models.generateContent({ model: 'models/gemini-2.5-pro', contents: 'long' });
    const span = onlySpan(h);
    expect(span.attributes['gen_ai.request.model']).toBe('models/gemini-2.5-pro');
    // 250000 × 2.50 + 1000 × 15.00 = 0.625 + 0.015
    expect(priced(span)).toMatchObject({ model: 'gemini-2.5-pro', totalUsd: '0.64', costUsd: { input: '0.625', output: '0.015' } });
  });

  it('uses gcp.vertex_ai in Vertex AI mode', async () => {
    server.setUsage(RICH);
    await vertex.models.generateContent({ model: 'gemini-2.5-flash', contents: 'Explain the meter.' });
    expect(server.requests[0].path).toMatch(/\/publishers\/google\/models\/gemini-2\.5-flash:generateContent$/);
    const span = onlySpan(h);
    expect(span.attributes['gen_ai.provider.name']).toBe('gcp.vertex_ai');
    expect(usageAttrs(span.attributes)).toEqual(RICH_ATTRS);
    expect(priced(span).totalUsd).toBe('0.00212');
  });

  it('records chats.sendMessage as one call per request, never twice', async () => {
    const chat = ai.chats.create({ model: 'gemini-2.5-flash' });
    await chat.sendMessage({ message: 'first' });
    await chat.sendMessage({ message: 'second' });
    expect(server.requests.length).toBe(2);
    expect(h.finished().length).toBe(2);
    expect(h.finished().every((s) => s.attributes['gen_ai.usage.input_tokens'] === 12)).toBe(true);
  });

  it('labels an estimate when the response has no usageMetadata', async () => {
    server.setUsage(undefined);
    await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'Explain the meter.' });
    const span = onlySpan(h);
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(estimateTokens('Explain the meter.'));
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(estimateTokens('The meter counts every token once.'));
  });

  it('records a provider error with its type and rethrows the SDK error unchanged', async () => {
    server.failNext(400);
    const err = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(genai.ApiError);
    const span = onlySpan(h);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('ApiError');
    expect(span.events.map((e) => e.name)).toEqual(['exception']);
    expect(usageAttrs(span.attributes)).toEqual({});
  });
});

describe('@google/genai models.generateContentStream', () => {
  it('reads the streamed usage from the last chunk and prices it (alt=sse)', async () => {
    server.setUsage(RICH);
    const stream = await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'Explain the meter.' });
    expect(typeof stream[Symbol.asyncIterator]).toBe('function');
    let text = '';
    for await (const chunk of stream) {
      expect(chunk).toBeInstanceOf(GenerateContentResponse);
      text += chunk.text ?? '';
    }
    expect(text).toBe('The meter counts every token once.');
    expect(server.requests[0].path).toMatch(/^\/v1(beta)?\/models\/gemini-2\.5-flash:streamGenerateContent$/);
    expect(server.requests[0].query.get('alt')).toBe('sse');
    const span = onlySpan(h);
    expect(span.attributes['gen_ai.request.stream']).toBe(true);
    expect(usageAttrs(span.attributes)).toEqual(RICH_ATTRS);
    expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
    expect(priced(span).totalUsd).toBe('0.00212');
  });

  it('streams in Vertex AI mode under a user', async () => {
    server.setUsage({ promptTokenCount: 250000, candidatesTokenCount: 1000, totalTokenCount: 251000 });
    await withUser({ id: 'u-v', plan: 'team' }, async () => {
      const stream = await vertex.models.generateContentStream({ model: 'gemini-2.5-pro', contents: 'long' });
      for await (const chunk of stream) void chunk;
    });
    const span = onlySpan(h);
    expect(span.attributes).toMatchObject({ 'gen_ai.provider.name': 'gcp.vertex_ai', 'user.id': 'u-v', 'tokenmeter.plan': 'team' });
    expect(priced(span).totalUsd).toBe('0.64');
  });

  it('records chats.sendMessageStream once', async () => {
    const chat = ai.chats.create({ model: 'gemini-2.5-flash' });
    const stream = await chat.sendMessageStream({ message: 'hello' });
    for await (const chunk of stream) void chunk;
    expect(onlySpan(h).attributes['gen_ai.usage.input_tokens']).toBe(12);
  });

  it('ends the call when the caller breaks off, completing the output count with a labelled estimate', async () => {
    const stream = await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'Explain the meter.' });
    for await (const chunk of stream) {
      void chunk;
      break;
    }
    const span = onlySpan(h);
    expect(span.attributes['tokenmeter.stream.end']).toBe('break');
    // The prompt count is the provider's (12); the output of the one chunk read is its count (1), or the estimate.
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(12);
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
  });

  it('records a stream the server cuts off as an error, keeping the prompt count it reported', async () => {
    server.breakStreamAfter(2);
    const stream = await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'Explain the meter.' });
    const err = await (async () => {
      for await (const chunk of stream) void chunk;
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const span = onlySpan(h);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(12);
  });
});

describe('@google/genai embedContent and countTokens', () => {
  it('records embedContent with the reported prompt tokens', async () => {
    server.setUsage({ promptTokenCount: 40 });
    const res = await ai.models.embedContent({ model: 'gemini-embedding-001', contents: ['a', 'b'] });
    expect(res.embeddings?.length).toBe(2);
    const span = onlySpan(h);
    expect(span.name).toBe('embeddings gemini-embedding-001');
    expect(span.attributes['gen_ai.provider.name']).toBe('gcp.gemini');
    if ((res as { usageMetadata?: unknown }).usageMetadata !== undefined) {
      // 3.x keeps the response's usageMetadata: the provider's count.
      expect(usageAttrs(span.attributes)).toEqual({ 'gen_ai.usage.input_tokens': 40, 'gen_ai.usage.output_tokens': 0 });
      // 40 × 0.15 = 6 µ$
      expect(priced(span).totalUsd).toBe('0.000006');
    } else {
      // 1.x/2.x drop it when converting the Gemini API response: a labelled estimate of the input.
      expect(usageAttrs(span.attributes)).toEqual({
        'gen_ai.usage.input_tokens': estimateTokens('ab'),
        'gen_ai.usage.output_tokens': 0,
        'tokenmeter.usage.estimated': true,
      });
      // 1 × 0.15 = 0.15 µ$
      expect(estimateTokens('ab')).toBe(1);
      expect(priced(span).totalUsd).toBe('0.00000015');
    }
  });

  it('sums Vertex predict statistics when there is no usageMetadata', async () => {
    server.setUsage({ promptTokenCount: 7 });
    await vertex.models.embedContent({ model: 'text-embedding-005', contents: ['a', 'b', 'c'] });
    const span = onlySpan(h);
    expect(span.attributes['gen_ai.provider.name']).toBe('gcp.vertex_ai');
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(21);
    expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
  });

  it('does not meter countTokens (it is free)', async () => {
    const r = await ai.models.countTokens({ model: 'gemini-2.5-flash', contents: 'count me' });
    expect(r.totalTokens).toBe(12);
    expect(h.finished()).toEqual([]);
  });
});

describe('@google/genai hostile input', () => {
  it('reports implausible usageMetadata on the span, unpriced, and the app still gets its response', async () => {
    server.setUsage({ promptTokenCount: -5, candidatesTokenCount: 3 });
    const res = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'x' });
    expect(res.text).toBe('The meter counts every token once.');
    const span = onlySpan(h);
    expect(String(span.attributes['tokenmeter.usage.invalid'])).toMatch(/promptTokenCount/);
    expect(span.attributes['gen_ai.usage.input_tokens']).toBeUndefined();
  });

  it('passes calls with non-object parameters straight to the SDK (its own error, no span)', async () => {
    const err = await ai.models.generateContent(null as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(h.finished()).toEqual([]);
  });
});
