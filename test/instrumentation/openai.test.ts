import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { context, propagation, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import OpenAI, { APIPromise, AzureOpenAI, OpenAI as NamedOpenAI } from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { instrument, withUser } from '../../src/instrumentation/index.js';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { estimateChatTokens, estimateTokens, normalizeGenAiAttributes, usageToGenAiAttributes, type Usage } from '../../src/usage/index.js';
import { collectMetrics, onlySpan, usageAttrs, useHarnessWithMock, type Harness } from './harness.js';

const MODEL = 'gpt-4o-mini';
const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Summarise the meter.' },
];

let h: Harness;
let mock: MockProvider;
let client: OpenAI;

const env = useHarnessWithMock({ seed: 7, createdSeconds: 1_700_000_000 });

beforeAll(() => {
  ({ h, mock } = env);
  expect(instrument(OpenAI)).toEqual(['chat.completions.create', 'responses.create', 'embeddings.create']);
  client = new OpenAI({ apiKey: 'test-key', baseURL: mock.openaiBaseURL, maxRetries: 2 });
});

function lastSent(): Usage {
  expect(mock.usageSent.length).toBeGreaterThan(0);
  return mock.usageSent[mock.usageSent.length - 1].usage;
}

/**
 * The chunks a caller sees for one streamed request against a fresh mock (same seed, so the same answer),
 * with tokenmeter on or off.
 */
async function streamedChunks(instrumented: boolean, params: Record<string, unknown>): Promise<{ chunks: unknown[]; sent: Usage | undefined; body: any }> {
  const twin = await startMockProvider({ seed: 7, createdSeconds: 1_700_000_000 });
  if (!instrumented) h.instrumentation.disable();
  try {
    const c = new OpenAI({ apiKey: 'k', baseURL: twin.openaiBaseURL });
    const chunks: unknown[] = [];
    const stream = await c.chat.completions.create({ model: MODEL, messages, stream: true, ...params } as any);
    for await (const chunk of stream as any) chunks.push(chunk);
    return { chunks, sent: twin.usageSent[0]?.usage, body: twin.requests[0].body };
  } finally {
    if (!instrumented) h.instrumentation.enable();
    await twin.close();
  }
}

function buckets(u: Usage): Usage {
  return { input: u.input, cache_read: u.cache_read, cache_write: u.cache_write, output: u.output, reasoning: u.reasoning };
}

