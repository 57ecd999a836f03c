/**
 * How a stream's chunks are read (src/instrumentation/stainless.ts, ObservedIterator). A stream whose chunks are
 * all the caller's (Anthropic; OpenAI when the caller asked for `include_usage` itself) is read beside the caller:
 * the caller gets the SDK's own promise for each chunk. A stream with the usage chunk tokenmeter injected is read
 * in between, to hide that chunk. Both must give the caller the same chunks as without tokenmeter, meter the call
 * exactly once, and record errors, breaks and concurrent pulls.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { instrument } from '../../src/instrumentation/index.js';
import { startMockProvider } from '../../src/mock-provider/index.js';
import { onlySpan, useHarnessWithMock, type Harness } from './harness.js';
import type { MockProvider } from '../../src/mock-provider/index.js';

const MODEL = 'gpt-4o-mini';
const messages = [{ role: 'user' as const, content: 'Read me in chunks.' }];
const OWN_USAGE = { stream: true as const, stream_options: { include_usage: true } };

let h: Harness;
let mock: MockProvider;
let openai: OpenAI;
let anthropic: Anthropic;

const env = useHarnessWithMock({ seed: 11, createdSeconds: 1_700_000_000 });

beforeAll(() => {
  ({ h, mock } = env);
  instrument(OpenAI);
  instrument(Anthropic);
  openai = new OpenAI({ apiKey: 'k', baseURL: mock.openaiBaseURL, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'k', baseURL: mock.url, maxRetries: 0 });
});

/** The last usage the mock sent, as input/output token counts. */
function sent(): { input: number; output: number } {
  const u = mock.usageSent[mock.usageSent.length - 1].usage;
  return { input: u.input + u.cache_read + u.cache_write, output: u.output + u.reasoning };
}

function spanUsage(): { input: unknown; output: unknown } {
  const a = onlySpan(h).attributes;
  return { input: a['gen_ai.usage.input_tokens'], output: a['gen_ai.usage.output_tokens'] };
}

/** The chunks of one OpenAI stream against a fresh mock with the same seed, tokenmeter on or off. */
async function openaiChunks(instrumented: boolean, params: Record<string, unknown>): Promise<unknown[]> {
  const twin = await startMockProvider({ seed: 11, createdSeconds: 1_700_000_000 });
  if (!instrumented) h.instrumentation.disable();
  try {
    const c = new OpenAI({ apiKey: 'k', baseURL: twin.openaiBaseURL, maxRetries: 0 });
    const out: unknown[] = [];
    for await (const chunk of (await c.chat.completions.create({ model: MODEL, messages, ...params } as any)) as any) out.push(chunk);
    return out;
  } finally {
    if (!instrumented) h.instrumentation.enable();
    await twin.close();
  }
}

describe('stream chunks read beside the caller', () => {
  it('OpenAI with the caller\'s own include_usage: the same chunks (usage chunk included), metered once', async () => {
    const bare = await openaiChunks(false, OWN_USAGE);
    h.reset();
    const seen = await openaiChunks(true, OWN_USAGE);
    expect(seen).toEqual(bare);
    // The caller asked for the usage chunk: it is not hidden.
    expect((seen[seen.length - 1] as any).usage?.prompt_tokens).toBeGreaterThan(0);
    const span = onlySpan(h);
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe((seen[seen.length - 1] as any).usage.prompt_tokens);
    expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
  });

  it('OpenAI with injected include_usage: the usage chunk stays hidden, the usage is on the span', async () => {
    const bare = await openaiChunks(false, { stream: true });
    h.reset();
    const seen = await openaiChunks(true, { stream: true });
    expect(seen).toEqual(bare);
    expect(seen.every((c: any) => c.usage === undefined)).toBe(true);
    expect(onlySpan(h).attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
  });

  it('the call ends before the caller sees the end of the stream', async () => {
    const stream = await openai.chat.completions.create({ model: MODEL, messages, ...OWN_USAGE });
    const it = stream[Symbol.asyncIterator]();
    for (;;) {
      const r = await it.next();
      if (r.done) break;
    }
    // No turn of the event loop after the last next() settled: the span already ended.
    expect(spanUsage()).toEqual(sent());
  });

  it('concurrent next() calls without awaiting in between: chunks in order, metered once', async () => {
    const stream = await openai.chat.completions.create({ model: MODEL, messages, ...OWN_USAGE });
    const it = stream[Symbol.asyncIterator]();
    const pulls = Array.from({ length: 64 }, () => it.next());
    const results = await Promise.all(pulls);
    const chunks = results.filter((r) => r.done !== true).map((r) => r.value as any);
    expect(chunks.length).toBeGreaterThan(3);
    expect(results.slice(chunks.length).every((r) => r.done === true)).toBe(true);
    expect(chunks[chunks.length - 1].usage?.prompt_tokens).toBeGreaterThan(0);
    expect(spanUsage()).toEqual(sent());
  });

  it('tee(), toReadableStream() and an early break are metered once each', async () => {
    const s1 = await openai.chat.completions.create({ model: MODEL, messages, ...OWN_USAGE });
    const [a, b] = s1.tee();
    const left: unknown[] = [];
    const right: unknown[] = [];
    for await (const c of a) left.push(c);
    for await (const c of b) right.push(c);
    expect(left).toEqual(right);
    expect(spanUsage()).toEqual(sent());
    h.reset();

    const s2 = await openai.chat.completions.create({ model: MODEL, messages, ...OWN_USAGE });
    const reader = s2.toReadableStream().getReader();
    let lines = 0;
    while (!(await reader.read()).done) lines++;
    expect(lines).toBe(left.length);
    expect(spanUsage()).toEqual(sent());
    h.reset();

    const s3 = await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 64, messages, stream: true });
    for await (const _ of s3) break;
    const broke = onlySpan(h);
    expect(broke.attributes['tokenmeter.stream.end']).toBe('break');
    expect(broke.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
  });

  it('a stream cut off mid-way: the caller gets the SDK\'s error, the span records it once, nothing unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown): void => {
      unhandled.push(err);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      for (const provider of ['openai', 'anthropic'] as const) {
        h.reset();
        mock.breakNextStream(3);
        const stream =
          provider === 'openai'
            ? await openai.chat.completions.create({ model: MODEL, messages, ...OWN_USAGE })
            : await anthropic.messages.create({ model: 'claude-haiku-4-5', max_tokens: 64, messages, stream: true });
        let n = 0;
        let caught: unknown;
        try {
          for await (const _ of stream as AsyncIterable<unknown>) n++;
        } catch (err) {
          caught = err;
        }
        expect(caught, provider).toBeInstanceOf(Error);
        const span = onlySpan(h);
        expect(span.attributes['error.type'], provider).toBe((caught as Error).constructor.name);
        expect(span.status.code, provider).toBe(2);
        expect(n, provider).toBeGreaterThan(0);
      }
      // Rejections surface on the next turns; give them one.
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
