import { describe, expect, it } from 'vitest';
import { decodeTraceRequest } from '../../src/ingest/decode.js';
import { extractUsage } from '../../src/ingest/extract.js';
import { usageToGenAiAttributes } from '../../src/usage/index.js';
import { runApp, useE2eServers } from './fixtures/run-app.js';

/*
 * The one import with the Vercel AI SDK (`ai` 6 from the dev dependencies; `ai` 7, ESM-only and Node 22+, is run
 * the same way by the SDK matrix and in-process by test/instrumentation/ai-sdk.test.ts): the app's call sites are
 * unchanged and every model call becomes one tokenmeter span with the usage the provider sent.
 */

const e2e = useE2eServers(17);

function env(): Record<string, string> {
  return { MOCK_URL: e2e.mock.url, OTEL_EXPORTER_OTLP_ENDPOINT: e2e.receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'e2e-ai-sdk-app' };
}

/** The records the exporter would bill from what the app exported. */
function billed() {
  return e2e.receiver.requests
    .filter((r) => r.path === '/v1/traces')
    .flatMap((r) => decodeTraceRequest(r.body, r.contentType, undefined, { maxDecompressedBytes: 1 << 24 }).spans)
    .map((s) => extractUsage(s))
    .flatMap((x) => (x.kind === 'usage' ? [x.record] : []));
}

describe('node --import tokenmeter/register with the Vercel AI SDK (ESM)', () => {
  it('meters generateText, streamText, generateObject, streamObject and embedMany once each, attributed by withUser', async () => {
    const run = await runApp({ nodeArgs: ['--import', 'tokenmeter/register'], file: 'ai-sdk-app.mjs', env: env() });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.generateObjectError).toMatch(/NoObjectGenerated/);
    expect(out.streamedChars).toBeGreaterThan(0);

    const spans = e2e.receiver.spans();
    expect(spans.map((s) => s.name)).toEqual(['chat gpt-4o-mini', 'chat gpt-4o-mini', 'chat gpt-4o-mini', 'chat gpt-4o-mini', 'embeddings text-embedding-3-small']);
    expect(e2e.mock.usageSent.length).toBe(5);
    for (const [i, span] of spans.entries()) {
      expect(span.scope).toBe('tokenmeter');
      expect(span.attributes).toMatchObject({ 'gen_ai.provider.name': 'openai', 'user.id': 'ai-user', 'tokenmeter.plan': 'pro' });
      expect(span.attributes).toMatchObject(usageToGenAiAttributes(e2e.mock.usageSent[i].usage));
      expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
    }
    expect(spans[1].attributes['gen_ai.request.stream']).toBe(true);
    // What the AI SDK told the app is what the spans say.
    expect(spans[0].attributes['gen_ai.usage.input_tokens']).toBe(out.generateText.inputTokens);
    expect(spans[1].attributes['gen_ai.usage.output_tokens']).toBe(out.streamText.outputTokens);
    expect(spans[4].attributes['gen_ai.usage.input_tokens']).toBe(out.embedMany.tokens);

    const records = billed();
    expect(records).toHaveLength(5);
    for (const [i, r] of records.entries()) {
      expect(r.userId).toBe('ai-user');
      expect(r.usage).toMatchObject(e2e.mock.usageSent[i].usage);
    }
  });
});

describe('node --require tokenmeter/register with the Vercel AI SDK (CommonJS)', () => {
  it('require("ai") hands out metered functions', async () => {
    const run = await runApp({ nodeArgs: ['--require', 'tokenmeter/register'], file: 'ai-sdk-app.cjs', env: env() });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    const spans = e2e.receiver.spans();
    expect(spans.map((s) => s.name)).toEqual(['chat gpt-4o-mini', 'embeddings text-embedding-3-small']);
    expect(spans[0].attributes['gen_ai.usage.input_tokens']).toBe(out.generateText.inputTokens);
    expect(spans[1].attributes['gen_ai.usage.input_tokens']).toBe(out.embed.tokens);
  });
});

describe('the Vercel AI SDK imported before tokenmeter/register (no --import)', () => {
  it('says once on stderr that `ai` is not metered and how to fix it, and the app runs', async () => {
    const run = await runApp({ nodeArgs: [], file: 'ai-sdk-late-app.mjs', env: env() });
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/Vercel AI SDK \(`ai`\) was loaded before tokenmeter\/register, so its calls are NOT metered.*node --import tokenmeter\/register/);
    expect(run.stderr.match(/tokenmeter: warning:/g)).toHaveLength(1);
    expect(JSON.parse(run.stdout).text.length).toBeGreaterThan(0);
  });
});