describe('OpenAI chat completions (openai 6)', () => {
  it('records a non-streaming call with the provider usage, as an APIPromise', async () => {
    const promise = client.chat.completions.create({ model: MODEL, messages, max_tokens: 50, temperature: 0.2 });
    expect(promise).toBeInstanceOf(APIPromise);
    const res = await promise;
    expect(res.choices[0].message.content).toMatch(/\.$/);
    const span = onlySpan(h);
    expect(span.name).toBe(`chat ${MODEL}`);
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    const sent = lastSent();
    expect(sent.input).toBe(estimateChatTokens(messages, MODEL));
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai_compatible',
      'server.address': '127.0.0.1',
      'gen_ai.request.model': MODEL,
      'gen_ai.response.model': MODEL,
      'gen_ai.response.id': res.id,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.request.max_tokens': 50,
      'gen_ai.request.temperature': 0.2,
      ...usageToGenAiAttributes(sent),
    });
    expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
    expect(span.attributes['gen_ai.input.messages']).toBeUndefined();
    expect(buckets(normalizeGenAiAttributes(span.attributes).usage)).toEqual(buckets(sent));
  });

  it('records the same call for the default and the named export, and keeps withResponse()', async () => {
    const named = new NamedOpenAI({ apiKey: 'k', baseURL: mock.openaiBaseURL });
    const { data, response, request_id } = await named.chat.completions.create({ model: MODEL, messages }).withResponse();
    expect(response.status).toBe(200);
    expect(request_id).toMatch(/^req_mock_/);
    const span = onlySpan(h);
    expect(span.attributes['gen_ai.response.id']).toBe(data.id);
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(lastSent().output);
  });

  it('reads usage from a clone when the caller takes the raw Response with asResponse()', async () => {
    const response = await client.chat.completions.create({ model: MODEL, messages }).asResponse();
    const body = (await response.json()) as { id: string; usage: { prompt_tokens: number } };
    await sleep(20);
    const span = onlySpan(h);
    expect(span.attributes['gen_ai.response.id']).toBe(body.id);
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(body.usage.prompt_tokens);
  });

  it('streams with real usage it asked for, and the caller sees exactly the chunks it would see without tokenmeter', async () => {
    const withMeter = await streamedChunks(true, {});
    // tokenmeter asked for usage on the wire...
    expect(withMeter.body.stream_options).toEqual({ include_usage: true });
    const span = onlySpan(h);
    expect(withMeter.sent).toBeDefined();
    expect(usageAttrs(span.attributes)).toEqual(usageToGenAiAttributes(withMeter.sent as Usage));
    expect(span.attributes['gen_ai.response.finish_reasons']).toEqual(['stop']);
    expect(span.attributes['gen_ai.request.stream']).toBe(true);
    // ...but the app sees the same chunks as without it: no usage-only chunk, no `usage: null` fields.
    const plain = await streamedChunks(false, {});
    expect(plain.body.stream_options).toBeUndefined();
    expect(withMeter.chunks.length).toBeGreaterThan(5);
    expect(JSON.stringify(withMeter.chunks)).toBe(JSON.stringify(plain.chunks));
    expect(withMeter.chunks.some((c: any) => 'usage' in c)).toBe(false);
  });

  it('leaves the usage chunk to a caller that asked for it', async () => {
    const withMeter = await streamedChunks(true, { stream_options: { include_usage: true } });
    expect((withMeter.chunks.at(-1) as any).usage.prompt_tokens).toBe(withMeter.sent?.input);
    const plain = await streamedChunks(false, { stream_options: { include_usage: true } });
    expect(JSON.stringify(withMeter.chunks)).toBe(JSON.stringify(plain.chunks));
    expect(onlySpan(h).attributes['gen_ai.usage.input_tokens']).toBe(withMeter.sent?.input);
  });

  it('does not inject include_usage when injectStreamUsage is off', async () => {
    h.instrumentation.setConfig({ injectStreamUsage: false });
    try {
      const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      expect(mock.requests.at(-1)?.body.stream_options).toBeUndefined();
      const span = onlySpan(h);
      expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
      expect(span.attributes['gen_ai.usage.output_tokens']).toBe(estimateTokens(text, MODEL));
    } finally {
      h.instrumentation.setConfig({});
    }
  });

  it('keeps the Stream type: tee(), toReadableStream() and controller', async () => {
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
    expect(stream.controller).toBeInstanceOf(AbortController);
    const [left, right] = stream.tee();
    const a: unknown[] = [];
    const b: unknown[] = [];
    for await (const c of left) a.push(c);
    for await (const c of right) b.push(c);
    expect(a).toEqual(b);
    expect(a.length).toBeGreaterThan(3);
    expect(onlySpan(h).attributes['gen_ai.usage.input_tokens']).toBe(lastSent().input);

    h.reset();
    const s2 = await client.chat.completions.create({ model: MODEL, messages, stream: true });
    const reader = s2.toReadableStream().getReader();
    let lines = 0;
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
      lines++;
    }
    expect(lines).toBe(a.length);
    expect(onlySpan(h).attributes['gen_ai.usage.output_tokens']).toBe(lastSent().output);
  });

  it('ends the span once when the caller breaks out of the stream, with a labelled estimate', async () => {
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
    let text = '';
    let n = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (++n === 3) break;
    }
    await sleep(10);
    const span = onlySpan(h);
    expect(span.attributes['tokenmeter.stream.end']).toBe('break');
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(estimateChatTokens(messages, MODEL));
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(estimateTokens(text, MODEL));
    expect(stream.controller.signal.aborted).toBe(true);
  });

  it('never estimates when estimateMissingUsage is off', async () => {
    h.instrumentation.setConfig({ estimateMissingUsage: false });
    try {
      const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
      for await (const _ of stream) break;
      const span = onlySpan(h);
      expect(usageAttrs(span.attributes)).toEqual({});
    } finally {
      h.instrumentation.setConfig({});
    }
  });

  it('ends the span once on abort through an AbortController', async () => {
    mock.setChunkDelay(15);
    const ac = new AbortController();
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true }, { signal: ac.signal });
    const seen: unknown[] = [];
    for await (const chunk of stream) {
      seen.push(chunk);
      if (seen.length === 2) ac.abort();
    }
    const span = onlySpan(h);
    expect(span.attributes['tokenmeter.stream.end']).toBe('abort');
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
  });

  it('records an abort before the response as an error without usage', async () => {
    mock.setChunkDelay(0);
    const ac = new AbortController();
    ac.abort();
    await expect(client.chat.completions.create({ model: MODEL, messages }, { signal: ac.signal })).rejects.toThrow();
    const span = onlySpan(h);
    expect(span.attributes['error.type']).toBe('APIUserAbortError');
    expect(usageAttrs(span.attributes)).toEqual({});
  });

  it('records one span for a call the SDK retried after a 429', async () => {
    mock.failNext(1, 429);
    await client.chat.completions.create({ model: MODEL, messages });
    expect(mock.requests.length).toBe(2);
    const span = onlySpan(h);
    expect(span.attributes['error.type']).toBeUndefined();
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(lastSent().input);
  });

  it('records a failed call with error.type and no usage, and the caller gets the SDK error', async () => {
    mock.failNext(3, 500);
    await expect(client.chat.completions.create({ model: MODEL, messages })).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    expect(mock.requests.length).toBe(3);
    const span = onlySpan(h);
    expect(span.attributes['error.type']).toBe('InternalServerError');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(usageAttrs(span.attributes)).toEqual({});
    await collectMetrics(h);
    const d = h.histogram('gen_ai.client.operation.duration');
    expect(d.find((p) => p.attributes['error.type'] === 'InternalServerError')?.value.count).toBe(1);
  });

  it('records a stream the provider broke off as an error with an estimate', async () => {
    mock.breakNextStream(4);
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
    await expect(
      (async () => {
        for await (const _ of stream) {
          // read until the connection drops
        }
      })(),
    ).rejects.toThrow();
    const span = onlySpan(h);
    expect(span.attributes['error.type']).toBeDefined();
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
    expect(mock.usageSent.length).toBe(0);
  });

  it('splits cached and reasoning tokens', async () => {
    const fixed: Usage = { input: 1200, cache_read: 800, cache_write: 0, output: 150, reasoning: 350 };
    mock.setFixedUsage(fixed);
    await client.chat.completions.create({ model: 'o3-mini', messages });
    const stream = await client.chat.completions.create({ model: 'o3-mini', messages, stream: true });
    for await (const _ of stream) {
      // drain
    }
    const spans = h.finished();
    expect(spans.length).toBe(2);
    for (const span of spans) {
      expect(usageAttrs(span.attributes)).toEqual({
        'gen_ai.usage.input_tokens': 2000,
        'gen_ai.usage.cache_read.input_tokens': 800,
        'gen_ai.usage.output_tokens': 500,
        'gen_ai.usage.reasoning.output_tokens': 350,
      });
      expect(buckets(normalizeGenAiAttributes(span.attributes).usage)).toEqual(fixed);
    }
  });

  it('estimates, labelled, when an OpenAI-compatible server ignores include_usage', async () => {
    mock.setIgnoreIncludeUsage(true);
    const model = 'compat-model';
    const stream = await client.chat.completions.create({ model, messages, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    const span = onlySpan(h);
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(estimateChatTokens(messages, model));
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(estimateTokens(text, model));
    await collectMetrics(h);
    const points = h.histogram('gen_ai.client.token.usage').filter((p) => p.attributes['gen_ai.request.model'] === model);
    expect(points.length).toBe(2);
    expect(points.every((p) => p.attributes['tokenmeter.usage.estimated'] === true)).toBe(true);
    expect(points.find((p) => p.attributes['gen_ai.token.type'] === 'output')?.value.sum).toBe(estimateTokens(text, model));
  });

  it('records tool calls, streamed and not', async () => {
    const tools = [{ type: 'function' as const, function: { name: 'search', parameters: { type: 'object', properties: { query: { type: 'string' } } } } }];
    const res = await client.chat.completions.create({ model: MODEL, messages, tools });
    expect(res.choices[0].message.tool_calls?.[0]).toMatchObject({ type: 'function', function: { name: 'search' } });
    const stream = await client.chat.completions.create({ model: MODEL, messages, tools, stream: true });
    for await (const _ of stream) {
      // drain
    }
    const spans = h.finished();
    expect(spans.map((s) => s.attributes['gen_ai.response.finish_reasons'])).toEqual([['tool_calls'], ['tool_calls']]);
    expect(spans.map((s) => s.attributes['gen_ai.usage.output_tokens'])).toEqual(mock.usageSent.map((u) => u.usage.output));
  });

  it('records the GenAI metrics with the spec units and buckets, and time to first chunk', async () => {
    await client.chat.completions.create({ model: MODEL, messages });
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
    for await (const _ of stream) {
      // drain
    }
    await collectMetrics(h);
    const desc = h.histogramDescriptor('gen_ai.client.token.usage');
    expect(desc?.unit).toBe('{token}');
    expect(desc?.boundaries).toEqual([1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]);
    expect(h.histogramDescriptor('gen_ai.client.operation.duration')?.unit).toBe('s');
    const durationBuckets = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
    expect(h.histogramDescriptor('gen_ai.client.operation.duration')?.boundaries).toEqual(durationBuckets);
    expect(h.histogramDescriptor('gen_ai.client.operation.time_to_first_chunk')).toEqual({ unit: 's', boundaries: durationBuckets });
    const tokens = h.histogram('gen_ai.client.token.usage');
    const input = tokens.find((p) => p.attributes['gen_ai.token.type'] === 'input' && p.attributes['gen_ai.request.model'] === MODEL);
    const output = tokens.find((p) => p.attributes['gen_ai.token.type'] === 'output' && p.attributes['gen_ai.request.model'] === MODEL);
    const sentIn = mock.usageSent.reduce((s, u) => s + u.usage.input + u.usage.cache_read, 0);
    const sentOut = mock.usageSent.reduce((s, u) => s + u.usage.output + u.usage.reasoning, 0);
    expect(input?.value.sum).toBeGreaterThanOrEqual(sentIn);
    expect(output?.value.sum).toBeGreaterThanOrEqual(sentOut);
    expect(input?.attributes['gen_ai.provider.name']).toBe('openai_compatible');
    expect(input?.attributes['user.id']).toBeUndefined();
    // An OpenAI-compatible server is only told apart by its address, so the metrics keep server.* here.
    expect(input?.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai_compatible',
      'gen_ai.request.model': MODEL,
      'gen_ai.response.model': MODEL,
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(mock.url).port),
      'gen_ai.token.type': 'input',
    });
    const ttfc = h.histogram('gen_ai.client.operation.time_to_first_chunk');
    expect(ttfc.reduce((n, p) => n + p.value.count, 0)).toBeGreaterThanOrEqual(1);
  });

  it('captures message content only when asked', async () => {
    h.instrumentation.setConfig({ captureMessageContent: true });
    try {
      const res = await client.chat.completions.create({ model: MODEL, messages });
      const span = onlySpan(h);
      expect(JSON.parse(String(span.attributes['gen_ai.input.messages']))).toEqual(messages);
      expect(String(span.attributes['gen_ai.output.messages'])).toContain(res.choices[0].message.content);
    } finally {
      h.instrumentation.setConfig({});
    }
  });
});

