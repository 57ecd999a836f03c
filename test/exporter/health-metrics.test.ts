/**
 * The exporter's own health on /metrics (issue 19, point 7): process and Node.js runtime metrics, the build info
 * gauge, and OTLP request counts by signal and status code with their latency. Real exporter, embedded ledger.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRIC, PROCESS_METRIC } from '../../src/contract/names.js';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { httpRequest, otlpJson, postOtlp, scrape } from './harness.js';

let dir: string;
let e: RunningExporter;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tokenmeter-health-'));
  e = await startExporter({
    config: { auth: { ingest_token: 'ingest-secret-token-0123456789' } },
    storage: join(dir, 'ledger'),
    host: '127.0.0.1',
    otlpPort: 0,
    httpPort: 0,
    log: () => {},
  });
});
afterAll(async () => {
  await e?.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth = { authorization: 'Bearer ingest-secret-token-0123456789' };
const value = (lines: string[], prefix: string) => {
  const l = lines.find((x) => x.startsWith(`${prefix} `));
  return l === undefined ? undefined : Number(l.slice(prefix.length + 1));
};

describe('exporter health metrics', () => {
  it('exposes the process and Node.js runtime metrics', async () => {
    const lines = await scrape(e.httpUrl);
    for (const name of Object.values(PROCESS_METRIC)) {
      expect(lines.some((l) => l.startsWith(`# TYPE ${name} `)), name).toBe(true);
    }
    expect(value(lines, PROCESS_METRIC.residentMemoryBytes)).toBeGreaterThan(1_000_000);
    expect(value(lines, PROCESS_METRIC.startTimeSeconds)).toBeGreaterThan(1_700_000_000);
  });

  it('exposes the build info: package version and Node.js version', async () => {
    const version = (JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;
    const lines = await scrape(e.httpUrl);
    expect(lines).toContain(`${METRIC.buildInfo}{version="${version}",node_version="${process.version}"} 1`);
  });

  it('counts OTLP requests by signal and status code, with their latency', async () => {
    const before = await scrape(e.httpUrl);
    expect(value(before, `${METRIC.otlpRequestsTotal}{signal="traces",code="200"}`)).toBe(0);
    expect(value(before, `${METRIC.otlpRequestDurationSeconds}_count{signal="traces"}`)).toBe(0);

    const span = otlpJson([{ spanId: 'c000000000000001', user: 'alice', model: 'gpt-4o', input: 10, output: 2 }]);
    expect((await postOtlp(e.otlpUrl, span, 'application/json', auth)).status).toBe(200);
    expect((await postOtlp(e.otlpUrl, span, 'application/json')).status).toBe(401);
    expect((await postOtlp(e.otlpUrl, '{"resourceSpans": [', 'application/json', auth)).status).toBe(400);
    expect((await postOtlp(e.otlpUrl, span, 'text/plain', auth)).status).toBe(415);
    expect((await httpRequest(`${e.otlpUrl}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: '{}' })).status).toBe(404);
    expect((await httpRequest(`${e.otlpUrl}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: '{}' })).status).toBe(200);

    const lines = await scrape(e.httpUrl);
    expect(value(lines, `${METRIC.otlpRequestsTotal}{signal="traces",code="200"}`)).toBe(1);
    expect(value(lines, `${METRIC.otlpRequestsTotal}{signal="traces",code="401"}`)).toBe(1);
    expect(value(lines, `${METRIC.otlpRequestsTotal}{signal="traces",code="400"}`)).toBe(1);
    expect(value(lines, `${METRIC.otlpRequestsTotal}{signal="traces",code="415"}`)).toBe(1);
    expect(value(lines, `${METRIC.otlpRequestsTotal}{signal="metrics",code="200"}`)).toBe(1);
    // No OTLP endpoint at /v1/logs.
    expect(value(lines, `${METRIC.otlpRequestsTotal}{signal="other",code="404"}`)).toBe(1);
    expect(value(lines, `${METRIC.otlpRequestDurationSeconds}_count{signal="traces"}`)).toBe(4);
    const sum = value(lines, `${METRIC.otlpRequestDurationSeconds}_sum{signal="traces"}`)!;
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(60);
  });
});
