import { diag, DiagLogLevel, type DiagLogger, type Meter, type MeterProvider, type Tracer, type TracerProvider } from '@opentelemetry/api';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { disable, instrument } from '../../src/instrumentation/index.js';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { createHarness, onlySpan, usageAttrs, type Harness } from './harness.js';

const messages = [{ role: 'user' as const, content: 'hello' }];
let h: Harness;
let mock: MockProvider;
let client: OpenAI;
const errors: string[] = [];

const logger: DiagLogger = {
  error: (m: string) => errors.push(m),
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  verbose: () => undefined,
};

beforeAll(async () => {
  diag.setLogger(logger, DiagLogLevel.ERROR);
  h = await createHarness();
  instrument(OpenAI);
  mock = await startMockProvider({ seed: 2 });
  client = new OpenAI({ apiKey: 'k', baseURL: mock.openaiBaseURL, maxRetries: 0 });
});

afterAll(async () => {
  diag.disable();
  await mock.close();
  await h.shutdown();
});

afterEach(() => {
  h.reset();
  errors.length = 0;
  mock.reset();
});

describe('tokenmeter never breaks the app', () => {
  it('lets the call through when the tracer throws', async () => {
    const broken: TracerProvider = {
      getTracer: () =>
        ({
          startSpan: () => {
            throw new Error('tracer exploded');
          },
        }) as unknown as Tracer,
    };
    h.instrumentation.setTracerProvider(broken);
    try {
      const res = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
      expect(res.choices[0].message.content).toMatch(/\.$/);
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
      const chunks: unknown[] = [];
      for await (const c of stream) chunks.push(c);
      expect(chunks.length).toBeGreaterThan(3);
      // Nothing was instrumented, so the request went out as the app wrote it.
      expect(mock.requests.at(-1)?.body.stream_options).toBeUndefined();
      expect(errors.some((e) => e.includes('failed to start recording'))).toBe(true);
    } finally {
      h.instrumentation.setTracerProvider(h.tracerProvider);
    }
  });

  it('returns the response when recording metrics throws, and still ends the span', async () => {
    const throwingMeter = {
      createHistogram: () => ({
        record: () => {
          throw new Error('meter exploded');
        },
      }),
    } as unknown as Meter;
    const provider: MeterProvider = { getMeter: () => throwingMeter };
    h.instrumentation.setMeterProvider(provider);
    try {
      const res = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
      expect(res.object).toBe('chat.completion');
      expect(errors.some((e) => e.includes('failed to record an LLM call'))).toBe(true);
      expect(onlySpan(h).attributes['gen_ai.response.id']).toBe(res.id);
    } finally {
      h.instrumentation.setMeterProvider(h.meterProvider);
    }
  });

  it('reports implausible provider usage on the span instead of pricing it', async () => {
    mock.setFixedUsage({ input: 9e12, cache_read: 0, cache_write: 0, output: 1, reasoning: 0 });
    const res = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(res.usage?.prompt_tokens).toBe(9e12);
    const span = onlySpan(h);
    expect(String(span.attributes['tokenmeter.usage.invalid'])).toMatch(/prompt_tokens/);
    expect(usageAttrs(span.attributes)).toEqual({ 'tokenmeter.usage.invalid': span.attributes['tokenmeter.usage.invalid'] });
  });

  it('passes calls with unexpected arguments straight to the SDK', async () => {
    // The SDK decides what a bad call means (here a synchronous TypeError); tokenmeter does not change it.
    expect(() => client.chat.completions.create(undefined as never)).toThrow(TypeError);
    expect(h.finished().length).toBe(0);
  });

  it('still ends a stream aborted before reading when its AbortController is frozen', async () => {
    // tokenmeter sees an abort through an own `abort` on the stream's controller; a frozen controller cannot take
    // one, and then the 'abort' event must do.
    const Original = globalThis.AbortController;
    class FrozenAbortController extends Original {
      constructor() {
        super();
        Object.freeze(this);
      }
    }
    globalThis.AbortController = FrozenAbortController;
    let controller: AbortController;
    try {
      const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
      controller = stream.controller;
    } finally {
      globalThis.AbortController = Original;
    }
    expect(Object.isFrozen(controller)).toBe(true);
    controller.abort();
    const span = onlySpan(h);
    expect(span.attributes['tokenmeter.stream.end']).toBe('abort');
    expect(errors).toEqual([]);
  });
});

describe('disable()', () => {
  it('restores the SDK methods and stops recording; instrument() can patch again', async () => {
    const patched = OpenAI.Chat.Completions.prototype.create;
    disable();
    const restored = OpenAI.Chat.Completions.prototype.create;
    expect(restored).not.toBe(patched);
    expect(restored.name).toBe('create');
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(h.finished().length).toBe(0);

    h.instrumentation.enable();
    expect(instrument(OpenAI)).toContain('chat.completions.create');
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(h.finished().length).toBe(1);
  });
});
