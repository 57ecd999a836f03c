import { SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureWarnings } from '../../src/instrumentation/warn.js';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { normalizeGenAiAttributes, usageToGenAiAttributes, type Usage } from '../../src/usage/index.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { collectMetrics, onlySpan, usageAttrs, useHarnessWithMock, type Harness } from '../instrumentation/harness.js';
import { cellsOf, installedVersion, named, requireFromCell } from './cells.js';
import { runCellApp } from './run-cell-app.js';

/*
 * The OpenAI end-to-end tests, once per matrix cell: the cell's real `openai`, loaded through a plain require so
 * tokenmeter's module hook (not instrument()) patches it, against the mock provider speaking OpenAI's wire format.
 */

const MODEL = 'gpt-4o-mini';
const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Summarise the meter.' },
];

const env = useHarnessWithMock({ seed: 7, createdSeconds: 1_700_000_000 });
let h: Harness;
let mock: MockProvider;
let receiver: OtlpReceiver;

beforeAll(async () => {
  ({ h, mock } = env);
  receiver = await startOtlpReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

function lastSent(): Usage {
  expect(mock.usageSent.length).toBeGreaterThan(0);
  return mock.usageSent[mock.usageSent.length - 1].usage;
}

async function drain(stream: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const x of stream) out.push(x);
  return out;
}

for (const cell of cellsOf('openai')) {
  describe(`openai ${cell.version} on node ${process.version}`, () => {
    let sdk: any;
    let OpenAI: any;
    let client: any;

    const warnings: string[] = [];

    // Loading only: the checks are tests (a failing hook would turn every test of the cell into 'skipped').
    beforeAll(() => {
      const restore = captureWarnings(warnings);
      try {
        sdk = requireFromCell(cell, 'openai');
      } finally {
        restore();
      }
      OpenAI = sdk.OpenAI ?? sdk.default ?? sdk;
      client = new OpenAI({ apiKey: 'test-key', baseURL: mock.openaiBaseURL, maxRetries: 2 });
    });

    /** The chunks a caller sees against a fresh mock with the same seed, with tokenmeter on or off. */
    async function streamedChunks(instrumented: boolean, params: Record<string, unknown>): Promise<{ chunks: unknown[]; sent: Usage | undefined; body: any }> {
      const twin = await startMockProvider({ seed: 7, createdSeconds: 1_700_000_000 });
      if (!instrumented) h.instrumentation.disable();
      try {
        const c = new OpenAI({ apiKey: 'k', baseURL: twin.openaiBaseURL });
        const chunks = await drain(await c.chat.completions.create({ model: MODEL, messages, stream: true, ...params }));
        return { chunks, sent: twin.usageSent[0]?.usage, body: twin.requests[0].body };
      } finally {
        if (!instrumented) h.instrumentation.enable();
        await twin.close();
      }
    }

    it(named(cell, 'is the version the matrix lists, patched by the module hook with nothing to warn about'), () => {
      expect(installedVersion(cell, 'openai')).toBe(cell.version);
      expect(warnings).toEqual([]);
      expect(OpenAI.Chat.Completions.prototype.create.name).toBe('tokenmeterCreate');
      expect(OpenAI.Responses.prototype.create.name).toBe('tokenmeterCreate');
      expect(OpenAI.Embeddings.prototype.create.name).toBe('tokenmeterCreate');
    });

    it(named(cell, 'records a chat call with the provider usage and returns the SDK APIPromise'), async () => {
      const promise = client.chat.completions.create({ model: MODEL, messages, max_tokens: 50 });
      expect(promise.constructor.name).toBe('APIPromise');
      const res = await promise;
      const span = onlySpan(h);
      expect(span.name).toBe(`chat ${MODEL}`);
      expect(span.attributes).toMatchObject({ 'gen_ai.response.id': res.id, 'gen_ai.response.finish_reasons': ['stop'], 'gen_ai.request.max_tokens': 50 });
      expect(usageAttrs(span.attributes)).toEqual(usageToGenAiAttributes(lastSent()));
      expect(span.attributes['gen_ai.usage.input_tokens']).toBe(res.usage.prompt_tokens);
    });

    it(named(cell, 'keeps withResponse() and reads usage from a clone with asResponse()'), async () => {
      const { data, response } = await client.chat.completions.create({ model: MODEL, messages }).withResponse();
      expect(response.status).toBe(200);
      const first = onlySpan(h);
      expect(first.attributes['gen_ai.response.id']).toBe(data.id);
      expect(usageAttrs(first.attributes)).toEqual(usageToGenAiAttributes(lastSent()));
      h.reset();
      const raw = await client.chat.completions.create({ model: MODEL, messages }).asResponse();
      const body = (await raw.json()) as { id: string; usage: { prompt_tokens: number } };
      await new Promise((r) => setTimeout(r, 20));
      const span = onlySpan(h);
      expect(span.attributes['gen_ai.response.id']).toBe(body.id);
      expect(usageAttrs(span.attributes)).toEqual(usageToGenAiAttributes(lastSent()));
    });

    it(named(cell, 'streams with the usage it asked for, and the caller sees exactly the chunks it would without tokenmeter'), async () => {
      const withMeter = await streamedChunks(true, {});
      expect(withMeter.body.stream_options).toEqual({ include_usage: true });
      const span = onlySpan(h);
      expect(withMeter.sent).toBeDefined();
      expect(usageAttrs(span.attributes)).toEqual(usageToGenAiAttributes(withMeter.sent as Usage));
      expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
      const plain = await streamedChunks(false, {});
      expect(plain.body.stream_options).toBeUndefined();
      expect(withMeter.chunks.length).toBeGreaterThan(5);
      expect(JSON.stringify(withMeter.chunks)).toBe(JSON.stringify(plain.chunks));
      expect(withMeter.chunks.some((c: any) => 'usage' in c)).toBe(false);
    });

    it(named(cell, 'leaves the usage chunk to a caller that asked for it'), async () => {
      const withMeter = await streamedChunks(true, { stream_options: { include_usage: true } });
      expect((withMeter.chunks.at(-1) as any).usage.prompt_tokens).toBe(withMeter.sent?.input);
      const plain = await streamedChunks(false, { stream_options: { include_usage: true } });
      expect(JSON.stringify(withMeter.chunks)).toBe(JSON.stringify(plain.chunks));
    });

    it(named(cell, "keeps the SDK's Stream: tee(), toReadableStream() and controller, with exact usage"), async () => {
      const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
      expect(stream.controller).toBeInstanceOf(AbortController);
      const [left, right] = stream.tee();
      const a = await drain(left);
      const b = await drain(right);
      expect(a).toEqual(b);
      expect(a.length).toBeGreaterThan(3);
      expect(a.some((c: any) => 'usage' in c)).toBe(false);
      expect(usageAttrs(onlySpan(h).attributes)).toEqual(usageToGenAiAttributes(lastSent()));
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
      expect(usageAttrs(onlySpan(h).attributes)).toEqual(usageToGenAiAttributes(lastSent()));
    });

    it(named(cell, 'ends the span once, estimated and labelled, when the caller breaks out or aborts, and as an error when the provider breaks off'), async () => {
      const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
      let n = 0;
      for await (const _ of stream) if (++n === 3) break;
      await new Promise((r) => setTimeout(r, 10));
      const broken = onlySpan(h);
      expect(broken.attributes['tokenmeter.stream.end']).toBe('break');
      expect(broken.attributes['tokenmeter.usage.estimated']).toBe(true);
      expect(stream.controller.signal.aborted).toBe(true);
      h.reset();
      mock.setChunkDelay(15);
      const ac = new AbortController();
      const aborted = await client.chat.completions.create({ model: MODEL, messages, stream: true }, { signal: ac.signal });
      let seen = 0;
      for await (const _ of aborted) if (++seen === 2) ac.abort();
      const span = onlySpan(h);
      expect(span.attributes['tokenmeter.stream.end']).toBe('abort');
      expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
      h.reset();
      mock.setChunkDelay(0);
      mock.breakNextStream(4);
      const cut = await client.chat.completions.create({ model: MODEL, messages, stream: true });
      await expect(drain(cut)).rejects.toThrow();
      const failed = onlySpan(h);
      expect(failed.attributes['error.type']).toBeDefined();
      expect(failed.attributes['tokenmeter.usage.estimated']).toBe(true);
    });

    it(named(cell, 'records responses.create, streaming and not, and embeddings.create'), async () => {
      const res = await client.responses.create({ model: MODEL, input: 'Say something.', instructions: 'Be brief.' });
      expect(res.output_text.length).toBeGreaterThan(0);
      const events = await drain(await client.responses.create({ model: MODEL, input: 'Say something.', stream: true }));
      expect(events.some((e: any) => e.type === 'response.completed')).toBe(true);
      const emb = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha beta', 'gamma'] });
      expect(emb.data.length).toBe(2);
      const spans = h.finished();
      expect(spans.map((s) => s.name)).toEqual([`chat ${MODEL}`, `chat ${MODEL}`, 'embeddings text-embedding-3-small']);
      expect(spans[0].attributes['gen_ai.response.id']).toBe(res.id);
      expect(spans.map((s) => usageAttrs(s.attributes))).toEqual(mock.usageSent.map((u) => usageToGenAiAttributes(u.usage)));
      expect(spans[2].attributes['gen_ai.usage.input_tokens']).toBe(emb.usage.prompt_tokens);
    });

    it(named(cell, 'records one span for a call the SDK retried, and a failed call with error.type and the SDK error'), async () => {
      mock.failNext(1, 429);
      await client.chat.completions.create({ model: MODEL, messages });
      expect(mock.requests.length).toBe(2);
      const ok = onlySpan(h);
      expect(ok.attributes['error.type']).toBeUndefined();
      expect(usageAttrs(ok.attributes)).toEqual(usageToGenAiAttributes(lastSent()));
      h.reset();
      mock.reset();
      mock.failNext(3, 500);
      await expect(client.chat.completions.create({ model: MODEL, messages })).rejects.toBeInstanceOf(OpenAI.InternalServerError);
      expect(mock.requests.length).toBe(3);
      const failed = onlySpan(h);
      expect(failed.attributes['error.type']).toBe('InternalServerError');
      expect(failed.status.code).toBe(SpanStatusCode.ERROR);
      expect(usageAttrs(failed.attributes)).toEqual({});
      await collectMetrics(h);
      const d = h.histogram('gen_ai.client.operation.duration');
      expect(d.some((p) => p.attributes['error.type'] === 'InternalServerError')).toBe(true);
    });

    it(named(cell, 'splits cached and reasoning tokens, for chat (streamed and not) and responses'), async () => {
      const fixed: Usage = { input: 1200, cache_read: 800, cache_write: 0, output: 150, reasoning: 350 };
      mock.setFixedUsage(fixed);
      await client.chat.completions.create({ model: 'o3-mini', messages });
      await drain(await client.chat.completions.create({ model: 'o3-mini', messages, stream: true }));
      await client.responses.create({ model: 'o4-mini', input: 'think' });
      const spans = h.finished();
      expect(spans.length).toBe(3);
      for (const span of spans) {
        expect(usageAttrs(span.attributes)).toEqual({
          'gen_ai.usage.input_tokens': 2000,
          'gen_ai.usage.cache_read.input_tokens': 800,
          'gen_ai.usage.output_tokens': 500,
          'gen_ai.usage.reasoning.output_tokens': 350,
        });
        const u = normalizeGenAiAttributes(span.attributes).usage;
        expect([u.input, u.cache_read, u.cache_write, u.output, u.reasoning]).toEqual([1200, 800, 0, 150, 350]);
      }
    });

    it(named(cell, 'node --import tokenmeter/register: exact usage on every span, real streamed usage, no extra chunk for the app'), async () => {
      receiver.requests.length = 0;
      const run = await runCellApp(cell, 'openai-app.mjs', ['--import', 'tokenmeter/register'], {
        MOCK_URL: mock.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'matrix-openai-app',
      });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const out = JSON.parse(run.stdout) as { chatId: string; responseId: string; embeddingTokens: number; chunks: any[] };
      const spans = receiver.spans();
      expect(spans.map((s) => s.name)).toEqual([`chat ${MODEL}`, `chat ${MODEL}`, `chat ${MODEL}`, 'embeddings text-embedding-3-small']);
      expect(spans.map((s) => s.scope)).toEqual(['tokenmeter', 'tokenmeter', 'tokenmeter', 'tokenmeter']);
      expect(spans[0].attributes['gen_ai.response.id']).toBe(out.chatId);
      expect(spans[2].attributes['gen_ai.response.id']).toBe(out.responseId);
      expect(mock.usageSent.length).toBe(4);
      for (const [i, span] of spans.entries()) {
        expect(span.resource['service.name']).toBe('matrix-openai-app');
        expect(span.attributes).toMatchObject({ 'user.id': 'matrix-user', 'tokenmeter.plan': 'pro', ...usageToGenAiAttributes(mock.usageSent[i].usage) });
        expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
      }
      expect(spans[3].attributes['gen_ai.usage.input_tokens']).toBe(out.embeddingTokens);
      // The streamed chat asked for usage on the wire; the app saw no usage chunk and no `usage` field.
      expect(mock.requests[1].body.stream_options).toEqual({ include_usage: true });
      expect(out.chunks.length).toBeGreaterThan(5);
      expect(out.chunks.some((c) => 'usage' in c || c.choices.length === 0)).toBe(false);
      expect(out.chunks.at(-1).choices[0].finish_reason).toBe('stop');
      const tokens = receiver.histograms().filter((p) => p.metric === 'gen_ai.client.token.usage');
      const input = tokens.filter((p) => p.attributes['gen_ai.token.type'] === 'input').reduce((n, p) => n + p.sum, 0);
      expect(input).toBe(mock.usageSent.reduce((n, s) => n + s.usage.input + s.usage.cache_read + s.usage.cache_write, 0));
    });
  });
}
