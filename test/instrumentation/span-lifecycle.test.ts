/**
 * The span of a call: what it carries when it starts, and that it ends exactly once on every path the caller or
 * the provider can take (counted on the span's own `end()`, which the SDK would otherwise silently ignore the
 * second time). Also: a stream reads the same for the app with and without tokenmeter, for Anthropic too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context, Span, SpanOptions, Tracer, TracerProvider } from '@opentelemetry/api';
import { BasicTracerProvider, SimpleSpanProcessor, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { instrument } from '../../src/instrumentation/index.js';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { createHarness, type Harness } from './harness.js';

const messages = [{ role: 'user' as const, content: 'Count the ends.' }];

/** Records every span's attributes as they are when the span starts. */
class StartRecorder implements SpanProcessor {
  readonly started: Array<{ name: string; attributes: Record<string, unknown> }> = [];
  onStart(span: Span & ReadableSpan): void {
    this.started.push({ name: span.name, attributes: { ...span.attributes } });
  }
  onEnd(): void {}
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

/** Wraps a tracer provider and counts the `end()` calls of every span it starts. */
class EndCounter implements TracerProvider {
  readonly ends = new Map<Span, number>();
  constructor(private readonly inner: TracerProvider) {}
  getTracer(name: string, version?: string): Tracer {
    const tracer = this.inner.getTracer(name, version);
    const ends = this.ends;
    return {
      startSpan(spanName: string, options?: SpanOptions, ctx?: Context): Span {
        const span = tracer.startSpan(spanName, options, ctx);
        ends.set(span, 0);
        const end = span.end.bind(span);
        span.end = (time) => {
          ends.set(span, (ends.get(span) ?? 0) + 1);
          end(time);
        };
        return span;
      },
      startActiveSpan: tracer.startActiveSpan.bind(tracer),
    } as Tracer;
  }
  counts(): number[] {
    return [...this.ends.values()];
  }
}

let h: Harness;
let mock: MockProvider;
let openai: OpenAI;
let anthropic: Anthropic;
let recorder: StartRecorder;
let counter: EndCounter;
let provider: BasicTracerProvider;

beforeAll(async () => {
  h = await createHarness();
  recorder = new StartRecorder();
  provider = new BasicTracerProvider({ spanProcessors: [recorder, new SimpleSpanProcessor(h.spans)] });
  counter = new EndCounter(provider);
  h.instrumentation.setTracerProvider(counter);
  instrument(OpenAI);
  instrument(Anthropic);
  mock = await startMockProvider({ seed: 13 });
  openai = new OpenAI({ apiKey: 'k', baseURL: mock.openaiBaseURL, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'k', baseURL: mock.url, maxRetries: 0 });
});

afterAll(async () => {
  await mock.close();
  await provider.shutdown();
  await h.shutdown();
});

afterEach(() => {
  h.reset();
  recorder.started.length = 0;
  counter.ends.clear();
  mock.reset();
});

async function drain(stream: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of stream) n++;
  return n;
}

/** Runs one path; afterwards exactly one span was started and it was ended exactly once. */
async function path(run: () => Promise<unknown>): Promise<ReadableSpan> {
  await run();
  await sleep(20); // anything late (a second end from a straggling callback) would land by now
  expect(counter.counts()).toEqual([1]);
  expect(h.finished().length).toBe(1);
  return h.finished()[0];
}

describe('a span starts with the operation, provider and model, and CLIENT kind', () => {
  it.each([
    ['openai chat', () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }), 'chat gpt-4o-mini', 'chat', 'openai_compatible'],
    ['openai responses', () => openai.responses.create({ model: 'gpt-4.1', input: 'hi' }), 'chat gpt-4.1', 'chat', 'openai_compatible'],
    ['openai embeddings', () => openai.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' }), 'embeddings text-embedding-3-small', 'embeddings', 'openai_compatible'],
    ['anthropic messages', () => anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 16, messages }), 'chat claude-haiku-4-5', 'chat', 'anthropic'],
  ] as const)('%s', async (_what, run, name, operation, providerName) => {
    await path(run);
    expect(recorder.started).toHaveLength(1);
    expect(recorder.started[0].name).toBe(name);
    expect(recorder.started[0].attributes).toMatchObject({
      'gen_ai.operation.name': operation,
      'gen_ai.provider.name': providerName,
      'gen_ai.request.model': name.split(' ')[1],
    });
    // Response attributes only arrive at the end.
    expect(recorder.started[0].attributes['gen_ai.response.id']).toBeUndefined();
  });
});

