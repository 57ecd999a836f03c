import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import * as aiModule from 'ai';
import { createRequire } from 'node:module';
import OpenAI from 'openai';
import * as openaiModule from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { decodeTraceRequest, extractUsage } from '../../src/ingest/index.js';
import { aiSdkProviderName, meteredModel, patchAiSdk } from '../../src/instrumentation/ai-sdk.js';
import { instrument, trackUsage, withUser } from '../../src/instrumentation/index.js';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { loadEstimator, normalizeGenAiAttributes, usageToGenAiAttributes, type Usage } from '../../src/usage/index.js';
import { jsonBody } from '../ingest/otel-spans.js';
import { createHarness, onlySpan, usageAttrs, type Harness } from './harness.js';

/*
 * The real `ai` (6, and 7 on Node 22+) with the real @ai-sdk/openai and @ai-sdk/anthropic provider packages
 * against the local mock provider. `ai`'s exports are metered the way `tokenmeter/register` meters them
 * (patchAiSdk: a metered copy of the read-only CommonJS exports, or of an ES module namespace here).
 */

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
const book = PriceBook.load();
const AT = new Date('2026-11-24T12:00:00Z');
const req = createRequire(import.meta.url);
// The unpatched CommonJS build the metered copy comes from (the ES build in `aiModule` has its own classes).
const aiCjs = req('ai') as typeof aiModule;

let h: Harness;
let mock: MockProvider;
let ai: typeof aiModule;
let openai: ReturnType<typeof createOpenAI>;
let anthropic: ReturnType<typeof createAnthropic>;

beforeAll(async () => {
  await loadEstimator();
  h = await createHarness();
  mock = await startMockProvider({});
  const patched = patchAiSdk(aiCjs);
  expect(patched.done).toEqual(['generateText', 'streamText', 'generateObject', 'streamObject', 'embed', 'embedMany', 'ToolLoopAgent', 'Experimental_Agent']);
  ai = patched.exports as typeof aiModule;
  openai = createOpenAI({ baseURL: mock.openaiBaseURL, apiKey: 'test-key' });
  anthropic = createAnthropic({ baseURL: `${mock.url}/v1`, apiKey: 'test-key' });
});
afterAll(async () => {
  await mock?.close();
  await h?.shutdown();
});
afterEach(() => {
  h.reset();
  mock.reset();
});

/** What the exporter does with a span: its usage attributes back into buckets, priced by the price book. */
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

/** The spans as the exporter receives them (OTLP/JSON), through its real extraction: the records it would bill. */
function billed(spans: ReadableSpan[]): Array<{ name: string; userId: string; usage: Usage; model: string }> {
  const decoded = decodeTraceRequest(jsonBody(spans), 'application/json', undefined, { maxDecompressedBytes: 1 << 24 });
  const out: Array<{ name: string; userId: string; usage: Usage; model: string }> = [];
  for (const s of decoded.spans) {
    const r = extractUsage(s);
    if (r.kind === 'usage') out.push({ name: s.name, userId: r.record.userId, usage: r.record.usage, model: r.record.rawModel });
  }
  return out;
}

// gpt-4o-mini: 200 uncached input, 1,000 cached, 30 output, 20 reasoning. Priced by hand at $0.15 / $0.075 / $0.60
// per Mtok: 200 x 0.15 = 30, 1000 x 0.075 = 75, 30 x 0.60 = 18, 20 x 0.60 = 12 (micro-dollars): $0.000135.
const OPENAI_USAGE: Usage = { input: 200, cache_read: 1000, cache_write: 0, output: 30, reasoning: 20 };
const OPENAI_ATTRS = {
  'gen_ai.usage.input_tokens': 1200,
  'gen_ai.usage.cache_read.input_tokens': 1000,
  'gen_ai.usage.output_tokens': 50,
  'gen_ai.usage.reasoning.output_tokens': 20,
};
const OPENAI_COST = { input: '0.00003', cache_read: '0.000075', output: '0.000018', reasoning: '0.000012' };
const OPENAI_TOTAL = '0.000135';