describe('attribution', () => {
  it('scopes calls to a user across awaits and timers with withUser', async () => {
    await withUser({ id: 'u-42', plan: 'pro', feature: 'summarise' }, async () => {
      await sleep(5);
      await new Promise((r) => setImmediate(r));
      await client.chat.completions.create({ model: MODEL, messages });
      await withUser({ feature: 'chat' }, () => client.chat.completions.create({ model: MODEL, messages }));
    });
    await client.chat.completions.create({ model: MODEL, messages });
    const spans = h.finished();
    expect(spans.map((s) => [s.attributes['user.id'], s.attributes['tokenmeter.plan'], s.attributes['tokenmeter.feature']])).toEqual([
      ['u-42', 'pro', 'summarise'],
      ['u-42', 'pro', 'chat'],
      [undefined, undefined, undefined],
    ]);
  });

  it('keeps concurrent users apart', async () => {
    const users = Array.from({ length: 12 }, (_, i) => ({ id: `user-${i}`, plan: i % 2 ? 'pro' : 'free' }));
    const ids = await Promise.all(
      users.map((u, i) =>
        withUser(u, async () => {
          await sleep((i * 7) % 5);
          if (i % 3 === 0) {
            const s = await client.chat.completions.create({ model: MODEL, messages, stream: true });
            let id = '';
            for await (const c of s) id = c.id;
            return id;
          }
          return (await client.chat.completions.create({ model: MODEL, messages })).id;
        }),
      ),
    );
    const spans = h.finished();
    expect(spans.length).toBe(users.length);
    for (const [i, u] of users.entries()) {
      const span = spans.find((s) => s.attributes['gen_ai.response.id'] === ids[i]);
      expect(span?.attributes['user.id']).toBe(u.id);
      expect(span?.attributes['tokenmeter.plan']).toBe(u.plan);
    }
  });

  it('honours user.id and tokenmeter.plan baggage from an upstream service; withUser wins', async () => {
    const baggage = propagation.createBaggage({ 'user.id': { value: 'upstream-user' }, 'tokenmeter.plan': { value: 'team' } });
    await context.with(propagation.setBaggage(context.active(), baggage), async () => {
      await client.chat.completions.create({ model: MODEL, messages });
      await withUser({ id: 'local-user' }, () => client.chat.completions.create({ model: MODEL, messages }));
    });
    const spans = h.finished();
    expect(spans[0].attributes).toMatchObject({ 'user.id': 'upstream-user', 'tokenmeter.plan': 'team' });
    expect(spans[1].attributes).toMatchObject({ 'user.id': 'local-user', 'tokenmeter.plan': 'team' });
  });

  it('ignores an invalid withUser argument instead of throwing', async () => {
    const out = await withUser({ id: '' }, async () => (await client.chat.completions.create({ model: MODEL, messages })).object);
    expect(out).toBe('chat.completion');
    expect(onlySpan(h).attributes['user.id']).toBeUndefined();
  });
});

