import { setTimeout as sleep } from 'node:timers/promises';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import Anthropic, { APIPromise } from '@anthropic-ai/sdk';
import { beforeAll, describe, expect, it } from 'vitest';
import { instrument, withUser } from '../../src/instrumentation/index.js';
import type { MockProvider } from '../../src/mock-provider/index.js';
import { estimateChatTokens, estimateTokens, normalizeGenAiAttributes, usageToGenAiAttributes, type Usage } from '../../src/usage/index.js';
import { collectMetrics, onlySpan, usageAttrs, useHarnessWithMock, type Harness } from './harness.js';

const MODEL = 'claude-sonnet-4-5';
const messages = [{ role: 'user' as const, content: 'Explain the meter in one line.' }];

let h: Harness;
let mock: MockProvider;
let client: Anthropic;

const env = useHarnessWithMock({ seed: 3 });

beforeAll(() => {
  ({ h, mock } = env);
  expect(instrument(Anthropic)).toEqual(['messages.create', 'beta.messages.create']);
  // tokenmeter switched the SDK's own GenAI spans off, so calls are not counted twice.
  expect(process.env.ANTHROPIC_OPEN_TELEMETRY).toBe('false');
  client = new Anthropic({ apiKey: 'test-key', baseURL: mock.url, maxRetries: 2 });
});

function lastSent(): Usage {
  expect(mock.usageSent.length).toBeGreaterThan(0);
  return mock.usageSent[mock.usageSent.length - 1].usage;
}

const CACHED: Usage = { input: 25, cache_read: 4000, cache_write: 1500, cache_write_1h: 500, output: 120, reasoning: 0 };
const CACHED_ATTRS = {
  'gen_ai.usage.input_tokens': 5525,
  'gen_ai.usage.cache_read.input_tokens': 4000,
  'gen_ai.usage.cache_creation.input_tokens': 1500,
  'tokenmeter.usage.cache_creation.1h.input_tokens': 500,
  'gen_ai.usage.output_tokens': 120,
};

