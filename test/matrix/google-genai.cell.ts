import { SpanStatusCode } from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { captureWarnings } from '../../src/instrumentation/warn.js';
import { withUser } from '../../src/instrumentation/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { normalizeGenAiAttributes } from '../../src/usage/index.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { startGeminiServer, type GeminiServer } from '../instrumentation/gemini-server.js';
import { createHarness, onlySpan, usageAttrs, type Harness } from '../instrumentation/harness.js';
import { cellsOf, installedVersion, named, requireFromCell } from './cells.js';
import { runCellApp } from './run-cell-app.js';

/* The @google/genai end-to-end tests, once per matrix cell (see openai.cell.ts for how a cell is loaded). */

const MODEL = 'gemini-2.5-flash';
const RICH = { promptTokenCount: 1200, cachedContentTokenCount: 1000, toolUsePromptTokenCount: 100, candidatesTokenCount: 300, thoughtsTokenCount: 500, totalTokenCount: 2100 };
const RICH_BUCKETS = { input: 300, cache_read: 1000, cache_write: 0, output: 300, reasoning: 500 };
const book = PriceBook.load();

let h: Harness;
let server: GeminiServer;
let receiver: OtlpReceiver;

beforeAll(async () => {
  h = await createHarness();
  server = await startGeminiServer();
  receiver = await startOtlpReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await server?.close();
  await h?.shutdown();
});
afterEach(() => {
  h.reset();
  server.reset();
});

function totalUsd(attrs: Record<string, unknown>): string {
  const r = book.priceStrings({ provider: 'gcp.gemini', model: MODEL, usage: normalizeGenAiAttributes(attrs as never).usage, at: new Date('2026-11-24T12:00:00Z') });
  if (!r.priced) throw new Error(r.reason);
  return r.totalUsd;
}

for (const cell of cellsOf('google-genai')) {
  describe(`@google/genai ${cell.version} on node ${process.version}`, () => {
    let sdk: any;
    let ai: any;
    const warnings: string[] = [];

    beforeAll(() => {
      const restore = captureWarnings(warnings);
      try {
        sdk = requireFromCell(cell, '@google/genai');
      } finally {
        restore();
      }
      ai = new sdk.GoogleGenAI({ apiKey: 'test-key', httpOptions: { baseUrl: server.url } });
    });

    it(named(cell, 'is the version the matrix lists, patched by the module hook with nothing to warn about'), () => {
      expect(installedVersion(cell, '@google/genai')).toBe(cell.version);
      expect(warnings).toEqual([]);
      expect(sdk.Models.prototype.generateContentInternal.name).toBe('tokenmeterGenAi');
      expect(sdk.Models.prototype.generateContentStreamInternal.name).toBe('tokenmeterGenAiStream');
    });

    it(named(cell, 'records generateContent with the usageMetadata buckets, priced exactly, attributed by withUser'), async () => {
      server.setUsage(RICH);
      const res = await withUser({ id: 'u-cell', plan: 'pro' }, () => ai.models.generateContent({ model: MODEL, contents: 'Explain the meter.' }));
      expect(res).toBeInstanceOf(sdk.GenerateContentResponse);
      const span = onlySpan(h);
      expect(span.attributes).toMatchObject({ 'gen_ai.provider.name': 'gcp.gemini', 'user.id': 'u-cell', 'tokenmeter.plan': 'pro' });
      // Early 1.x releases drop responseId when converting the response; the span has what the SDK returns.
      expect(span.attributes['gen_ai.response.id']).toBe(res.responseId);
      expect(normalizeGenAiAttributes(span.attributes).usage).toEqual(RICH_BUCKETS);
      // 300 × 0.30 + 1000 × 0.03 + 300 × 2.50 + 500 × 2.50 = 2120 µ$
      expect(totalUsd(span.attributes)).toBe('0.00212');
    });

    it(named(cell, 'records generateContentStream with the last chunk usage, the SDK generator unchanged'), async () => {
      server.setUsage(RICH);
      const stream = await ai.models.generateContentStream({ model: MODEL, contents: 'Explain the meter.' });
      let text = '';
      for await (const chunk of stream) {
        expect(chunk).toBeInstanceOf(sdk.GenerateContentResponse);
        text += chunk.text ?? '';
      }
      expect(text).toBe('The meter counts every token once.');
      const span = onlySpan(h);
      expect(normalizeGenAiAttributes(span.attributes).usage).toEqual(RICH_BUCKETS);
      expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
      expect(totalUsd(span.attributes)).toBe('0.00212');
    });

    it(named(cell, 'records Vertex AI mode as gcp.vertex_ai and a failed call with error.type'), async () => {
      const vertex = new sdk.GoogleGenAI({ vertexai: true, apiKey: 'test-key', httpOptions: { baseUrl: server.url } });
      await vertex.models.generateContent({ model: MODEL, contents: 'x' });
      expect(onlySpan(h).attributes['gen_ai.provider.name']).toBe('gcp.vertex_ai');
      h.reset();
      server.failNext(400);
      await expect(ai.models.generateContent({ model: MODEL, contents: 'x' })).rejects.toBeInstanceOf(Error);
      const failed = onlySpan(h);
      expect(failed.status.code).toBe(SpanStatusCode.ERROR);
      expect(usageAttrs(failed.attributes)).toEqual({});
    });

    it(named(cell, 'node --import tokenmeter/register: exact usage for generateContent and generateContentStream'), async () => {
      receiver.requests.length = 0;
      server.setUsage(RICH);
      const run = await runCellApp(cell, 'google-genai-app.mjs', ['--import', 'tokenmeter/register'], {
        MOCK_URL: server.url,
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_SERVICE_NAME: 'matrix-google-genai-app',
      });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const out = JSON.parse(run.stdout) as { responseId: string; streamedId: string; streamedCandidates: number };
      const spans = receiver.spans();
      expect(spans.map((s) => s.scope)).toEqual(['tokenmeter', 'tokenmeter']);
      expect(spans.map((s) => s.attributes['gen_ai.response.id'])).toEqual([out.responseId, out.streamedId]);
      for (const span of spans) {
        expect(span.attributes).toMatchObject({ 'user.id': 'matrix-user', 'tokenmeter.plan': 'pro', 'gen_ai.provider.name': 'gcp.gemini' });
        expect(normalizeGenAiAttributes(span.attributes as never).usage).toEqual(RICH_BUCKETS);
      }
      expect(out.streamedCandidates).toBe(300);
    });
  });
}
