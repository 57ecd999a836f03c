import { describe, expect, it } from 'vitest';
import { decodeTraceRequest } from '../../src/ingest/decode.js';
import { extractUsage } from '../../src/ingest/extract.js';
import { usageToGenAiAttributes } from '../../src/usage/index.js';
import { runApp, useE2eServers } from './fixtures/run-app.js';

const e2e = useE2eServers(5);

describe('node --require tokenmeter/register (CommonJS)', () => {
  it('exports responses, embeddings and an Anthropic stream with the provider usage (OTLP/JSON)', async () => {
    const run = await runApp({
      nodeArgs: ['--require', 'tokenmeter/register'],
      file: 'cjs-app.cjs',
      env: { MOCK_URL: e2e.mock.url, OTEL_EXPORTER_OTLP_ENDPOINT: e2e.receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'e2e-cjs-app' },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    const spans = e2e.receiver.spans();
    expect(spans.map((s) => s.name)).toEqual(['chat gpt-4.1-mini', 'embeddings text-embedding-3-small', 'chat claude-haiku-4-5']);
    expect(spans[0].attributes['gen_ai.response.id']).toBe(out.responseId);
    expect(spans[2].attributes['gen_ai.response.id']).toBe(out.messageId);
    expect(spans[1].attributes['gen_ai.usage.input_tokens']).toBe(out.embeddingTokens);
    expect(e2e.mock.usageSent.length).toBe(3);
    for (const [i, span] of spans.entries()) {
      expect(span.resource['service.name']).toBe('e2e-cjs-app');
      expect(span.attributes).toMatchObject(usageToGenAiAttributes(e2e.mock.usageSent[i].usage));
    }
  });

  it('exports OTLP/protobuf by default, and the exporter extracts exactly the usage the provider sent', async () => {
    const run = await runApp({
      nodeArgs: ['--require', 'tokenmeter/register'],
      file: 'cjs-app.cjs',
      env: { MOCK_URL: e2e.mock.url, OTEL_EXPORTER_OTLP_ENDPOINT: e2e.receiver.url },
    });
    expect(run.code).toBe(0);
    const traces = e2e.receiver.requests.filter((r) => r.path === '/v1/traces');
    expect(traces.length).toBeGreaterThan(0);
    expect(traces[0].contentType).toBe('application/x-protobuf');
    const records = traces
      .flatMap((r) => decodeTraceRequest(r.body, r.contentType, undefined, { maxDecompressedBytes: 1 << 24 }).spans)
      .map((s) => extractUsage(s))
      .filter((x) => x.kind === 'usage')
      .map((x) => (x.kind === 'usage' ? x.record : undefined));
    expect(records.length).toBe(3);
    for (const [i, record] of records.entries()) {
      const sent = e2e.mock.usageSent[i].usage;
      expect(record?.usage).toMatchObject({ input: sent.input, cache_read: sent.cache_read, cache_write: sent.cache_write, output: sent.output, reasoning: sent.reasoning });
      expect(record?.estimated).toBe(false);
      expect(record?.source).toBe('tokenmeter');
    }
  });
});