function expectOpenAiCall(span: ReadableSpan, stream: boolean): void {
  expect(span.kind).toBe(SpanKind.CLIENT);
  expect(span.name).toBe('chat gpt-4o-mini');
  expect(span.attributes).toMatchObject({
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': 'gpt-4o-mini',
    'gen_ai.response.model': 'gpt-4o-mini',
    'gen_ai.response.finish_reasons': ['stop'],
    ...OPENAI_ATTRS,
  });
  expect(span.attributes['gen_ai.request.stream']).toBe(stream ? true : undefined);
  expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
  const p = priced(span);
  expect(p.model).toBe('gpt-4o-mini');
  expect(p.costUsd).toMatchObject(OPENAI_COST);
  expect(p.totalUsd).toBe(OPENAI_TOTAL);
}

describe('ai 6 generateText / streamText through @ai-sdk/openai', () => {
  it('generateText (Chat Completions): one span with the provider usage, priced exactly; the result is the SDK own', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    const res = await ai.generateText({ model: openai.chat('gpt-4o-mini'), prompt: 'Explain the meter.', maxOutputTokens: 300, temperature: 0.3 });
    const unmetered = await aiCjs.generateText({ model: openai.chat('gpt-4o-mini'), prompt: 'Explain the meter.' });
    expect(Object.getPrototypeOf(res)).toBe(Object.getPrototypeOf(unmetered));
    expect(res.text.length).toBeGreaterThan(0);
    expect(res.usage).toMatchObject({ inputTokens: 1200, outputTokens: 50 });
    expect(res.response.modelId).toBe('gpt-4o-mini');
    expect(mock.requests[0].path).toBe('/v1/chat/completions');
    expect(h.finished()).toHaveLength(1); // the unmetered call of the unpatched export records nothing
    const span = onlySpan(h);
    expectOpenAiCall(span, false);
    expect(span.attributes).toMatchObject({ 'gen_ai.request.max_tokens': 300, 'gen_ai.request.temperature': 0.3, 'gen_ai.response.id': 'chatcmpl-mock-1' });
  });

  it('generateText (Responses API, the provider default)', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    const res = await ai.generateText({ model: openai('gpt-4o-mini'), prompt: 'Explain the meter.' });
    expect(res.text.length).toBeGreaterThan(0);
    expect(mock.requests[0].path).toBe('/v1/responses');
    expectOpenAiCall(onlySpan(h), false);
  });

  it('streamText: the usage of the finish part, priced exactly; textStream and the result object are the SDK own', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    const result = ai.streamText({ model: openai.chat('gpt-4o-mini'), prompt: 'Explain the meter.' });
    const unmetered = aiCjs.streamText({ model: openai.chat('gpt-4o-mini'), prompt: 'x' });
    expect(Object.getPrototypeOf(result)).toBe(Object.getPrototypeOf(unmetered));
    await unmetered.consumeStream();
    let text = '';
    for await (const t of result.textStream) text += t;
    expect(text).toBe(await result.text);
    expect(await result.usage).toMatchObject({ inputTokens: 1200, outputTokens: 50 });
    // The stream asked the provider for usage itself (the AI SDK sends stream_options.include_usage).
    expect(mock.requests[0].body.stream_options).toEqual({ include_usage: true });
    const spans = h.finished().filter((s) => s.name === 'chat gpt-4o-mini');
    expect(spans).toHaveLength(1);
    expectOpenAiCall(spans[0], true);
    expect(spans[0].attributes['tokenmeter.stream.end']).toBeUndefined();
  });

  it('streamText over the Responses API', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    const result = ai.streamText({ model: openai('gpt-4o-mini'), prompt: 'Explain the meter.' });
    await result.consumeStream();
    expect(mock.requests[0].path).toBe('/v1/responses');
    expectOpenAiCall(onlySpan(h), true);
  });

  it('a multi-step tool loop is one span per model call, each with its own usage (never a parent sum)', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    const res = await ai.generateText({
      model: openai.chat('gpt-4o-mini'),
      prompt: 'What is the weather?',
      tools: { weather: ai.tool({ description: 'weather', inputSchema: z.object({ city: z.string() }), execute: async () => 'sunny' }) },
      stopWhen: ai.stepCountIs(2),
    });
    expect(res.steps.length).toBe(2);
    const spans = h.finished();
    expect(spans).toHaveLength(2);
    for (const s of spans) expect(usageAttrs(s.attributes)).toEqual(OPENAI_ATTRS);
    expect(res.totalUsage).toMatchObject({ inputTokens: 2400, outputTokens: 100 });
  });

  it('a stream the app aborts ends its span with the output received so far, estimated and marked incomplete', async () => {
    mock.setChunkDelay(20);
    const controller = new AbortController();
    const result = ai.streamText({ model: openai.chat('gpt-4o-mini'), prompt: 'Explain the meter.', abortSignal: controller.signal, onError: () => {} });
    const reader = result.textStream.getReader();
    await reader.read();
    controller.abort();
    await reader.read().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const span = onlySpan(h);
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
    expect(span.attributes['tokenmeter.usage.incomplete']).toBe(true);
    expect(Number(span.attributes['gen_ai.usage.output_tokens'])).toBeGreaterThan(0);
  });

  it('a provider error ends the span as an error and reaches the app unchanged', async () => {
    mock.failNext(1, 500);
    await expect(ai.generateText({ model: openai.chat('gpt-4o-mini'), prompt: 'x', maxRetries: 0 })).rejects.toThrow();
    const span = onlySpan(h);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBeDefined();
    expect(usageAttrs(span.attributes)).toEqual({});
  });
});

