import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeTraceRequest } from '../../src/ingest/decode.js';
import { extractUsage } from '../../src/ingest/extract.js';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { usageToGenAiAttributes } from '../../src/usage/index.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { assertBuilt, runApp } from './fixtures/run-app.js';

let mock: MockProvider;
let receiver: OtlpReceiver;

beforeAll(async () => {
  assertBuilt();
  mock = await startMockProvider({ seed: 5 });
  receiver = await startOtlpReceiver();
});

afterAll(async () => {
  await mock.close();
  await receiver.close();
});

beforeEach(() => {
  receiver.requests.length = 0;
  mock.usageSent.length = 0;
});

describe('node --require tokenmeter/register (CommonJS)', () => {
  it('exports responses, embeddings and an Anthropic stream with the provider usage (OTLP/JSON)', async () => {
    const run = await runApp({
      nodeArgs: ['--require', 'tokenmeter/register'],
      file: 'cjs-app.cjs',
      env: { MOCK_URL: mock.url, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'e2e-cjs-app' },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    const spans = receiver.spans();
    expect(spans.map((s) => s.name)).toEqual(['chat gpt-4.1-mini', 'embeddings text-embedding-3-small', 'chat claude-haiku-4-5']);
    expect(spans[0].attributes['gen_ai.response.id']).toBe(out.responseId);
    expect(spans[2].attributes['gen_ai.response.id']).toBe(out.messageId);
    expect(spans[1].attributes['gen_ai.usage.input_tokens']).toBe(out.embeddingTokens);
    expect(mock.usageSent.length).toBe(3);
    for (const [i, span] of spans.entries()) {
      expect(span.resource['service.name']).toBe('e2e-cjs-app');
      expect(span.attributes).toMatchObject(usageToGenAiAttributes(mock.usageSent[i].usage));
    }
  });

  it('exports OTLP/protobuf by default, and the exporter extracts exactly the usage the provider sent', async () => {
    const run = await runApp({
      nodeArgs: ['--require', 'tokenmeter/register'],
      file: 'cjs-app.cjs',
      env: { MOCK_URL: mock.url, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url },
    });
    expect(run.code).toBe(0);
    const traces = receiver.requests.filter((r) => r.path === '/v1/traces');
    expect(traces.length).toBeGreaterThan(0);
    expect(traces[0].contentType).toBe('application/x-protobuf');
    const records = traces
      .flatMap((r) => decodeTraceRequest(r.body, r.contentType, undefined, { maxDecompressedBytes: 1 << 24 }).spans)
      .map((s) => extractUsage(s))
      .filter((x) => x.kind === 'usage')
      .map((x) => (x.kind === 'usage' ? x.record : undefined));
    expect(records.length).toBe(3);
    for (const [i, record] of records.entries()) {
      const sent = mock.usageSent[i].usage;
      expect(record?.usage).toMatchObject({ input: sent.input, cache_read: sent.cache_read, cache_write: sent.cache_write, output: sent.output, reasoning: sent.reasoning });
      expect(record?.estimated).toBe(false);
      expect(record?.source).toBe('tokenmeter');
    }
  });
});
