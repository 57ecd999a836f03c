/**
 * tokenmeter writes the attributes it builds straight into the SDK span (span-attributes.ts) instead of through
 * `setAttributes`: the result must be exactly what `setAttributes` gives, under every span limit a user can set
 * (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT and their OTEL_ATTRIBUTE_* forms), for
 * hostile values too. Compared against the real SDK span, and end to end through a real SDK call.
 */
import { context, INVALID_SPAN_CONTEXT, trace, type Attributes, type Span } from '@opentelemetry/api';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanLimits } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrument } from '../../src/instrumentation/index.js';
import { addSpanAttributes } from '../../src/instrumentation/span-attributes.js';
import { TokenmeterInstrumentation } from '../../src/instrumentation/instrumentation.js';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';

const LONG = 'x'.repeat(300);
const cyclic: Record<string, unknown> = { a: 1 };
cyclic.self = cyclic;

/** Everything tokenmeter sets, and what a hostile provider response could make it set. */
const VALUES: Attributes = {
  'gen_ai.response.model': 'claude-haiku-4-5-20251001',
  'gen_ai.response.id': LONG,
  'gen_ai.response.finish_reasons': ['end_turn', LONG],
  'gen_ai.usage.input_tokens': 12,
  'gen_ai.usage.output_tokens': 0,
  'tokenmeter.usage.estimated': true,
  'tokenmeter.nan': Number.NaN,
  'tokenmeter.empty_array': [],
  'tokenmeter.mixed_array': [1, 'a'] as unknown as string[],
  'tokenmeter.number_array': [1, 2, 3],
  'tokenmeter.null_in_array': ['a', null] as unknown as string[],
  'tokenmeter.object': { model: 'x' } as unknown as string,
  'tokenmeter.cyclic': cyclic as unknown as string,
  'tokenmeter.null': null as unknown as string,
  'tokenmeter.undefined': undefined,
  '': 'empty key',
  // Overwrites a creation attribute: not a new key, so never dropped by the count limit.
  'gen_ai.request.model': 'overwritten',
};

const LIMITS: Array<[string, SpanLimits]> = [
  ['no limits', {}],
  ['a count limit below what is set', { attributeCountLimit: 4 }],
  ['a count limit reached midway', { attributeCountLimit: 9 }],
  ['a count limit of 0', { attributeCountLimit: 0 }],
  ['a value length limit', { attributeValueLengthLimit: 5 }],
  ['a value length limit of 1', { attributeValueLengthLimit: 1 }],
  ['both limits', { attributeCountLimit: 7, attributeValueLengthLimit: 3 }],
];

function startTwo(spanLimits: SpanLimits): { ours: Span; sdk: Span; exporter: InMemorySpanExporter } {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanLimits, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('t');
  const creation: Attributes = { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'm', 'server.port': 443 };
  return { ours: tracer.startSpan('ours', { attributes: creation }), sdk: tracer.startSpan('sdk', { attributes: creation }), exporter };
}

function finished(exporter: InMemorySpanExporter, name: string): ReadableSpan {
  const s = exporter.getFinishedSpans().find((x) => x.name === name);
  if (s === undefined) throw new Error(`no span ${name}`);
  return s;
}

describe('addSpanAttributes gives what the SDK span setAttributes gives', () => {
  it.each(LIMITS)('with %s', (_what, limits) => {
    const { ours, sdk, exporter } = startTwo(limits);
    // Twice, as a call does (request attributes at start, response and usage attributes at the end).
    const first: Attributes = { 'gen_ai.request.max_tokens': 64, 'user.id': 'user-with-a-long-id', 'gen_ai.request.stream': true };
    addSpanAttributes(ours, first);
    sdk.setAttributes(first);
    addSpanAttributes(ours, VALUES);
    sdk.setAttributes(VALUES);
    ours.end();
    sdk.end();
    const a = finished(exporter, 'ours');
    const b = finished(exporter, 'sdk');
    expect(a.attributes).toEqual(b.attributes);
    expect(Object.keys(a.attributes)).toEqual(Object.keys(b.attributes));
    expect(a.droppedAttributesCount).toBe(b.droppedAttributesCount);
    if (limits.attributeCountLimit !== undefined) expect(Object.keys(a.attributes).length).toBeLessThanOrEqual(limits.attributeCountLimit);
    if (limits.attributeValueLengthLimit !== undefined) {
      for (const v of Object.values(a.attributes)) {
        if (typeof v === 'string') expect(v.length).toBeLessThanOrEqual(limits.attributeValueLengthLimit);
        if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') expect(x.length).toBeLessThanOrEqual(limits.attributeValueLengthLimit);
      }
    }
  });

  it('copies arrays: changing the caller’s array later does not change the span', () => {
    const { ours, exporter } = startTwo({});
    const reasons = ['stop'];
    addSpanAttributes(ours, { 'gen_ai.response.finish_reasons': reasons });
    reasons.push('length');
    ours.end();
    expect(finished(exporter, 'ours').attributes['gen_ai.response.finish_reasons']).toEqual(['stop']);
  });

  it('changes nothing on an ended span (as the SDK)', () => {
    const { ours, sdk, exporter } = startTwo({});
    ours.end();
    sdk.end();
    addSpanAttributes(ours, VALUES);
    sdk.setAttributes(VALUES);
    expect(finished(exporter, 'ours').attributes).toEqual(finished(exporter, 'sdk').attributes);
    expect(finished(exporter, 'ours').attributes['gen_ai.response.id']).toBeUndefined();
  });

  it('hands any other span (not the SDK’s) to its own setAttributes', () => {
    const got: Attributes[] = [];
    const other = Object.assign(Object.create(trace.wrapSpanContext(INVALID_SPAN_CONTEXT)) as Span, {
      setAttributes(a: Attributes) {
        got.push(a);
        return this;
      },
    });
    addSpanAttributes(other, { 'gen_ai.usage.input_tokens': 3 });
    expect(got).toEqual([{ 'gen_ai.usage.input_tokens': 3 }]);
  });
});