describe('ai 6 generateObject / streamObject', () => {
  const schema = z.object({ answer: z.string() });

  it('generateObject: one span priced exactly', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    // The mock answers with its own text, not JSON: generateObject then fails to parse it, after the model call.
    await ai.generateObject({ model: openai.chat('gpt-4o-mini'), schema, prompt: 'Answer in JSON.' }).catch((err: Error) => {
      expect(err.name).toMatch(/NoObjectGenerated/);
    });
    expect(mock.requests[0].body.response_format?.type).toBe('json_schema');
    expectOpenAiCall(onlySpan(h), false);
  });

  it('streamObject: the streamed usage, priced exactly', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    const result = ai.streamObject({ model: openai.chat('gpt-4o-mini'), schema, prompt: 'Answer in JSON.', onError: () => {} });
    for await (const _ of result.partialObjectStream) void _;
    expect(await result.usage).toMatchObject({ inputTokens: 1200, outputTokens: 50 });
    expectOpenAiCall(onlySpan(h), true);
  });
});

describe('ai 6 embed / embedMany', () => {
  // text-embedding-3-small at $0.02 per Mtok: 200 tokens = 4 micro-dollars.
  it.each(['embed', 'embedMany'] as const)('%s: an embeddings span with the input tokens, priced exactly', async (fn) => {
    mock.setFixedUsage({ input: 200, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 });
    const model = openai.embedding('text-embedding-3-small');
    const res = fn === 'embed' ? await ai.embed({ model, value: 'the meter' }) : await ai.embedMany({ model, values: ['the meter', 'counts'] });
    expect(res.usage).toEqual({ tokens: 200 });
    const span = onlySpan(h);
    expect(span.name).toBe('embeddings text-embedding-3-small');
    expect(span.attributes).toMatchObject({ 'gen_ai.operation.name': 'embeddings', 'gen_ai.provider.name': 'openai', 'gen_ai.usage.input_tokens': 200 });
    const p = priced(span);
    expect(p.costUsd.input).toBe('0.000004');
    expect(p.totalUsd).toBe('0.000004');
  });
});

describe('ai 6 through @ai-sdk/anthropic', () => {
  // claude-haiku-4-5: 100 uncached input x $1 = 100, 2,000 cache reads x $0.10 = 200, 400 cache writes (5 min) x
  // $1.25 = 500, 50 output x $5 = 250 micro-dollars: $0.00105.
  const USAGE: Usage = { input: 100, cache_read: 2000, cache_write: 400, output: 50, reasoning: 0 };
  const ATTRS = usageToGenAiAttributes(USAGE);

  it.each([false, true])('cache reads and writes in their buckets, priced exactly (stream: %s)', async (stream) => {
    mock.setFixedUsage(USAGE);
    const model = anthropic('claude-haiku-4-5');
    if (stream) await ai.streamText({ model, prompt: 'Explain the meter.' }).consumeStream();
    else await ai.generateText({ model, prompt: 'Explain the meter.' });
    expect(mock.requests[0].path).toBe('/v1/messages');
    const span = onlySpan(h);
    expect(span.attributes).toMatchObject({ 'gen_ai.provider.name': 'anthropic', 'gen_ai.request.model': 'claude-haiku-4-5', ...ATTRS });
    const p = priced(span);
    expect(p.costUsd).toMatchObject({ input: '0.0001', cache_read: '0.0002', cache_write: '0.0005', output: '0.00025' });
    expect(p.totalUsd).toBe('0.00105');
  });
});