describe('Anthropic messages', () => {
  it('records a non-streaming call', async () => {
    const promise = client.messages.create({ model: MODEL, max_tokens: 256, messages, system: 'Be brief.' });
    expect(promise).toBeInstanceOf(APIPromise);
    const msg = await promise;
    const span = onlySpan(h);
    expect(span.name).toBe(`chat ${MODEL}`);
    expect(span.kind).toBe(SpanKind.CLIENT);
    const sent = lastSent();
    expect(sent.input).toBe(estimateChatTokens([{ role: 'system', content: 'Be brief.' }, ...messages]));
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'anthropic',
      'gen_ai.request.model': MODEL,
      'gen_ai.response.model': MODEL,
      'gen_ai.response.id': msg.id,
      'gen_ai.response.finish_reasons': ['end_turn'],
      'gen_ai.request.max_tokens': 256,
      'server.address': '127.0.0.1',
    });
    expect(usageAttrs(span.attributes)).toEqual(usageToGenAiAttributes(sent));
  });

  it('records the GenAI metrics with the low-cardinality attribute set (no server.*: the provider name says it)', async () => {
    await withUser({ id: 'u-1', plan: 'pro' }, () => client.messages.create({ model: MODEL, max_tokens: 64, messages }));
    await collectMetrics(h);
    const base = { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'anthropic', 'gen_ai.request.model': MODEL, 'gen_ai.response.model': MODEL, 'tokenmeter.plan': 'pro' };
    const duration = h.histogram('gen_ai.client.operation.duration').filter((p) => p.attributes['tokenmeter.plan'] === 'pro');
    expect(duration.map((p) => p.attributes)).toEqual([base]);
    const tokens = h.histogram('gen_ai.client.token.usage').filter((p) => p.attributes['tokenmeter.plan'] === 'pro');
    expect(tokens.map((p) => p.attributes).sort((a, b) => String(a['gen_ai.token.type']).localeCompare(String(b['gen_ai.token.type'])))).toEqual([
      { ...base, 'gen_ai.token.type': 'input' },
      { ...base, 'gen_ai.token.type': 'output' },
    ]);
  });

  it('streams with create({ stream: true }), counting message_start and cumulative message_delta once', async () => {
    mock.setFixedUsage(CACHED);
    const stream = await client.messages.create({ model: MODEL, max_tokens: 256, messages, stream: true });
    const types: string[] = [];
    for await (const ev of stream) types.push(ev.type);
    expect(types[0]).toBe('message_start');
    expect(types.at(-1)).toBe('message_stop');
    const span = onlySpan(h);
    expect(usageAttrs(span.attributes)).toEqual(CACHED_ATTRS);
    const back = normalizeGenAiAttributes(span.attributes).usage;
    expect(back).toEqual(CACHED);
    expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
  });

  it('records the cache 5m/1h split of a non-streaming call', async () => {
    mock.setFixedUsage(CACHED);
    await client.messages.create({ model: MODEL, max_tokens: 256, messages });
    expect(usageAttrs(onlySpan(h).attributes)).toEqual(CACHED_ATTRS);
  });

  it('records the messages.stream() helper as one call', async () => {
    const stream = client.messages.stream({ model: MODEL, max_tokens: 256, messages });
    let text = '';
    stream.on('text', (t) => {
      text += t;
    });
    const final = await stream.finalMessage();
    expect(final.content[0]).toMatchObject({ type: 'text', text });
    const span = onlySpan(h);
    expect(span.attributes['gen_ai.response.id']).toBe(final.id);
    expect(usageAttrs(span.attributes)).toEqual(usageToGenAiAttributes(lastSent()));
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(final.usage.output_tokens);
  });

  it('records beta.messages, streaming and not', async () => {
    const msg = await client.beta.messages.create({ model: MODEL, max_tokens: 64, messages });
    const s = client.beta.messages.stream({ model: MODEL, max_tokens: 64, messages });
    await s.finalMessage();
    const spans = h.finished();
    expect(spans.length).toBe(2);
    expect(spans[0].attributes['gen_ai.response.id']).toBe(msg.id);
    expect(spans.map((sp) => usageAttrs(sp.attributes))).toEqual(mock.usageSent.map((u) => usageToGenAiAttributes(u.usage)));
  });

  it('records tool use', async () => {
    const tools = [{ name: 'lookup', description: 'Look up a user', input_schema: { type: 'object' as const, properties: { query: { type: 'string' } } } }];
    const msg = await client.messages.create({ model: MODEL, max_tokens: 64, messages, tools });
    expect(msg.content[0].type).toBe('tool_use');
    const stream = await client.messages.create({ model: MODEL, max_tokens: 64, messages, tools, stream: true });
    for await (const _ of stream) {
      // drain
    }
    const spans = h.finished();
    expect(spans.map((s) => s.attributes['gen_ai.response.finish_reasons'])).toEqual([['tool_use'], ['tool_use']]);
    expect(spans.map((s) => s.attributes['gen_ai.usage.output_tokens'])).toEqual(mock.usageSent.map((u) => u.usage.output));
  });

  it('ends the span once when the caller breaks out of the stream', async () => {
    const stream = await client.messages.create({ model: MODEL, max_tokens: 64, messages, stream: true });
    let text = '';
    for await (const ev of stream) {
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') {
        text += ev.delta.text;
        if (text.length > 8) break;
      }
    }
    await sleep(10);
    const span = onlySpan(h);
    expect(span.attributes['tokenmeter.stream.end']).toBe('break');
    // message_start carried the real input count; no final output count arrived, so that part is estimated.
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(mock.requests.length > 0 ? estimateChatTokens(messages) : -1);
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(estimateTokens(text));
  });

  it('ends the span once on abort through an AbortController, and through MessageStream.abort()', async () => {
    mock.setChunkDelay(15);
    const ac = new AbortController();
    const stream = await client.messages.create({ model: MODEL, max_tokens: 64, messages, stream: true }, { signal: ac.signal });
    let n = 0;
    for await (const _ of stream) if (++n === 3) ac.abort();
    expect(onlySpan(h).attributes['tokenmeter.stream.end']).toBe('abort');

    h.reset();
    const ms = client.messages.stream({ model: MODEL, max_tokens: 64, messages });
    ms.on('streamEvent', (ev) => {
      if (ev.type === 'content_block_delta') ms.abort();
    });
    await expect(ms.finalMessage()).rejects.toThrow();
    await sleep(20);
    expect(h.finished().length).toBe(1);
  });

  it('records errors after the SDK retries, and a retried call once', async () => {
    mock.failNext(1, 429);
    await client.messages.create({ model: MODEL, max_tokens: 64, messages });
    expect(onlySpan(h).attributes['error.type']).toBeUndefined();
    h.reset();
    mock.failNext(3, 500);
    await expect(client.messages.create({ model: MODEL, max_tokens: 64, messages })).rejects.toBeInstanceOf(Anthropic.InternalServerError);
    const span = onlySpan(h);
    expect(span.attributes['error.type']).toBe('InternalServerError');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(usageAttrs(span.attributes)).toEqual({});
  });

  it('estimates, labelled, when no usage came back', async () => {
    mock.setOmitUsage(true);
    const msg = await client.messages.create({ model: MODEL, max_tokens: 64, messages });
    const text = msg.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
    const span = onlySpan(h);
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(estimateChatTokens(messages));
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(estimateTokens(text));
  });

  it('keeps concurrent users apart, across awaits', async () => {
    const users = ['ann', 'bob', 'cyd', 'dee', 'eve', 'fay'];
    const ids = await Promise.all(
      users.map((id, i) =>
        withUser({ id, plan: 'team', feature: 'assist' }, async () => {
          await sleep(i % 3);
          if (i % 2) return (await client.messages.stream({ model: MODEL, max_tokens: 32, messages }).finalMessage()).id;
          return (await client.messages.create({ model: MODEL, max_tokens: 32, messages })).id;
        }),
      ),
    );
    const spans = h.finished();
    expect(spans.length).toBe(users.length);
    for (const [i, id] of users.entries()) {
      const span = spans.find((s) => s.attributes['gen_ai.response.id'] === ids[i]);
      expect(span?.attributes).toMatchObject({ 'user.id': id, 'tokenmeter.plan': 'team', 'tokenmeter.feature': 'assist' });
    }
  });
});