describe('an LLM call’s span respects the span limits set in the environment', () => {
  let mock: MockProvider;
  const saved = { ...process.env };

  beforeAll(async () => {
    mock = await startMockProvider({ seed: 11 });
  });
  afterAll(async () => {
    await mock.close();
    process.env = saved;
  });

  async function oneCall(env: Record<string, string>, run: () => Promise<unknown>): Promise<ReadableSpan> {
    for (const k of ['OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT', 'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT', 'OTEL_ATTRIBUTE_COUNT_LIMIT', 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT']) {
      delete process.env[k];
    }
    Object.assign(process.env, env);
    // The SDK reads the limits from the environment when the provider is built.
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const instrumentation = new TokenmeterInstrumentation();
    instrumentation.setTracerProvider(provider);
    try {
      await context.with(context.active(), run);
    } finally {
      instrumentation.disable();
    }
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(1);
    await provider.shutdown();
    return spans[0];
  }

  const anthropicCall = (): Promise<unknown> => {
    instrument(Anthropic);
    const client = new Anthropic({ apiKey: 'k', baseURL: mock.url, maxRetries: 0 });
    return client.messages.create({ model: 'claude-haiku-4-5', max_tokens: 32, messages: [{ role: 'user', content: 'hi' }] });
  };
  const openaiCall = (): Promise<unknown> => {
    instrument(OpenAI);
    const client = new OpenAI({ apiKey: 'k', baseURL: `${mock.url}/v1`, maxRetries: 0 });
    return client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 32, messages: [{ role: 'user', content: 'hi' }] });
  };

  it.each([
    ['anthropic', anthropicCall],
    ['openai', openaiCall],
  ] as const)('%s: a count limit keeps the attributes asked for at creation and counts the rest as dropped', async (_p, run) => {
    const all = await oneCall({}, run);
    const total = Object.keys(all.attributes).length;
    expect(total).toBeGreaterThan(8);
    expect(all.droppedAttributesCount).toBe(0);
    const span = await oneCall({ OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: '5' }, run);
    expect(Object.keys(span.attributes).sort()).toEqual(['gen_ai.operation.name', 'gen_ai.provider.name', 'gen_ai.request.model', 'server.address', 'server.port']);
    expect(span.droppedAttributesCount).toBe(total - 5);
    const general = await oneCall({ OTEL_ATTRIBUTE_COUNT_LIMIT: '7' }, run);
    expect(Object.keys(general.attributes)).toHaveLength(7);
    expect(general.droppedAttributesCount).toBe(total - 7);
  });

  it.each([
    ['anthropic', anthropicCall],
    ['openai', openaiCall],
  ] as const)('%s: a value length limit cuts every string, in arrays too, and keeps numbers', async (_p, run) => {
    const all = await oneCall({}, run);
    for (const [env, limit] of [
      [{ OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: '4' }, 4],
      [{ OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '6' }, 6],
    ] as const) {
      const span = await oneCall(env, run);
      expect(Object.keys(span.attributes)).toEqual(Object.keys(all.attributes));
      for (const [k, v] of Object.entries(all.attributes)) {
        const got = span.attributes[k];
        if (typeof v === 'string') {
          expect(typeof got).toBe('string');
          expect((got as string).length).toBeLessThanOrEqual(limit);
          // Each call has its own response id; every other string is the same on every call.
          if (k !== 'gen_ai.response.id') expect([k, got]).toEqual([k, v.slice(0, limit)]);
        } else if (Array.isArray(v)) {
          expect([k, got]).toEqual([k, v.map((x) => (typeof x === 'string' ? x.slice(0, limit) : x))]);
        } else {
          // Numbers (the usage) and booleans are never cut.
          expect([k, typeof got]).toEqual([k, typeof v]);
        }
      }
    }
    expect(typeof all.attributes['gen_ai.usage.input_tokens']).toBe('number');
  });
});