describe('ai 6 attribution and counting once', () => {
  it('withUser attributes every model call; trackUsage sees it', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    const totals = await trackUsage(() =>
      withUser({ id: 'user-42', plan: 'pro', feature: 'chat' }, () => ai.generateText({ model: openai.chat('gpt-4o-mini'), prompt: 'x' })),
    );
    expect(onlySpan(h).attributes).toMatchObject({ 'user.id': 'user-42', 'tokenmeter.plan': 'pro', 'tokenmeter.feature': 'chat' });
    expect(totals.requests).toBe(1);
    expect(totals.costUsd).toBe(OPENAI_TOTAL);
  });

  it('an AI SDK provider built on the openai SDK (which tokenmeter also patches) is counted once', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    expect(instrument(openaiModule)).toContain('chat.completions.create');
    const client = new OpenAI({ baseURL: mock.openaiBaseURL, apiKey: 'test-key' });
    // The openai SDK alone is metered (so the assertion below can fail).
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    expect(h.finished()).toHaveLength(1);
    h.reset();
    const model = {
      specificationVersion: 'v3',
      provider: 'openai-sdk.chat',
      modelId: 'gpt-4o-mini',
      supportedUrls: {},
      async doGenerate(options: any) {
        const text = options.prompt.map((m: any) => (Array.isArray(m.content) ? m.content.map((p: any) => p.text ?? '').join('') : m.content)).join('\n');
        const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] });
        const u = r.usage!;
        const cached = u.prompt_tokens_details?.cached_tokens ?? 0;
        const reasoning = u.completion_tokens_details?.reasoning_tokens ?? 0;
        return {
          content: [{ type: 'text', text: r.choices[0].message.content ?? '' }],
          finishReason: { unified: 'stop', raw: 'stop' },
          usage: {
            inputTokens: { total: u.prompt_tokens, noCache: u.prompt_tokens - cached, cacheRead: cached, cacheWrite: undefined },
            outputTokens: { total: u.completion_tokens, text: u.completion_tokens - reasoning, reasoning },
          },
          response: { id: r.id, modelId: r.model },
          warnings: [],
        };
      },
      async doStream() {
        throw new Error('not used');
      },
    };
    await withUser({ id: 'user-7' }, () => ai.generateText({ model: model as any, prompt: 'x' }));
    const spans = h.finished();
    expect(spans.map((s) => s.name)).toEqual(['chat gpt-4o-mini']);
    expect(spans[0].attributes).toMatchObject({ 'gen_ai.provider.name': 'openai-sdk', 'user.id': 'user-7', ...OPENAI_ATTRS });
    const b = billed(spans);
    expect(b).toHaveLength(1);
    expect(b[0].usage).toEqual(OPENAI_USAGE);
  });

  it('with the AI SDK own telemetry on, its leaf span is billed once and carries the withUser attribution', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    const tracer = h.tracerProvider.getTracer('ai');
    await withUser({ id: 'user-9', plan: 'team' }, async () => {
      await ai.generateText({ model: openai.chat('gpt-4o-mini'), prompt: 'x', experimental_telemetry: { isEnabled: true, tracer } });
      await ai.streamText({ model: openai.chat('gpt-4o-mini'), prompt: 'x', experimental_telemetry: { isEnabled: true, tracer } }).consumeStream();
    });
    const spans = h.finished();
    const names = spans.map((s) => s.name).sort();
    expect(names).toEqual(['ai.generateText', 'ai.generateText.doGenerate', 'ai.streamText', 'ai.streamText.doStream']);
    const b = billed(spans);
    expect(b.map((x) => x.name).sort()).toEqual(['ai.generateText.doGenerate', 'ai.streamText.doStream']);
    for (const x of b) {
      expect(x.userId).toBe('user-9');
      expect(x.usage).toEqual(OPENAI_USAGE);
    }
    // Without the AI SDK telemetry the same calls are tokenmeter's spans: one billed record each.
    h.reset();
    await ai.generateText({ model: openai.chat('gpt-4o-mini'), prompt: 'x' });
    expect(billed(h.finished()).map((x) => x.name)).toEqual(['chat gpt-4o-mini']);
  });

  it('ToolLoopAgent: its model calls are metered; the agent is still an instance of the SDK class', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    const agent = new ai.ToolLoopAgent({ model: openai.chat('gpt-4o-mini'), instructions: 'Be brief.' });
    expect(agent).toBeInstanceOf(aiCjs.ToolLoopAgent);
    expect(ai.Experimental_Agent).toBe(ai.ToolLoopAgent);
    await agent.generate({ prompt: 'x' });
    expectOpenAiCall(onlySpan(h), false);
  });

  it('a model id string is resolved as `ai` resolves it (the global provider) and metered', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    const g = globalThis as { AI_SDK_DEFAULT_PROVIDER?: unknown };
    g.AI_SDK_DEFAULT_PROVIDER = openai;
    try {
      await ai.generateText({ model: 'gpt-4o-mini', prompt: 'x' });
    } finally {
      delete g.AI_SDK_DEFAULT_PROVIDER;
    }
    expectOpenAiCall(onlySpan(h), false);
  });
});

