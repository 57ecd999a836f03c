import { SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureWarnings } from '../../src/instrumentation/warn.js';
import type { MockProvider } from '../../src/mock-provider/index.js';
import { normalizeGenAiAttributes, usageToGenAiAttributes, type Usage } from '../../src/usage/index.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { onlySpan, usageAttrs, useHarnessWithMock, type Harness } from '../instrumentation/harness.js';
import { cellsOf, installedVersion, named, requireFromCell } from './cells.js';
import { runCellApp } from './run-cell-app.js';

/* The Anthropic end-to-end tests, once per matrix cell (see openai.cell.ts for how a cell is loaded). */

const MODEL = 'claude-haiku-4-5';
const messages = [{ role: 'user' as const, content: 'Explain the meter in one line.' }];
const CACHED: Usage = { input: 25, cache_read: 4000, cache_write: 1500, cache_write_1h: 500, output: 120, reasoning: 0 };
const CACHED_ATTRS = {
  'gen_ai.usage.input_tokens': 5525,
  'gen_ai.usage.cache_read.input_tokens': 4000,
  'gen_ai.usage.cache_creation.input_tokens': 1500,
  'tokenmeter.usage.cache_creation.1h.input_tokens': 500,
  'gen_ai.usage.output_tokens': 120,
};

const env = useHarnessWithMock({ seed: 3 });
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

