import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMockProvider, type MockProvider } from '../../src/mock-provider/index.js';
import { usageToGenAiAttributes } from '../../src/usage/index.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { cellsOf, installedVersion, named } from './cells.js';
import { runCellApp } from './run-cell-app.js';

/*
 * Apps that already run OpenTelemetry: an app with its own NodeSDK of the current line adds
 * tokenmeterInstrumentations() and is metered exactly once, through its own SDK, with no second SDK started.
 * tokenmeter's own dependency stays on the line that runs on Node 20; this cell brings the newer one.
 */

let mock: MockProvider;
let receiver: OtlpReceiver;

beforeAll(async () => {
  mock = await startMockProvider({ seed: 29 });
  receiver = await startOtlpReceiver();
});
afterAll(async () => {
  await mock?.close();
  await receiver?.close();
});

for (const cell of cellsOf('own-sdk')) {
  describe(`${cell.id} (the app's own NodeSDK) on node ${process.version}`, () => {
    it(named(cell, `tokenmeterInstrumentations() in the app's NodeSDK: metered exactly once, through that SDK only (openai ${cell.with.openai}, @anthropic-ai/sdk ${cell.with['@anthropic-ai/sdk']})`), async () => {
      expect(installedVersion(cell, cell.package)).toBe(cell.version);
      const run = await runCellApp(cell, 'own-sdk-app.cjs', [], {
        MOCK_URL: mock.url,
        // The app's SDK exports by the standard variables. A second SDK (tokenmeter's) would export here too.
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_METRICS_EXPORTER: 'otlp',
        OTEL_LOGS_EXPORTER: 'none',
      });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const out = JSON.parse(run.stdout) as { chatId: string; messageId: string; chunks: number; sawUsage?: boolean };
      expect(out.sawUsage).toBeUndefined();
      expect(out.chunks).toBeGreaterThan(5);

      const spans = receiver.spans();
      expect(spans.map((s) => s.name)).toEqual(['chat gpt-4o-mini', 'chat gpt-4o-mini', 'chat claude-haiku-4-5']);
      expect(spans[0].attributes['gen_ai.response.id']).toBe(out.chatId);
      expect(spans[2].attributes['gen_ai.response.id']).toBe(out.messageId);
      expect(mock.usageSent.length).toBe(3);
      // Exported by the app's SDK (its core version on the resource), not by a second one of tokenmeter's line.
      const appCore = (JSON.parse(readFileSync(join(cell.dir, 'node_modules', '@opentelemetry', 'core', 'package.json'), 'utf8')) as { version: string }).version;
      for (const [i, span] of spans.entries()) {
        expect(span.scope).toBe('tokenmeter');
        expect(span.resource['service.name']).toBe('own-sdk-301');
        expect(span.resource['telemetry.sdk.version']).toBe(appCore);
        expect(span.attributes).toMatchObject({ 'user.id': 'own-user', 'tokenmeter.plan': 'team', ...usageToGenAiAttributes(mock.usageSent[i].usage) });
        expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
      }
      // Nothing counted twice: the token histograms add up to exactly what the provider sent, one duration per call.
      const points = receiver.histograms();
      const tokens = points.filter((p) => p.metric === 'gen_ai.client.token.usage');
      const sum = (type: string) => tokens.filter((p) => p.attributes['gen_ai.token.type'] === type).reduce((n, p) => n + p.sum, 0);
      expect(sum('input')).toBe(mock.usageSent.reduce((n, s) => n + s.usage.input + s.usage.cache_read + s.usage.cache_write, 0));
      expect(sum('output')).toBe(mock.usageSent.reduce((n, s) => n + s.usage.output + s.usage.reasoning, 0));
      const durations = points.filter((p) => p.metric === 'gen_ai.client.operation.duration');
      expect(durations.reduce((n, p) => n + p.count, 0)).toBe(3);
    });
  });
}