describe('hostile and odd input never breaks the app', () => {
  const fakeModel = (usage: unknown, extra: Record<string, unknown> = {}) => ({
    specificationVersion: 'v3',
    provider: 'fake.chat',
    modelId: 'fake-model',
    supportedUrls: {},
    doGenerate: async () => ({ content: [{ type: 'text', text: 'ok' }], finishReason: { unified: 'stop', raw: 'stop' }, usage, warnings: [] }),
    doStream: async () => {
      throw new Error('no');
    },
    ...extra,
  });

  it('implausible usage is reported on the span, never priced; the app gets its result', async () => {
    const res = await ai.generateText({
      model: fakeModel({ inputTokens: { total: -5, noCache: undefined, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: 1e12, text: undefined, reasoning: undefined } }) as any,
      prompt: 'x',
    });
    expect(res.text).toBe('ok');
    const span = onlySpan(h);
    expect(String(span.attributes['tokenmeter.usage.invalid'])).toMatch(/negative/);
    expect(usageAttrs(span.attributes)['gen_ai.usage.input_tokens']).toBeUndefined();
  });

  it('a model whose doGenerate throws synchronously: the same error reaches the app, the span records it', async () => {
    const boom = new TypeError('sync boom');
    const model = fakeModel(undefined, {
      doGenerate: () => {
        throw boom;
      },
    });
    await expect(ai.generateText({ model: model as any, prompt: 'x', maxRetries: 0 })).rejects.toBe(boom);
    expect(onlySpan(h).attributes['error.type']).toBe('TypeError');
  });

  it('things that are not models pass through untouched, and a proxied model keeps its own members', () => {
    for (const v of [undefined, null, 42, 'id', { doGenerate: 1 }, [], () => 1]) expect(meteredModel(v, 'language')).toBe(v);
    class Private {
      #secret = 'kept';
      specificationVersion = 'v3';
      provider = 'p.chat';
      modelId = 'm';
      get supportedUrls() {
        return { 'image/*': [/x/] };
      }
      reveal(): string {
        return this.#secret;
      }
      doGenerate(): Promise<never> {
        return Promise.reject(new Error('x'));
      }
    }
    const model = new Private();
    const p = meteredModel(model, 'language') as Private;
    expect(p).not.toBe(model);
    expect(p.reveal()).toBe('kept');
    expect(p.supportedUrls).toEqual({ 'image/*': [/x/] });
    expect(p.modelId).toBe('m');
    expect(meteredModel(model, 'language')).toBe(p); // one proxy per model
    expect(meteredModel(p, 'language')).toBe(p); // never a proxy of a proxy
  });

  it('provider names map to the GenAI conventions; hostile ones do not pass through unbounded', () => {
    expect(aiSdkProviderName('openai.chat')).toBe('openai');
    expect(aiSdkProviderName('openai.responses')).toBe('openai');
    expect(aiSdkProviderName('anthropic.messages')).toBe('anthropic');
    expect(aiSdkProviderName('google.generative-ai')).toBe('gcp.gemini');
    expect(aiSdkProviderName('google.vertex.chat')).toBe('gcp.vertex_ai');
    expect(aiSdkProviderName('amazon-bedrock')).toBe('aws.bedrock');
    expect(aiSdkProviderName('azure.responses')).toBe('azure.ai.openai');
    expect(aiSdkProviderName('mistral.chat')).toBe('mistral_ai');
    expect(aiSdkProviderName('xai.chat')).toBe('x_ai');
    expect(aiSdkProviderName('x'.repeat(10_000))).toBe('unknown');
    expect(aiSdkProviderName(undefined)).toBe('unknown');
    expect(aiSdkProviderName({})).toBe('unknown');
  });

  it('patchAiSdk leaves a module that is not `ai` alone, and patching twice meters once', async () => {
    expect(patchAiSdk({ generateText: 1 }).done).toEqual([]);
    const twice = patchAiSdk(ai);
    expect(twice.exports).toBe(ai);
    mock.setFixedUsage(OPENAI_USAGE);
    await (twice.exports as typeof aiModule).generateText({ model: openai.chat('gpt-4o-mini'), prompt: 'x' });
    expect(h.finished()).toHaveLength(1);
  });
});