for (const cell of cellsOf('anthropic')) {
  describe(`@anthropic-ai/sdk ${cell.version} on node ${process.version}`, () => {
    let sdk: any;
    let Anthropic: any;
    let client: any;

    const warnings: string[] = [];

    // Loading only: the checks are tests (a failing hook would turn every test of the cell into 'skipped').
    beforeAll(() => {
      const restore = captureWarnings(warnings);
      try {
        sdk = requireFromCell(cell, '@anthropic-ai/sdk');
      } finally {
        restore();
      }
      Anthropic = sdk.Anthropic ?? sdk.default ?? sdk;
      client = new Anthropic({ apiKey: 'test-key', baseURL: mock.url, maxRetries: 2 });
    });

    it(named(cell, 'is the version the matrix lists, patched by the module hook with nothing to warn about'), () => {
      expect(installedVersion(cell, '@anthropic-ai/sdk')).toBe(cell.version);
      expect(warnings).toEqual([]);
      expect(Anthropic.Messages.prototype.create.name).toBe('tokenmeterCreate');
      expect(process.env.ANTHROPIC_OPEN_TELEMETRY).toBe('false');
    });

    it(named(cell, 'records messages.create with the provider usage and returns the SDK APIPromise'), async () => {
      const promise = client.messages.create({ model: MODEL, max_tokens: 256, messages, system: 'Be brief.' });
      expect(promise.constructor.name).toBe('APIPromise');
      const msg = await promise;
      const span = onlySpan(h);
      expect(span.attributes).toMatchObject({ 'gen_ai.provider.name': 'anthropic', 'gen_ai.response.id': msg.id, 'gen_ai.response.finish_reasons': ['end_turn'] });
      expect(usageAttrs(span.attributes)).toEqual(usageToGenAiAttributes(lastSent()));
    });

    it(named(cell, 'keeps withResponse() and reads usage from a clone with asResponse()'), async () => {
      const { data, response } = await client.messages.create({ model: MODEL, max_tokens: 64, messages }).withResponse();
      expect(response.status).toBe(200);
      expect(onlySpan(h).attributes['gen_ai.response.id']).toBe(data.id);
      expect(usageAttrs(onlySpan(h).attributes)).toEqual(usageToGenAiAttributes(lastSent()));
      h.reset();
      const raw = await client.messages.create({ model: MODEL, max_tokens: 64, messages }).asResponse();
      const body = (await raw.json()) as { id: string };
      await new Promise((r) => setTimeout(r, 20));
      expect(onlySpan(h).attributes['gen_ai.response.id']).toBe(body.id);
      expect(usageAttrs(onlySpan(h).attributes)).toEqual(usageToGenAiAttributes(lastSent()));
    });

    it(named(cell, 'streams with create({ stream: true }) and records cache reads, 5m and 1h cache writes exactly'), async () => {
      mock.setFixedUsage(CACHED);
      const stream = await client.messages.create({ model: MODEL, max_tokens: 256, messages, stream: true });
      const types: string[] = [];
      for await (const ev of stream) types.push(ev.type);
      expect(types[0]).toBe('message_start');
      expect(types.at(-1)).toBe('message_stop');
      await client.messages.create({ model: MODEL, max_tokens: 256, messages });
      const spans = h.finished();
      expect(spans.length).toBe(2);
      for (const span of spans) {
        expect(usageAttrs(span.attributes)).toEqual(CACHED_ATTRS);
        expect(normalizeGenAiAttributes(span.attributes).usage).toEqual(CACHED);
        expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
      }
    });

    it(named(cell, 'records the messages.stream() helper as one call'), async () => {
      const stream = client.messages.stream({ model: MODEL, max_tokens: 256, messages });
      let text = '';
      stream.on('text', (t: string) => {
        text += t;
      });
      const final = await stream.finalMessage();
      expect(final.content[0]).toMatchObject({ type: 'text', text });
      const span = onlySpan(h);
      expect(span.attributes['gen_ai.response.id']).toBe(final.id);
      expect(usageAttrs(span.attributes)).toEqual(usageToGenAiAttributes(lastSent()));
      expect(span.attributes['gen_ai.usage.output_tokens']).toBe(final.usage.output_tokens);
    });

    it(named(cell, 'records one span for a retried call, and a failed call with error.type and the SDK error'), async () => {
      mock.failNext(1, 529);
      await client.messages.create({ model: MODEL, max_tokens: 64, messages });
      expect(mock.requests.length).toBe(2);
      expect(onlySpan(h).attributes['error.type']).toBeUndefined();
      expect(usageAttrs(onlySpan(h).attributes)).toEqual(usageToGenAiAttributes(lastSent()));
      h.reset();
      mock.reset();
      mock.failNext(3, 500);
      await expect(client.messages.create({ model: MODEL, max_tokens: 64, messages })).rejects.toBeInstanceOf(Anthropic.InternalServerError);
      expect(mock.requests.length).toBe(3);
      const failed = onlySpan(h);
      expect(failed.attributes['error.type']).toBe('InternalServerError');
      expect(failed.status.code).toBe(SpanStatusCode.ERROR);
      expect(usageAttrs(failed.attributes)).toEqual({});
    });

    it(named(cell, 'node --import tokenmeter/register: exact usage for messages.create and messages.stream()'), async () => {
      receiver.requests.length = 0;
      const run = await runCellApp(cell, 'anthropic-app.mjs', ['--import', 'tokenmeter/register'], {
        MOCK_URL: mock.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'matrix-anthropic-app',
      });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const out = JSON.parse(run.stdout) as { messageId: string; streamedId: string; streamedOutputTokens: number };
      const spans = receiver.spans();
      // Only tokenmeter's spans: the SDK's own GenAI spans (1.x) stay off, so nothing is counted twice.
      expect(spans.map((s) => s.scope)).toEqual(['tokenmeter', 'tokenmeter']);
      expect(spans.map((s) => s.attributes['gen_ai.response.id'])).toEqual([out.messageId, out.streamedId]);
      expect(mock.usageSent.length).toBe(2);
      for (const [i, span] of spans.entries()) {
        expect(span.attributes).toMatchObject({ 'user.id': 'matrix-user', 'tokenmeter.plan': 'pro', ...usageToGenAiAttributes(mock.usageSent[i].usage) });
        expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
      }
      expect(spans[1].attributes['gen_ai.usage.output_tokens']).toBe(out.streamedOutputTokens);
    });
  });
}
