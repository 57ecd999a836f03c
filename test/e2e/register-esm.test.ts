import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMockProvider, type MockProvider, type SentUsage } from '../../src/mock-provider/index.js';
import { usageToGenAiAttributes } from '../../src/usage/index.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { assertBuilt, runApp } from './fixtures/run-app.js';

let mock: MockProvider;
let receiver: OtlpReceiver;

beforeAll(async () => {
  assertBuilt();
  mock = await startMockProvider({ seed: 11 });
  receiver = await startOtlpReceiver();
});

afterAll(async () => {
  await mock.close();
  await receiver.close();
});

beforeEach(() => {
  receiver.requests.length = 0;
  mock.usageSent.length = 0;
  mock.requests.length = 0;
});

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    MOCK_URL: mock.url,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_SERVICE_NAME: 'e2e-esm-app',
    ...extra,
  };
}

/** The usage the mock sent for the response a span recorded (ids end in the mock's request number). */
function sentFor(span: ReceivedSpan): SentUsage | undefined {
  const n = Number(/(\d+)$/.exec(String(span.attributes['gen_ai.response.id']))?.[1]);
  return mock.usageSent.find((s) => s.requestNumber === n);
}

describe('node --import tokenmeter/register (ESM)', () => {
  it('exports every call of an ESM app as a span and metrics with the provider usage', async () => {
    const run = await runApp({ nodeArgs: ['--import', 'tokenmeter/register'], file: 'esm-app.mjs', env: env() });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);

    const spans = receiver.spans();
    // Only tokenmeter's spans: the Anthropic SDK's own spans are switched off so nothing is counted twice.
    expect(spans.map((s) => s.scope)).toEqual(['tokenmeter', 'tokenmeter', 'tokenmeter']);
    expect(spans.map((s) => s.name)).toEqual(['chat gpt-4o-mini', 'chat gpt-4o-mini', 'chat claude-haiku-4-5']);
    expect(spans.map((s) => s.attributes['gen_ai.provider.name'])).toEqual(['openai_compatible', 'openai_compatible', 'anthropic']);
    expect(spans[0].attributes['gen_ai.response.id']).toBe(out.chatId);
    expect(spans[2].attributes['gen_ai.response.id']).toBe(out.messageId);
    expect(mock.usageSent.length).toBe(3);
    for (const span of spans) {
      expect(span.kind).toBe(3); // CLIENT
      expect(span.resource['service.name']).toBe('e2e-esm-app');
      expect(span.attributes).toMatchObject({ 'user.id': 'esm-user', 'tokenmeter.plan': 'pro', 'tokenmeter.feature': 'e2e' });
      const sent = sentFor(span);
      expect(sent).toBeDefined();
      expect(span.attributes).toMatchObject(usageToGenAiAttributes(sent!.usage));
      expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
    }

    // The streamed chat asked for usage on the wire, and the app saw no trace of it.
    expect(mock.requests[1].body.stream_options).toEqual({ include_usage: true });
    expect(out.chunks.some((c: Record<string, unknown>) => 'usage' in c)).toBe(false);

    const tokens = receiver.histograms().filter((p) => p.metric === 'gen_ai.client.token.usage');
    const sum = (type: string) => tokens.filter((p) => p.attributes['gen_ai.token.type'] === type).reduce((n, p) => n + p.sum, 0);
    const sentIn = mock.usageSent.reduce((n, s) => n + s.usage.input + s.usage.cache_read + s.usage.cache_write, 0);
    const sentOut = mock.usageSent.reduce((n, s) => n + s.usage.output + s.usage.reasoning, 0);
    expect(sum('input')).toBe(sentIn);
    expect(sum('output')).toBe(sentOut);
    expect(tokens.every((p) => p.unit === '{token}')).toBe(true);
    const durations = receiver.histograms().filter((p) => p.metric === 'gen_ai.client.operation.duration');
    expect(durations.reduce((n, p) => n + p.count, 0)).toBe(3);
  });

  it("works as an app's first import, for the default and the named export", async () => {
    const run = await runApp({ nodeArgs: [], file: 'first-import-app.mjs', env: env() });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const { ids } = JSON.parse(run.stdout) as { ids: string[] };
    const spans = receiver.spans();
    expect(spans.map((s) => s.attributes['gen_ai.response.id'])).toEqual(ids);
    for (const span of spans) expect(span.attributes).toMatchObject(usageToGenAiAttributes(sentFor(span)!.usage));
  });

  it('flushes the spans of an app stopped with SIGTERM', async () => {
    const run = await runApp({
      nodeArgs: ['--import', 'tokenmeter/register'],
      file: 'signal-app.mjs',
      env: env(),
      onOutput: { text: 'ready', then: (child) => child.kill('SIGTERM') },
    });
    expect(run.signal).toBe('SIGTERM');
    const spans = receiver.spans();
    expect(spans.length).toBe(1);
    expect(spans[0].attributes['gen_ai.response.id']).toBe(run.stdout.split(' ')[1].trim());
    expect(spans[0].attributes['gen_ai.usage.input_tokens']).toBe(mock.usageSent[0].usage.input);
  });

  it('does nothing with OTEL_SDK_DISABLED=true, and the app still works', async () => {
    const run = await runApp({ nodeArgs: ['--import', 'tokenmeter/register'], file: 'esm-app.mjs', env: env({ OTEL_SDK_DISABLED: 'true' }) });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).chatId).toMatch(/^chatcmpl-mock-/);
    expect(receiver.requests.length).toBe(0);
    // Without tokenmeter nobody asks for stream usage.
    expect(mock.requests[1].body.stream_options).toBeUndefined();
  });
});
