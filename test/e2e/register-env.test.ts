/**
 * The OTEL_* surface of the SDK that `tokenmeter/register` composes itself (src/instrumentation/providers.ts,
 * instead of @opentelemetry/sdk-node): what NodeSDK read is read the same way, and what is not installed with
 * tokenmeter (gRPC, Zipkin, Prometheus, b3) is said once on stderr with the fix — never a silent nothing.
 */
import { describe, expect, it } from 'vitest';
import { runApp, useE2eServers } from './fixtures/run-app.js';

const e2e = useE2eServers(23);
const WARNING = 'tokenmeter: warning: ';

function env(extra: Record<string, string> = {}): Record<string, string> {
  return { MOCK_URL: e2e.mock.url, OTEL_EXPORTER_OTLP_ENDPOINT: e2e.receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', ...extra };
}

function run(extra: Record<string, string>) {
  return runApp({ nodeArgs: ['--import', 'tokenmeter/register'], file: 'esm-app.mjs', env: env(extra) });
}

function lines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '');
}

describe('tokenmeter/register reads the OTEL_* variables', () => {
  it('the resource: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, with the process and host detectors', async () => {
    const r = await run({ OTEL_SERVICE_NAME: 'env-app', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,team=billing' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const spans = e2e.receiver.spans();
    expect(spans).toHaveLength(3);
    expect(spans[0].resource).toMatchObject({
      'service.name': 'env-app',
      'deployment.environment.name': 'test',
      team: 'billing',
      'telemetry.sdk.language': 'nodejs',
      'process.runtime.name': 'nodejs',
    });
    expect(typeof spans[0].resource['host.name']).toBe('string');
  });

  it('OTEL_TRACES_EXPORTER=otlp,console: the spans go to both', async () => {
    const r = await run({ OTEL_TRACES_EXPORTER: 'otlp,console', OTEL_METRICS_EXPORTER: 'none' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(e2e.receiver.spans()).toHaveLength(3);
    expect(r.stdout).toContain("'gen_ai.usage.input_tokens'");
    expect(e2e.receiver.histograms()).toEqual([]);
  });

  it('OTEL_TRACES_EXPORTER=none: no spans, the metrics still go out', async () => {
    const r = await run({ OTEL_TRACES_EXPORTER: 'none' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(e2e.receiver.spans()).toEqual([]);
    expect(e2e.receiver.histograms().some((p) => p.metric === 'gen_ai.client.token.usage')).toBe(true);
  });

  it('OTEL_EXPORTER_OTLP_PROTOCOL=grpc: one warning per signal naming the fix; the app is unchanged', async () => {
    const r = await run({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).chatId).toMatch(/^chatcmpl-mock-/);
    const out = lines(r.stderr);
    expect(out, r.stderr).toHaveLength(2);
    expect(out[0]).toMatch(new RegExp(`^${WARNING}OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported .* so metrics are not exported .*http/protobuf`));
    expect(out[1]).toMatch(new RegExp(`^${WARNING}OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported .* so spans are not exported .*http/protobuf`));
    expect(e2e.receiver.requests.length).toBe(0);
  });

  it('OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=grpc: the warning names that variable; the spans still go out', async () => {
    const r = await run({ OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'grpc' });
    expect(r.code).toBe(0);
    const out = lines(r.stderr);
    expect(out, r.stderr).toHaveLength(1);
    expect(out[0]).toMatch(new RegExp(`^${WARNING}OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=grpc is not supported .* so metrics are not exported`));
    expect(e2e.receiver.spans()).toHaveLength(3);
  });

  it('OTEL_TRACES_EXPORTER=zipkin and OTEL_METRICS_EXPORTER=prometheus: one warning each, naming otlp', async () => {
    const r = await run({ OTEL_TRACES_EXPORTER: 'zipkin', OTEL_METRICS_EXPORTER: 'prometheus' });
    expect(r.code).toBe(0);
    const out = lines(r.stderr);
    expect(out, r.stderr).toHaveLength(2);
    expect(out.some((l) => l.startsWith(`${WARNING}OTEL_TRACES_EXPORTER="zipkin" is not supported`) && l.includes('use otlp'))).toBe(true);
    expect(out.some((l) => l.startsWith(`${WARNING}OTEL_METRICS_EXPORTER="prometheus" is not supported`))).toBe(true);
    expect(e2e.receiver.requests.length).toBe(0);
  });

  it('OTEL_PROPAGATORS=b3: one warning; the spans are still exported', async () => {
    const r = await run({ OTEL_PROPAGATORS: 'tracecontext,b3' });
    expect(r.code).toBe(0);
    const out = lines(r.stderr);
    expect(out, r.stderr).toHaveLength(1);
    expect(out[0]).toMatch(new RegExp(`^${WARNING}OTEL_PROPAGATORS names "b3", which tokenmeter/register does not install`));
    expect(e2e.receiver.spans()).toHaveLength(3);
  });

  it('a hostile exporter name is quoted and cut short in the one warning', async () => {
    const r = await run({ OTEL_TRACES_EXPORTER: `x${'\u001b[31m'.repeat(30)}`, OTEL_METRICS_EXPORTER: 'none' });
    expect(r.code).toBe(0);
    const out = lines(r.stderr);
    expect(out, r.stderr).toHaveLength(1);
    expect(out[0]).not.toContain('\u001b');
    expect(out[0].length).toBeLessThan(400);
  });
});