describe('a span ends exactly once on every path', () => {
  it('OpenAI: completion, withResponse(), asResponse()', async () => {
    await path(() => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }));
    h.reset();
    counter.ends.clear();
    await path(() => openai.chat.completions.create({ model: 'gpt-4o-mini', messages }).withResponse());
    h.reset();
    counter.ends.clear();
    await path(async () => (await openai.chat.completions.create({ model: 'gpt-4o-mini', messages }).asResponse()).text());
  });

  it('OpenAI: a stream read to its end, then iterated a second time', async () => {
    const span = await path(async () => {
      const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
      expect(await drain(stream)).toBeGreaterThan(3);
      await expect(drain(stream)).rejects.toThrow(/consumed|iterated/i);
    });
    expect(span.attributes['error.type']).toBeUndefined();
  });

  it('OpenAI: tee() with both branches read, and toReadableStream()', async () => {
    await path(async () => {
      const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
      const [a, b] = stream.tee();
      expect(await drain(a)).toBe(await drain(b));
    });
    h.reset();
    counter.ends.clear();
    await path(async () => {
      const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
      const reader = stream.toReadableStream().getReader();
      while (!(await reader.read()).done) {
        // read every line
      }
    });
  });

  it('OpenAI: break, abort mid-stream, abort before the response, an HTTP error, a stream cut off', async () => {
    const broke = await path(async () => {
      const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
      for await (const _ of stream) break;
    });
    expect(broke.attributes['tokenmeter.stream.end']).toBe('break');
    h.reset();
    counter.ends.clear();

    mock.setChunkDelay(10);
    const aborted = await path(async () => {
      const ac = new AbortController();
      const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }, { signal: ac.signal });
      let n = 0;
      for await (const _ of stream) if (++n === 2) ac.abort();
    });
    expect(aborted.attributes['tokenmeter.stream.end']).toBe('abort');
    mock.setChunkDelay(0);
    h.reset();
    counter.ends.clear();

    const early = await path(async () => {
      const ac = new AbortController();
      ac.abort();
      await expect(openai.chat.completions.create({ model: 'gpt-4o-mini', messages }, { signal: ac.signal })).rejects.toThrow();
    });
    expect(early.attributes['error.type']).toBe('APIUserAbortError');
    h.reset();
    counter.ends.clear();

    mock.failNext(1, 500);
    const failed = await path(() => expect(openai.chat.completions.create({ model: 'gpt-4o-mini', messages })).rejects.toThrow());
    expect(failed.attributes['error.type']).toBe('InternalServerError');
    h.reset();
    counter.ends.clear();

    mock.breakNextStream(3);
    const cut = await path(async () => {
      const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
      await expect(drain(stream)).rejects.toThrow();
    });
    expect(cut.attributes['error.type']).toBeDefined();
  });

  it('a stream aborted through its controller before anything read it (OpenAI and Anthropic)', async () => {
    const o = await path(async () => {
      const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true });
      stream.controller.abort();
    });
    expect(o.attributes['tokenmeter.stream.end']).toBe('abort');
    // The prompt was processed (the provider answered), so its size is estimated and labelled.
    expect(o.attributes['tokenmeter.usage.estimated']).toBe(true);
    h.reset();
    counter.ends.clear();
    const a = await path(async () => {
      const stream = await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 16, messages, stream: true });
      stream.controller.abort();
      // Reading it afterwards neither fails differently nor ends the span again.
      await drain(stream).catch(() => undefined);
    });
    expect(a.attributes['tokenmeter.stream.end']).toBe('abort');
  });

  it("a stream aborted through the caller's AbortSignal before anything read it (OpenAI and Anthropic)", async () => {
    // The abort reaches the stream's controller through the SDK's forwarding of the request signal, not through
    // stream.controller: tokenmeter must see it all the same.
    const o = await path(async () => {
      const ac = new AbortController();
      const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages, stream: true }, { signal: ac.signal });
      ac.abort();
      expect(stream.controller.signal.aborted).toBe(true);
    });
    expect(o.attributes['tokenmeter.stream.end']).toBe('abort');
    h.reset();
    counter.ends.clear();
    const a = await path(async () => {
      const ac = new AbortController();
      const stream = await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 16, messages, stream: true }, { signal: ac.signal });
      ac.abort();
      expect(stream.controller.signal.aborted).toBe(true);
      await drain(stream).catch(() => undefined);
    });
    expect(a.attributes['tokenmeter.stream.end']).toBe('abort');
  });

  it('OpenAI responses stream, read to its end and broken off', async () => {
    await path(async () => drain(await openai.responses.create({ model: 'gpt-4.1', input: 'hi', stream: true })));
    h.reset();
    counter.ends.clear();
    const span = await path(async () => {
      for await (const _ of await openai.responses.create({ model: 'gpt-4.1', input: 'hi', stream: true })) break;
    });
    expect(span.attributes['tokenmeter.stream.end']).toBe('break');
  });

  it('Anthropic: completion, stream, messages.stream(), break, MessageStream.abort(), an HTTP error, a stream cut off', async () => {
    await path(() => anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 16, messages }));
    h.reset();
    counter.ends.clear();
    await path(async () => drain(await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 16, messages, stream: true })));
    h.reset();
    counter.ends.clear();
    await path(() => anthropic.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 16, messages }).finalMessage());
    h.reset();
    counter.ends.clear();
    await path(() => anthropic.beta.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 16, messages }).finalMessage());
    h.reset();
    counter.ends.clear();

    const broke = await path(async () => {
      for await (const _ of await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 16, messages, stream: true })) break;
    });
    expect(broke.attributes['tokenmeter.stream.end']).toBe('break');
    h.reset();
    counter.ends.clear();

    mock.setChunkDelay(10);
    await path(async () => {
      const ms = anthropic.messages.stream({ model: 'claude-haiku-4-5', max_tokens: 16, messages });
      ms.on('streamEvent', (ev) => {
        if (ev.type === 'content_block_delta') ms.abort();
      });
      await expect(ms.finalMessage()).rejects.toThrow();
    });
    mock.setChunkDelay(0);
    h.reset();
    counter.ends.clear();

    mock.failNext(1, 500);
    const failed = await path(() => expect(anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 16, messages })).rejects.toThrow());
    expect(failed.attributes['error.type']).toBe('InternalServerError');
    h.reset();
    counter.ends.clear();

    mock.breakNextStream(3);
    const cut = await path(async () => {
      const stream = await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 16, messages, stream: true });
      await expect(drain(stream)).rejects.toThrow();
    });
    expect(cut.attributes['error.type']).toBeDefined();
    // The connection broke after message_start: its real input count is kept, the output is a labelled estimate.
    expect(cut.attributes['tokenmeter.usage.estimated']).toBe(true);
  });
});

describe('an Anthropic stream reads the same with and without tokenmeter', () => {
  async function events(instrumented: boolean): Promise<unknown[]> {
    const twin = await startMockProvider({ seed: 29 });
    if (!instrumented) h.instrumentation.disable();
    try {
      const c = new Anthropic({ apiKey: 'k', baseURL: twin.url });
      const out: unknown[] = [];
      const stream = await c.messages.create({ model: 'claude-haiku-4-5', max_tokens: 64, messages, stream: true });
      for await (const ev of stream) out.push(ev);
      return out;
    } finally {
      if (!instrumented) h.instrumentation.enable();
      await twin.close();
    }
  }

  it('same events, same order, same content', async () => {
    const withMeter = await events(true);
    expect(h.finished().length).toBe(1);
    const plain = await events(false);
    expect(h.finished().length).toBe(1);
    expect(withMeter.length).toBeGreaterThan(4);
    expect(JSON.stringify(withMeter)).toBe(JSON.stringify(plain));
  });
});
