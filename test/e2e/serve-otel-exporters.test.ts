/**
 * Bodies made by the real OTel JS exporters (http/protobuf and http/json, gzip and not), sent by a real
 * BasicTracerProvider to the exporter on loopback: spans with GenAI attributes come out priced to exact decimal
 * strings in the usage API and in /metrics; a rejected span comes back as partial success the SDK accepts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanKind, trace, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BasicTracerProvider, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { getJson, scrape } from '../exporter/harness.js';

/** Wraps an exporter so the test learns each export's result (the SDK would only log it). */
class Recording implements SpanExporter {
  readonly results: ExportResult[] = [];
  constructor(private readonly inner: SpanExporter) {}
  export(spans: ReadableSpan[], cb: (r: ExportResult) => void): void {
    this.inner.export(spans, (r) => {
      this.results.push(r);
      cb(r);
    });
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

function chat(tracer: Tracer, user: string, model: string, input: number, output: number, extra: Record<string, number | string> = {}): void {
  const span = tracer.startSpan(`chat ${model}`, {
    kind: SpanKind.CLIENT,
    attributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': model,
      'gen_ai.response.model': model,
      'gen_ai.usage.input_tokens': input,
      'gen_ai.usage.output_tokens': output,
      'user.id': user,
      'tokenmeter.plan': 'pro',
      ...extra,
    },
  });
  span.end();
}

async function sendWith(exporter: SpanExporter, work: (tracer: Tracer) => void): Promise<ExportResult[]> {
  const rec = new Recording(exporter);
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(rec)] });
  work(provider.getTracer('e2e'));
  await provider.forceFlush();
  await provider.shutdown();
  return rec.results;
}

let exporter: RunningExporter;
beforeAll(async () => {
  // The whole real pipeline: ingest, plans, price book, embedded ledger with group commit.
  exporter = await startExporter({ storage: join(mkdtempSync(join(tmpdir(), 'tm-e2e-')), 'ledger'), host: '127.0.0.1', otlpPort: 0, httpPort: 0, log: () => {} });
});
afterAll(async () => {
  await exporter?.close();
  trace.disable();
});

describe('real OTel JS exporters → tokenmeter serve', () => {
  const cases = [
    { name: 'http/protobuf', make: (url: string) => new ProtoExporter({ url }) },
    { name: 'http/protobuf + gzip', make: (url: string) => new ProtoExporter({ url, compression: 'gzip' as never }) },
    { name: 'http/json', make: (url: string) => new JsonExporter({ url }) },
    { name: 'http/json + gzip', make: (url: string) => new JsonExporter({ url, compression: 'gzip' as never }) },
  ];
  for (const [i, c] of cases.entries()) {
    it(`${c.name}: priced to exact decimals`, async () => {
      const user = `otel-user-${i}`;
      const results = await sendWith(c.make(`${exporter.otlpUrl}/v1/traces`), (t) => {
        chat(t, user, 'gpt-4o', 1000, 500);
        chat(t, user, 'gpt-4o-mini', 10_000, 2_000);
      });
      expect(results.map((r) => r.code)).toEqual(results.map(() => ExportResultCode.SUCCESS));
      const usage = await getJson(`${exporter.httpUrl}/api/v1/usage/${user}`);
      expect(usage.status).toBe(200);
      // gpt-4o: 1000 × $2.50/M + 500 × $10/M = 0.0075; gpt-4o-mini: 10000 × $0.15/M + 2000 × $0.60/M = 0.0027
      expect(usage.json.cost_usd).toBe('0.0102');
      expect(usage.json.requests).toBe(2);
      expect(usage.json.plan).toBe('pro');
      const lines = await scrape(exporter.httpUrl);
      expect(lines).toContain(`tokenmeter_period_cost_usd{user="${user}",plan="pro"} 0.0102`);
      expect(lines).toContain(`tokenmeter_period_tokens{user="${user}",plan="pro"} 13500`);
    });
  }

  it('a span with implausible usage is rejected through partial success; the SDK still reports success', async () => {
    const results = await sendWith(new ProtoExporter({ url: `${exporter.otlpUrl}/v1/traces` }), (t) => {
      chat(t, 'partial-user', 'gpt-4o', 100, 10);
      chat(t, 'partial-user', 'gpt-4o', -100, 10);
    });
    // SimpleSpanProcessor exports span by span: one clean export, one rejected span in a partial success.
    expect(results.every((r) => r.code === ExportResultCode.SUCCESS)).toBe(true);
    const usage = await getJson(`${exporter.httpUrl}/api/v1/usage/partial-user`);
    expect(usage.json.requests).toBe(1);
    const lines = await scrape(exporter.httpUrl);
    expect(lines.some((l) => l.startsWith('tokenmeter_rejected_spans_total{reason="'))).toBe(true);
  });
});
