/**
 * SIGTERM / SIGINT under tokenmeter/register, with child processes: an app without a handler of its own still
 * ends by the signal after its finished spans are exported; an app with its own handler is left to drain — the
 * LLM call in flight when the signal arrives is exported, however the app then exits.
 */
import { describe, expect, it } from 'vitest';
import { usageToGenAiAttributes } from '../../src/usage/index.js';
import { runApp, useE2eServers } from './fixtures/run-app.js';

const e2e = useE2eServers(13);

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    MOCK_URL: e2e.mock.url,
    OTEL_EXPORTER_OTLP_ENDPOINT: e2e.receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_SERVICE_NAME: 'e2e-signals',
    ...extra,
  };
}

describe('tokenmeter/register and shutdown signals', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('CommonJS app without a handler: %s exports the finished span, then the process ends by the signal', async (signal) => {
    const run = await runApp({
      nodeArgs: ['--require', 'tokenmeter/register'],
      file: 'signal-app.cjs',
      env: env(),
      onOutput: { text: 'ready', then: (child) => child.kill(signal) },
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBeNull();
    expect(run.signal).toBe(signal);
    const spans = e2e.receiver.spans();
    expect(spans.map((s) => s.attributes['gen_ai.response.id'])).toEqual([run.stdout.split(' ')[1].trim()]);
    expect(spans[0].attributes).toMatchObject(usageToGenAiAttributes(e2e.mock.usageSent[0].usage));
  });

  // The stream is still being read when the signal arrives (the mock paces its chunks), and ends after it.
  it.each([
    ['exit', 'calls process.exit(7) right after', 7, 1],
    ['drain', 'lets its event loop empty', 0, 1],
    ['call-after', 'makes one more call after the signal, then calls process.exit(7)', 7, 2],
  ] as const)('EXIT_MODE=%s: an app with its own SIGTERM handler that %s exports the in-flight call', async (mode, _how, code, calls) => {
    e2e.mock.setChunkDelay(60);
    const run = await runApp({
      nodeArgs: ['--import', 'tokenmeter/register'],
      file: 'drain-app.mjs',
      env: env({ EXIT_MODE: mode }),
      onOutput: { text: 'ready', then: (child) => child.kill('SIGTERM') },
    });
    expect(run.stderr).toBe('');
    // The app decided how to end, not tokenmeter.
    expect(run.signal).toBeNull();
    expect(run.code).toBe(code);
    expect(run.stdout).toMatch(/^ready\ndraining\ndone /);
    const ids = /done (.*)\n/.exec(run.stdout)![1].split(' ');
    expect(ids).toHaveLength(calls);
    // The first stream was still running at the signal: its usage went out after the app saw it.
    expect(e2e.mock.usageSent).toHaveLength(calls);
    const spans = e2e.receiver.spans();
    expect(spans.map((s) => s.attributes['gen_ai.response.id']).sort()).toEqual([...ids].sort());
    for (const span of spans) {
      const n = Number(/(\d+)$/.exec(String(span.attributes['gen_ai.response.id']))![1]);
      const sent = e2e.mock.usageSent.find((s) => s.requestNumber === n)!;
      expect(span.attributes).toMatchObject(usageToGenAiAttributes(sent.usage));
      expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
    }
  });
});
