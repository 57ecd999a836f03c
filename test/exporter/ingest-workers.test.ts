/**
 * Issue 15: trace requests decoded, extracted and priced on ingest worker threads (config ingest.worker_threads),
 * with the real bindings (embedded journal ledger in a temp directory, the shipped price book, the configured plans):
 * the same answers and the same ledger with the workers on as off, hostile payloads, a worker that dies mid-request,
 * a price reload reaching the workers, shutdown with requests in flight.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { validateConfig, type TokenmeterConfigInput } from '../../src/config/index.js';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { getJson, gzip, otlpJson, postOtlp, scrape } from './harness.js';
import { makeSpans, protobufBody } from '../ingest/otel-spans.js';

const dirs: string[] = [];
const running: RunningExporter[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tokenmeter-ingest-workers-'));
  dirs.push(d);
  return d;
}

async function start(workerThreads: number, extra: TokenmeterConfigInput = {}, more: { logs?: string[]; storage?: string } = {}): Promise<RunningExporter> {
  const config = validateConfig(
    { ...extra, server: { host: '127.0.0.1', otlp_port: 0, http_port: 0 }, ledger: { refresh_interval: '0s' }, ingest: { ...extra.ingest, worker_threads: workerThreads } },
    'test',
  );
  const logs = more.logs;
  const e = await startExporter({ resolvedConfig: config, storage: more.storage ?? tempDir(), log: (l) => logs?.push(l) });
  running.push(e);
  return e;
}

const metric = (lines: string[], prefix: string): number =>
  lines.filter((l) => l.startsWith(prefix)).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

let seq = 0;
const nextSpanId = () => `a${(++seq).toString(16).padStart(15, '0')}`;

describe('ingest worker threads', () => {
  it('answers and bills exactly as the main thread does (JSON, protobuf, gzip, partial success)', async () => {
    const [off, on] = [await start(0), await start(1)];
    expect([off.ingestWorkerThreads, on.ingestWorkerThreads]).toEqual([0, 1]);
    const json = otlpJson([
      { spanId: nextSpanId(), user: 'u-1', model: 'gpt-4o-mini', input: 1200, output: 300 },
      { spanId: nextSpanId(), user: 'u-2', model: 'claude-sonnet-4-5', provider: 'anthropic', input: 5000, output: 10, cacheRead: 4000 },
      { spanId: nextSpanId(), user: 'u-1', model: 'no-such-model-xyz', input: 10, output: 10 },
      // Rejected alone (partial success): an implausible token count.
      { spanId: nextSpanId(), user: 'u-3', model: 'gpt-4o-mini', input: -5, output: 1 },
    ]);
    const proto = protobufBody(
      makeSpans([
        { name: 'chat gpt-4o', attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o', 'gen_ai.usage.input_tokens': 700, 'gen_ai.usage.output_tokens': 70, 'user.id': 'u-2' } },
      ]),
    );
    for (const e of [off, on]) {
      const a = await postOtlp(e.otlpUrl, json);
      const b = await postOtlp(e.otlpUrl, gzip(proto), 'application/x-protobuf', { 'content-encoding': 'gzip' });
      expect(b.status).toBe(200);
      (e as unknown as { answers: unknown[] }).answers = [a.status, a.body.toString('utf8'), b.body.toString('hex')];
    }
    expect((on as unknown as { answers: unknown[] }).answers).toEqual((off as unknown as { answers: unknown[] }).answers);
    expect((on as unknown as { answers: unknown[] }).answers[1]).toMatch(/"rejectedSpans":"1"/);
    for (const user of ['u-1', 'u-2', 'u-3']) {
      const [x, y] = [await getJson(`${off.httpUrl}/api/v1/usage/${user}`), await getJson(`${on.httpUrl}/api/v1/usage/${user}`)];
      expect(y.status).toBe(x.status);
      expect(y.json).toEqual(x.json);
    }
    const [mOff, mOn] = [await scrape(off.httpUrl), await scrape(on.httpUrl)];
    for (const name of ['tokenmeter_ingested_spans_total', 'tokenmeter_cost_usd_total', 'tokenmeter_unpriced_tokens_total', 'tokenmeter_tokens_total']) {
      expect(mOn.filter((l) => l.startsWith(name)).sort(), name).toEqual(mOff.filter((l) => l.startsWith(name)).sort());
    }
    expect(metric(mOn, 'tokenmeter_ingested_spans_total{outcome="priced"')).toBeGreaterThan(0);
  });
});