describe('OpenAI responses and embeddings', () => {
  it('records responses.create, streaming and not', async () => {
    const res = await client.responses.create({ model: MODEL, input: 'Say something.', instructions: 'Be brief.' });
    expect(res.output_text.length).toBeGreaterThan(0);
    const stream = await client.responses.create({ model: MODEL, input: 'Say something.', stream: true });
    let text = '';
    for await (const ev of stream) if (ev.type === 'response.output_text.delta') text += ev.delta;
    expect(text.length).toBeGreaterThan(0);
    const spans = h.finished();
    expect(spans.length).toBe(2);
    expect(spans[0].attributes['gen_ai.response.id']).toBe(res.id);
    expect(spans[0].name).toBe(`chat ${MODEL}`);
    for (const [i, span] of spans.entries()) {
      expect(usageAttrs(span.attributes)).toEqual(usageToGenAiAttributes(mock.usageSent[i].usage));
      expect(span.attributes['gen_ai.response.finish_reasons']).toEqual(['completed']);
    }
  });

  it('records reasoning and cached tokens of responses', async () => {
    mock.setFixedUsage({ input: 10, cache_read: 90, cache_write: 0, output: 5, reasoning: 45 });
    await client.responses.create({ model: 'o4-mini', input: 'think' });
    expect(usageAttrs(onlySpan(h).attributes)).toEqual({
      'gen_ai.usage.input_tokens': 100,
      'gen_ai.usage.cache_read.input_tokens': 90,
      'gen_ai.usage.output_tokens': 50,
      'gen_ai.usage.reasoning.output_tokens': 45,
    });
  });

  it('records embeddings.create', async () => {
    const res = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha beta', 'gamma'] });
    expect(res.data.length).toBe(2);
    expect(res.data[0].embedding.length).toBe(8);
    const span = onlySpan(h);
    expect(span.name).toBe('embeddings text-embedding-3-small');
    expect(span.attributes['gen_ai.operation.name']).toBe('embeddings');
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(res.usage.prompt_tokens);
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(0);
  });
});

