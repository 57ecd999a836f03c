import { SpanStatusCode } from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { withUser } from '../../src/instrumentation/index.js';
import { captureWarnings } from '../../src/instrumentation/warn.js';
import { PriceBook } from '../../src/pricing/index.js';
import { normalizeGenAiAttributes } from '../../src/usage/index.js';
import { ACCESS_KEY_ID, startBedrockServer, type BedrockServer } from '../instrumentation/bedrock-server.js';
import { createHarness, onlySpan, usageAttrs, type Harness } from '../instrumentation/harness.js';
import { cellsOf, installedVersion, named, requireFromCell } from './cells.js';

/* The Bedrock Runtime tests, once per matrix cell (see openai.cell.ts for how a cell is loaded). */

const MODEL = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
const messages = [{ role: 'user', content: [{ text: 'Explain the meter.' }] }];
const CONVERSE_CACHED = { inputTokens: 100, cacheReadInputTokens: 2000, cacheWriteInputTokens: 1000, outputTokens: 300, totalTokens: 3400 };
const ANTHROPIC_CACHED = { input_tokens: 100, cache_read_input_tokens: 2000, cache_creation_input_tokens: 1000, output_tokens: 300 };
const BUCKETS = { input: 100, cache_read: 2000, cache_write: 1000, output: 300, reasoning: 0 };
const anthropicBody = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 256, messages: [{ role: 'user', content: 'hi' }] });
const book = PriceBook.load();

let h: Harness;
let server: BedrockServer;

beforeAll(async () => {
  h = await createHarness();
  server = await startBedrockServer();
});
afterAll(async () => {
  await server?.close();
  await h?.shutdown();
});
afterEach(() => {
  h.reset();
  server.reset();
});

function totalUsd(attrs: Record<string, unknown>): string {
  const r = book.priceStrings({ provider: 'aws.bedrock', model: MODEL, usage: normalizeGenAiAttributes(attrs as never).usage, at: new Date('2026-11-24T12:00:00Z') });
  if (!r.priced) throw new Error(r.reason);
  return r.totalUsd;
}

for (const cell of cellsOf('bedrock')) {
  describe(`@aws-sdk/client-bedrock-runtime ${cell.version} on node ${process.version}`, () => {
    let sdk: any;
    let client: any;
    const warnings: string[] = [];

    beforeAll(() => {
      const restore = captureWarnings(warnings);
      try {
        sdk = requireFromCell(cell, '@aws-sdk/client-bedrock-runtime');
      } finally {
        restore();
      }
      client = new sdk.BedrockRuntimeClient({
        region: 'us-east-1',
        endpoint: server.url,
        credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: 'dummy-secret-for-tests' },
        maxAttempts: 1,
      });
    });
    afterAll(() => client?.destroy());

    it(named(cell, 'is the version the matrix lists, patched by the module hook with nothing to warn about'), () => {
      expect(installedVersion(cell, '@aws-sdk/client-bedrock-runtime')).toBe(cell.version);
      expect(warnings).toEqual([]);
      expect(sdk.BedrockRuntimeClient.prototype.send.name).toBe('tokenmeterSend');
    });

    it(named(cell, 'records Converse and ConverseStream (metadata event) exactly, attributed by withUser'), async () => {
      server.setConverseUsage(CONVERSE_CACHED);
      await withUser({ id: 'u-cell', plan: 'pro' }, async () => {
        await client.send(new sdk.ConverseCommand({ modelId: MODEL, messages }));
        const out = await client.send(new sdk.ConverseStreamCommand({ modelId: MODEL, messages }));
        for await (const ev of out.stream) void ev;
      });
      const spans = h.finished();
      expect(spans.length).toBe(2);
      for (const span of spans) {
        expect(span.attributes).toMatchObject({ 'gen_ai.provider.name': 'aws.bedrock', 'user.id': 'u-cell', 'tokenmeter.plan': 'pro' });
        expect(normalizeGenAiAttributes(span.attributes).usage).toEqual(BUCKETS);
        // 100 × 3.00 + 2000 × 0.30 + 1000 × 3.75 + 300 × 15.00 = 9150 µ$
        expect(totalUsd(span.attributes)).toBe('0.00915');
      }
    });

    it(named(cell, 'records InvokeModel and InvokeModelWithResponseStream with Anthropic bodies exactly'), async () => {
      server.setAnthropicUsage(ANTHROPIC_CACHED);
      await client.send(new sdk.InvokeModelCommand({ modelId: MODEL, body: anthropicBody, contentType: 'application/json' }));
      const out = await client.send(new sdk.InvokeModelWithResponseStreamCommand({ modelId: MODEL, body: anthropicBody, contentType: 'application/json' }));
      for await (const ev of out.body) void ev;
      const spans = h.finished();
      expect(spans.length).toBe(2);
      for (const span of spans) {
        expect(normalizeGenAiAttributes(span.attributes).usage).toEqual(BUCKETS);
        expect(totalUsd(span.attributes)).toBe('0.00915');
      }
    });

    it(named(cell, 'records a failed command with error.type and the SDK exception'), async () => {
      server.failNext(400);
      await expect(client.send(new sdk.ConverseCommand({ modelId: MODEL, messages }))).rejects.toBeInstanceOf(sdk.ValidationException);
      const span = onlySpan(h);
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(usageAttrs(span.attributes)).toEqual({});
    });
  });
}
