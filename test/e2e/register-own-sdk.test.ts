import { describe, expect, it } from 'vitest';
import { usageToGenAiAttributes } from '../../src/usage/index.js';
import { runApp, useE2eServers } from './fixtures/run-app.js';

const e2e = useE2eServers(17);

describe('apps with their own NodeSDK', () => {
  it('tokenmeterInstrumentations() reports through the app’s own SDK and exporters (CommonJS)', async () => {
    const run = await runApp({
      nodeArgs: [],
      file: 'own-sdk-app.cjs',
      env: {
        MOCK_URL: e2e.mock.url,
        RECEIVER_URL: e2e.receiver.url,
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: 'true',
      },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as { chatId: string; messageId: string };
    const spans = e2e.receiver.spans();
    expect(spans.map((s) => s.name)).toEqual(['chat gpt-4o-mini', 'chat claude-haiku-4-5']);
    expect(spans.map((s) => s.attributes['gen_ai.response.id'])).toEqual([out.chatId, out.messageId]);
    expect(e2e.mock.usageSent.length).toBe(2);
    for (const [i, span] of spans.entries()) {
      expect(span.scope).toBe('tokenmeter');
      expect(span.resource['service.name']).toBe('own-sdk-app');
      expect(span.attributes).toMatchObject({ 'user.id': 'own-user', 'tokenmeter.plan': 'team', ...usageToGenAiAttributes(e2e.mock.usageSent[i].usage) });
      // OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true switched content capture on.
      expect(JSON.parse(String(span.attributes['gen_ai.input.messages']))).toEqual([{ role: 'user', content: 'Hello from an app with its own SDK.' }]);
      expect(String(span.attributes['gen_ai.output.messages'])).toContain('"role":"assistant"');
    }
    const tokens = e2e.receiver.histograms().filter((p) => p.metric === 'gen_ai.client.token.usage');
    const input = tokens.filter((p) => p.attributes['gen_ai.token.type'] === 'input').reduce((n, p) => n + p.sum, 0);
    expect(input).toBe(e2e.mock.usageSent.reduce((n, s) => n + s.usage.input + s.usage.cache_read + s.usage.cache_write, 0));
  });

  it('instrument(module) covers an SDK the loader hooks never saw (the bundler recipe, ESM)', async () => {
    const run = await runApp({
      nodeArgs: [],
      file: 'instrument-app.mjs',
      env: { MOCK_URL: e2e.mock.url, OTEL_EXPORTER_OTLP_ENDPOINT: e2e.receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'bundled-app' },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout) as { patched: string[]; chatId: string; text: string };
    expect(out.patched).toEqual(['chat.completions.create', 'responses.create', 'embeddings.create']);
    expect(out.text.length).toBeGreaterThan(0);
    const spans = e2e.receiver.spans();
    expect(spans.length).toBe(2);
    expect(spans[0].attributes['gen_ai.response.id']).toBe(out.chatId);
    for (const [i, span] of spans.entries()) {
      expect(span.resource['service.name']).toBe('bundled-app');
      expect(span.attributes).toMatchObject(usageToGenAiAttributes(e2e.mock.usageSent[i].usage));
      expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
    }
  });
});
