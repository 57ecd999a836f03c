import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { normalizeGenAiAttributes, usageToGenAiAttributes, type Usage } from '../../src/usage/index.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { cellsOf, installedVersion, named } from './cells.js';
import { runCellApp } from './run-cell-app.js';

/*
 * The Vercel AI SDK (`ai` with the matching @ai-sdk/openai major), once per matrix cell: an ESM app started with
 * `node --import tokenmeter/register`, its call sites unchanged, against the local mock provider.
 */

// gpt-4o-mini at $0.15 / $0.075 / $0.60 per Mtok: 200 x 0.15 + 1000 x 0.075 + (30 + 20) x 0.60 = 135 micro-dollars.
const USAGE: Usage = { input: 200, cache_read: 1000, cache_write: 0, output: 30, reasoning: 20 };
const EMBED: Usage = { input: 200, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 };
const book = PriceBook.load();

let mock: MockProvider;
let receiver: OtlpReceiver;

beforeAll(async () => {
  mock = await startMockProvider({});
  receiver = await startOtlpReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await mock?.close();
});
afterEach(() => mock.reset());

function totalUsd(attrs: Record<string, unknown>, model: string): string {
  const r = book.priceStrings({ provider: 'openai', model, usage: normalizeGenAiAttributes(attrs as never).usage, at: new Date('2026-11-24T12:00:00Z') });
  if (!r.priced) throw new Error(r.reason);
  return r.totalUsd;
}

for (const cell of cellsOf('ai-sdk')) {
  describe(`ai ${cell.version} on node ${process.version}`, () => {
    it(named(cell, 'is the version the matrix lists, with its @ai-sdk/openai'), () => {
      expect(installedVersion(cell, 'ai')).toBe(cell.version);
      expect(installedVersion(cell, '@ai-sdk/openai')).toBe(cell.with['@ai-sdk/openai']);
    });

    it(named(cell, 'node --import tokenmeter/register: generateText, streamText and embed metered once each, priced exactly'), async () => {
      receiver.requests.length = 0;
      const run = await runCellApp(cell, 'ai-sdk-app.mjs', ['--import', 'tokenmeter/register'], {
        MOCK_URL: mock.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'matrix-ai-sdk-app',
      });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const out = JSON.parse(run.stdout) as { generateText: { inputTokens: number }; streamText: { outputTokens: number }; embed: { tokens: number } };
      const spans = receiver.spans();
      expect(spans.map((s) => s.scope)).toEqual(['tokenmeter', 'tokenmeter', 'tokenmeter']);
      expect(spans.map((s) => s.name)).toEqual(['chat gpt-4o-mini', 'chat gpt-4o-mini', 'embeddings text-embedding-3-small']);
      expect(mock.usageSent).toHaveLength(3);
      for (const [i, span] of spans.entries()) {
        expect(span.attributes).toMatchObject({ 'user.id': 'matrix-user', 'tokenmeter.plan': 'pro', 'gen_ai.provider.name': 'openai' });
        expect(span.attributes).toMatchObject(usageToGenAiAttributes(mock.usageSent[i].usage));
      }
      expect(spans[0].attributes['gen_ai.usage.input_tokens']).toBe(out.generateText.inputTokens);
      expect(spans[1].attributes['gen_ai.request.stream']).toBe(true);
      expect(spans[1].attributes['gen_ai.usage.output_tokens']).toBe(out.streamText.outputTokens);
      expect(spans[2].attributes['gen_ai.usage.input_tokens']).toBe(out.embed.tokens);
    });

    it(named(cell, 'with fixed usage, the chat and embedding calls price to the hand-computed decimals'), async () => {
      receiver.requests.length = 0;
      mock.setFixedUsage(USAGE);
      const run = await runCellApp(cell, 'ai-sdk-app.mjs', ['--import', 'tokenmeter/register'], {
        MOCK_URL: mock.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      });
      expect(run.code).toBe(0);
      const spans = receiver.spans();
      expect(spans).toHaveLength(3);
      expect(totalUsd(spans[0].attributes, 'gpt-4o-mini')).toBe('0.000135');
      expect(totalUsd(spans[1].attributes, 'gpt-4o-mini')).toBe('0.000135');
      // The fixed usage's 200 input tokens on the embedding: 200 x $0.02 per Mtok.
      expect(normalizeGenAiAttributes(spans[2].attributes as never).usage).toEqual(EMBED);
      expect(totalUsd(spans[2].attributes, 'text-embedding-3-small')).toBe('0.000004');
    });
  });
}
