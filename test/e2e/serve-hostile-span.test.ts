/**
 * Issue 14, point 1: one span the ledger would refuse (a NUL in its user id, model or feature) used to fail the
 * whole OTLP request with a 500, which OTel exporters do not retry: 0 of 100 calls counted. Now it is rejected
 * alone through partial success, counted by reason, and the other 99 are billed exactly. Driven by the stock OTel
 * SDK (BatchSpanProcessor + OTLP/protobuf exporter) against the real exporter (embedded ledger, price book).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpanKind } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BasicTracerProvider, BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Decimal } from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExporter, type RunningExporter } from '../../src/exporter/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { getJson, scrape } from '../exporter/harness.js';

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

let exporter: RunningExporter;
beforeAll(async () => {
  exporter = await startExporter({ storage: join(mkdtempSync(join(tmpdir(), 'tm-nul-')), 'ledger'), host: '127.0.0.1', otlpPort: 0, httpPort: 0, log: () => {} });
});
afterAll(async () => {
  await exporter?.close();
});

const book = PriceBook.load();

/** Sends 100 calls through the stock SDK, call `bad` carrying `poison` in `field`; returns the expected totals of the others. */
async function send(user: (i: number) => string, poison: { at: number; field: 'user.id' | 'gen_ai.response.model' | 'tokenmeter.feature'; value: string }) {
  const rec = new Recording(new OTLPTraceExporter({ url: `${exporter.otlpUrl}/v1/traces` }));
  const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(rec, { maxExportBatchSize: 512, scheduledDelayMillis: 60_000 })] });
  const tracer = provider.getTracer('app');
  let tokens = 0;
  let cost = new Decimal(0);
  for (let i = 0; i < 100; i++) {
    const input = 1000 + i;
    const output = 10 + i;
    const attributes: Record<string, string | number> = {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini',
      'gen_ai.usage.input_tokens': input,
      'gen_ai.usage.output_tokens': output,
      'user.id': user(i),
      'tokenmeter.plan': 'pro',
      'tokenmeter.feature': 'chat',
    };
    if (i === poison.at) attributes[poison.field] = poison.value;
    else {
      tokens += input + output;
      const p = book.priceStrings({ provider: 'openai', model: 'gpt-4o-mini', usage: { input, cache_read: 0, cache_write: 0, output, reasoning: 0 }, at: new Date() });
      if (!p.priced) throw new Error('gpt-4o-mini must be priced');
      cost = cost.plus(p.totalUsd);
    }
    tracer.startSpan('chat gpt-4o-mini', { kind: SpanKind.CLIENT, attributes }).end();
  }
  await provider.forceFlush();
  await provider.shutdown();
  return { results: rec.results, tokens, cost: cost.toFixed() };
}

interface UserJson {
  tokens: { total: number };
  requests: number;
  cost_usd: string;
}

describe('one hostile span does not drop the batch (stock SDK, BatchSpanProcessor, OTLP/protobuf)', () => {
  it('100 calls, one with a NUL in its user id: one request, accepted; the other 99 billed exactly; the one counted as rejected', async () => {
    const { results, tokens, cost } = await send(() => 'nul-victim', { at: 37, field: 'user.id', value: 'mallory\u0000' });
    expect(results.map((r) => r.code)).toEqual([ExportResultCode.SUCCESS]);
    const u: { json: UserJson } = await getJson(`${exporter.httpUrl}/api/v1/usage/nul-victim`);
    expect(u.json.requests).toBe(99);
    expect(u.json.tokens.total).toBe(tokens);
    expect(u.json.cost_usd).toBe(cost);
    const m = (await scrape(exporter.httpUrl)).join('\n');
    expect(m).toContain('tokenmeter_rejected_spans_total{reason="invalid_attribute"} 1');
    expect(m).toMatch(/tokenmeter_ingested_spans_total\{outcome="priced"\} 99\b/);
    expect(m).toContain('tokenmeter_rejected_requests_total{reason="internal_error"} 0');
  });

  it('a NUL in the model or the feature: likewise only that span is rejected', async () => {
    for (const [n, field] of (['gen_ai.response.model', 'tokenmeter.feature'] as const).entries()) {
      const user = `nul-${n}`;
      const { results, tokens, cost } = await send(() => user, { at: 0, field, value: 'x\u0000y' });
      expect(results.map((r) => r.code)).toEqual([ExportResultCode.SUCCESS]);
      const u: { json: UserJson } = await getJson(`${exporter.httpUrl}/api/v1/usage/${user}`);
      expect([u.json.requests, u.json.tokens.total, u.json.cost_usd]).toEqual([99, tokens, cost]);
    }
    const m = (await scrape(exporter.httpUrl)).join('\n');
    expect(m).toContain('tokenmeter_rejected_spans_total{reason="invalid_attribute"} 3');
    expect(m).toContain('tokenmeter_rejected_requests_total{reason="internal_error"} 0');
  });
});