describe('module shapes', () => {
  it('instruments the CommonJS build of openai 6', async () => {
    const req = createRequire(import.meta.url);
    const cjs = req('openai') as typeof import('openai');
    const CjsOpenAI = cjs.OpenAI;
    expect(CjsOpenAI).not.toBe(OpenAI);
    expect(instrument(cjs)).toEqual(['chat.completions.create', 'responses.create', 'embeddings.create']);
    const c = new CjsOpenAI({ apiKey: 'k', baseURL: mock.openaiBaseURL });
    await c.chat.completions.create({ model: MODEL, messages });
    expect(onlySpan(h).attributes['gen_ai.usage.input_tokens']).toBe(lastSent().input);
  });

  it('instruments openai 5 (installed under another name) through instrument()', async () => {
    const v5 = await import('openai-v5');
    const OpenAI5 = v5.default;
    expect(instrument(v5)).toEqual(['chat.completions.create', 'responses.create', 'embeddings.create']);
    const c = new OpenAI5({ apiKey: 'k', baseURL: mock.openaiBaseURL });
    const res = await c.chat.completions.create({ model: MODEL, messages });
    const stream = await c.chat.completions.create({ model: MODEL, messages, stream: true });
    const chunks: unknown[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.some((ch: any) => 'usage' in ch)).toBe(false);
    const spans = h.finished();
    expect(spans.length).toBe(2);
    expect(spans[0].attributes['gen_ai.response.id']).toBe(res.id);
    expect(spans.map((s) => usageAttrs(s.attributes))).toEqual(mock.usageSent.map((u) => usageToGenAiAttributes(u.usage)));
  });

  it('names an AzureOpenAI client azure.ai.openai, with its server address', async () => {
    const azure = new AzureOpenAI({ apiKey: 'k', baseURL: mock.openaiBaseURL, apiVersion: '2024-10-21' });
    await azure.chat.completions.create({ model: MODEL, messages });
    expect(onlySpan(h).attributes).toMatchObject({ 'gen_ai.provider.name': 'azure.ai.openai', 'server.address': '127.0.0.1' });
    expect(mock.requests.at(-1)?.path).toBe(`/v1/deployments/${MODEL}/chat/completions`);
  });

  it('is idempotent: instrumenting twice records one span per call', async () => {
    instrument(OpenAI);
    instrument({ default: OpenAI });
    await client.chat.completions.create({ model: MODEL, messages });
    expect(h.finished().length).toBe(1);
  });
});
