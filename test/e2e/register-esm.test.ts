import { describe, expect, it } from 'vitest';
import type { SentUsage } from '../../src/mock-provider/index.js';
import { usageToGenAiAttributes } from '../../src/usage/index.js';
import type { ReceivedSpan } from '../helpers/otlp-receiver.js';
import { runApp, useE2eServers } from './fixtures/run-app.js';

const e2e = useE2eServers(11);

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    MOCK_URL: e2e.mock.url,
    OTEL_EXPORTER_OTLP_ENDPOINT: e2e.receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_SERVICE_NAME: 'e2e-esm-app',
    ...extra,
  };
}

/** The usage the mock sent for the response a span recorded (ids end in the mock's request number). */
function sentFor(span: ReceivedSpan): SentUsage | undefined {
  const n = Number(/(\d+)$/.exec(String(span.attributes['gen_ai.response.id']))?.[1]);
  return e2e.mock.usageSent.find((s) => s.requestNumber === n);
}

describe('node --import tokenmeter/register (ESM)', () => {
  it('exports every call of an ESM app as a span and metrics with the provider usage', async () => {
    const run = await runApp({ nodeArgs: ['--import', 'tokenmeter/register'], file: 'esm-app.mjs', env: env() });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);

    const spans = e2e.receiver.spans();
    // Only tokenmeter's spans: the Anthropic SDK's own spans are switched off so nothing is counted twice.
    expect(spans.map((s) => s.scope)).toEqual(['tokenmeter', 'tokenmeter', 'tokenmeter']);
    expect(spans.map((s) => s.name)).toEqual(['chat gpt-4o-mini', 'chat gpt-4o-mini', 'chat claude-haiku-4-5']);
    expect(spans.map((s) => s.attributes['gen_ai.provider.name'])).toEqual(['openai_compatible', 'openai_compatible', 'anthropic']);
    expect(spans[0].attributes['gen_ai.response.id']).toBe(out.chatId);
    expect(spans[2].attributes['gen_ai.response.id']).toBe(out.messageId);
    expect(e2e.mock.usageSent.length).toBe(3);
    for (const span of spans) {
      expect(span.kind).toBe(3); // CLIENT
      expect(span.resource['service.name']).toBe('e2e-esm-app');
      expect(span.attributes).toMatchObject({ 'user.id': 'esm-user', 'tokenmeter.plan': 'pro', 'tokenmeter.feature': 'e2e' });
      const sent = sentFor(span);
      expect(sent).toBeDefined();
      expect(span.attributes).toMatchObject(usageToGenAiAttributes(sent!.usage));
      expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
      // Message content is user data: not captured unless OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true.
      expect(span.attributes['gen_ai.input.messages']).toBeUndefined();
      expect(span.attributes['gen_ai.output.messages']).toBeUndefined();
    }

    // The streamed chat asked for usage on the wire, and the app saw no trace of it.
    expect(e2e.mock.requests[1].body.stream_options).toEqual({ include_usage: true });
    expect(out.chunks.some((c: Record<string, unknown>) => 'usage' in c)).toBe(false);

    const tokens = e2e.receiver.histograms().filter((p) => p.metric === 'gen_ai.client.token.usage');
    const sum = (type: string) => tokens.filter((p) => p.attributes['gen_ai.token.type'] === type).reduce((n, p) => n + p.sum, 0);
    const sentIn = e2e.mock.usageSent.reduce((n, s) => n + s.usage.input + s.usage.cache_read + s.usage.cache_write, 0);
    const sentOut = e2e.mock.usageSent.reduce((n, s) => n + s.usage.output + s.usage.reasoning, 0);
    expect(sum('input')).toBe(sentIn);
    expect(sum('output')).toBe(sentOut);
    expect(tokens.every((p) => p.unit === '{token}')).toBe(true);
    const durations = e2e.receiver.histograms().filter((p) => p.metric === 'gen_ai.client.operation.duration');
    expect(durations.reduce((n, p) => n + p.count, 0)).toBe(3);
  });

  it("works as an app's first import, for the default and the named export", async () => {
    const run = await runApp({ nodeArgs: [], file: 'first-import-app.mjs', env: env() });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const { ids } = JSON.parse(run.stdout) as { ids: string[] };
    const spans = e2e.receiver.spans();
    expect(spans.map((s) => s.attributes['gen_ai.response.id'])).toEqual(ids);
    for (const span of spans) expect(span.attributes).toMatchObject(usageToGenAiAttributes(sentFor(span)!.usage));
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('flushes the spans of an app stopped with %s', async (signal) => {
    const run = await runApp({
      nodeArgs: ['--import', 'tokenmeter/register'],
      file: 'signal-app.mjs',
      env: env(),
      onOutput: { text: 'ready', then: (child) => child.kill(signal) },
    });
    // The app has no handler of its own: after the flush it still ends by the signal, as without tokenmeter.
    expect(run.signal).toBe(signal);
    const spans = e2e.receiver.spans();
    expect(spans.length).toBe(1);
    expect(spans[0].attributes['gen_ai.response.id']).toBe(run.stdout.split(' ')[1].trim());
    expect(spans[0].attributes['gen_ai.usage.input_tokens']).toBe(e2e.mock.usageSent[0].usage.input);
  });

  it('does nothing with OTEL_SDK_DISABLED=true, and the app still works', async () => {
    const run = await runApp({ nodeArgs: ['--import', 'tokenmeter/register'], file: 'esm-app.mjs', env: env({ OTEL_SDK_DISABLED: 'true' }) });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).chatId).toMatch(/^chatcmpl-mock-/);
    expect(e2e.receiver.requests.length).toBe(0);
    // Without tokenmeter nobody asks for stream usage.
    expect(e2e.mock.requests[1].body.stream_options).toBeUndefined();
  });
});