// `ai` 7 declares Node 22 or later (engines) and uses APIs Node 20 lacks: on Node 20 these tests do not run, and
// say why in their name. CI runs test/instrumentation on Node 22 and 24 too, where they always run.
describe.skipIf(NODE_MAJOR < 22)(`ai 7 with @ai-sdk/openai 4 (needs Node 22+; this is Node ${process.versions.node})`, () => {
  let ai7: typeof aiModule;
  let openai4: ReturnType<typeof createOpenAI>;

  beforeAll(async () => {
    const ns = await import('ai-v7' as string);
    const patched = patchAiSdk(ns);
    expect(patched.done).toEqual(expect.arrayContaining(['generateText', 'streamText', 'generateObject', 'streamObject', 'embed', 'embedMany', 'ToolLoopAgent']));
    ai7 = patched.exports as typeof aiModule;
    expect(req('ai-v7/package.json').version).toMatch(/^7\./);
    const { createOpenAI: create4 } = (await import('ai-sdk-openai-v4' as string)) as { createOpenAI: typeof createOpenAI };
    openai4 = create4({ baseURL: mock.openaiBaseURL, apiKey: 'test-key' });
  });

  it('generateText and streamText: one span each, priced exactly, attributed through withUser', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    await withUser({ id: 'user-7x' }, async () => {
      const res = await ai7.generateText({ model: openai4.chat('gpt-4o-mini') as any, prompt: 'x' });
      expect(res.text.length).toBeGreaterThan(0);
      await ai7.streamText({ model: openai4('gpt-4o-mini') as any, prompt: 'x' }).consumeStream();
    });
    const spans = h.finished();
    expect(spans).toHaveLength(2);
    expectOpenAiCall(spans[0], false);
    expectOpenAiCall(spans[1], true);
    for (const s of spans) expect(s.attributes['user.id']).toBe('user-7x');
  });

  it('generateObject, streamObject, embed and embedMany', async () => {
    mock.setFixedUsage(OPENAI_USAGE);
    const schema = z.object({ answer: z.string() });
    await ai7.generateObject({ model: openai4.chat('gpt-4o-mini') as any, schema, prompt: 'x' }).catch(() => undefined);
    const so = ai7.streamObject({ model: openai4.chat('gpt-4o-mini') as any, schema, prompt: 'x', onError: () => {} });
    for await (const _ of so.partialObjectStream) void _;
    const spans = h.finished();
    expect(spans).toHaveLength(2);
    expectOpenAiCall(spans[0], false);
    expectOpenAiCall(spans[1], true);
    h.reset();
    mock.setFixedUsage({ input: 200, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 });
    const model = openai4.embedding('text-embedding-3-small') as any;
    await ai7.embed({ model, value: 'a' });
    await ai7.embedMany({ model, values: ['a', 'b'] });
    const e = h.finished();
    expect(e.map((s) => s.name)).toEqual(['embeddings text-embedding-3-small', 'embeddings text-embedding-3-small']);
    for (const s of e) expect(priced(s).totalUsd).toBe('0.000004');
  });
});
