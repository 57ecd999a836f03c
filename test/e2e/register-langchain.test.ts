import { describe, expect, it } from 'vitest';
import { decodeTraceRequest } from '../../src/ingest/decode.js';
import { extractUsage } from '../../src/ingest/extract.js';
import { usageToGenAiAttributes } from '../../src/usage/index.js';
import { runApp, useE2eServers } from './fixtures/run-app.js';

/*
 * Two layers, one count (issue 17): LangChain.js over the `openai` SDK with the one import. tokenmeter patches the
 * openai layer; LangChain adds no span of its own here, so each model call is billed exactly once, streamed usage
 * included, attributed by withUser. (With OpenLLMetry's LangChain spans next to it, the exporter's superseding
 * rule keeps the count at one: test/e2e/genai-libraries.test.ts.)
 */

const e2e = useE2eServers(17);

describe('node --import tokenmeter/register with LangChain.js over openai', () => {
  it('meters invoke and stream once each, with the usage the provider sent, attributed by withUser', async () => {
    const run = await runApp({
      nodeArgs: ['--import', 'tokenmeter/register'],
      file: 'langchain-app.mjs',
      env: { MOCK_URL: e2e.mock.url, OTEL_EXPORTER_OTLP_ENDPOINT: e2e.receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'e2e-langchain-app' },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.streamedChars).toBeGreaterThan(0);

    expect(e2e.mock.usageSent.length).toBe(2);
    const spans = e2e.receiver.spans();
    expect(spans.map((s) => s.name)).toEqual(['chat gpt-4o-mini', 'chat gpt-4o-mini']);
    for (const [i, span] of spans.entries()) {
      expect(span.scope).toBe('tokenmeter');
      // openai_compatible: the base URL is the local mock, not OpenAI's (as in register-esm.test.ts).
      expect(span.attributes).toMatchObject({ 'gen_ai.provider.name': 'openai_compatible', 'user.id': 'lc-user', 'tokenmeter.plan': 'pro' });
      expect(span.attributes).toMatchObject(usageToGenAiAttributes(e2e.mock.usageSent[i].usage));
      expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
    }
    expect(spans[1].attributes['gen_ai.request.stream']).toBe(true);
    // What LangChain told the app is what the spans say.
    expect(spans[0].attributes['gen_ai.usage.input_tokens']).toBe(out.invoke.input_tokens);
    expect(spans[1].attributes['gen_ai.usage.output_tokens']).toBe(out.stream.output_tokens);

    const records = e2e.receiver.requests
      .filter((r) => r.path === '/v1/traces')
      .flatMap((r) => decodeTraceRequest(r.body, r.contentType, undefined, { maxDecompressedBytes: 1 << 24 }).spans)
      .map((s) => extractUsage(s))
      .flatMap((x) => (x.kind === 'usage' ? [x.record] : []));
    expect(records).toHaveLength(2);
    for (const [i, r] of records.entries()) {
      expect(r.userId).toBe('lc-user');
      expect(r.usage).toMatchObject(e2e.mock.usageSent[i].usage);
    }
  });
});
