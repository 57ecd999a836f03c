import { connect } from 'node:net';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import protobuf from 'protobufjs';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeExportResponse } from '../../src/exporter/otlp-response.js';
import { makeSpans, protobufBody } from '../ingest/otel-spans.js';
import { getJson, gzip, httpRequest, otlpJson, postOtlp, scrape, startTestExporter, type TestExporter } from './harness.js';

const running: TestExporter[] = [];
async function start(...args: Parameters<typeof startTestExporter>): Promise<TestExporter> {
  const e = await startTestExporter(...args);
  running.push(e);
  return e;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});

const ExportTraceServiceResponse = protobuf.parse(`
syntax = "proto3";
message ExportTracePartialSuccess { int64 rejected_spans = 1; string error_message = 2; }
message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
message Status { int32 code = 1; string message = 2; }
`).root;

function sample(lines: string[], prefix: string): string | undefined {
  return lines.find((l) => l.startsWith(prefix + ' '));
}

describe('OTLP/HTTP receiver', () => {
  it('accepts OTLP/JSON, answers an empty ExportTraceServiceResponse, and prices exactly', async () => {
    const e = await start();
    const res = await postOtlp(e.otlpUrl, otlpJson([{ spanId: '00f067aa0ba902b7', user: 'alice', plan: 'pro', model: 'gpt-4o', input: 1000, output: 500 }]));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    expect(JSON.parse(res.body.toString())).toEqual({});
    const usage = await getJson(`${e.httpUrl}/api/v1/usage/alice`);
    expect(usage.status).toBe(200);
    expect(usage.json.cost_usd).toBe('0.0075');
    expect(usage.json.tokens).toEqual({ input: 1000, cache_read: 0, cache_write: 0, output: 500, reasoning: 0, total: 1500 });
    expect(usage.json.plan).toBe('pro');
  });

  it('accepts gzip and answers protobuf requests in protobuf', async () => {
    const e = await start();
    const ok = await postOtlp(e.otlpUrl, gzip(otlpJson([{ spanId: '00f067aa0ba902b8', user: 'bob', model: 'gpt-4o', input: 10, output: 1 }])), 'application/json', {
      'content-encoding': 'gzip',
    });
    expect(ok.status).toBe(200);
    const bad = await postOtlp(e.otlpUrl, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), 'application/x-protobuf');
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toBe('application/x-protobuf');
    const status = ExportTraceServiceResponse.lookupType('Status').decode(bad.body) as unknown as { code: number; message: string };
    expect(status.code).toBe(3);
    expect(status.message.length).toBeGreaterThan(0);
  });

  it('reports implausible spans through partial success (JSON and protobuf encodings of the response)', async () => {
    const e = await start();
    const body = otlpJson([
      { spanId: '1111111111111111', user: 'carol', model: 'gpt-4o', input: 100, output: 10 },
      { spanId: '2222222222222222', user: 'carol', model: 'gpt-4o', input: -5, output: 10 },
    ]);
    const res = await postOtlp(e.otlpUrl, body);
    expect(res.status).toBe(200);
    const json = JSON.parse(res.body.toString());
    expect(json.partialSuccess.rejectedSpans).toBe('1');
    expect(json.partialSuccess.errorMessage).toMatch(/1 span\(s\) rejected/);
    const usage = await getJson(`${e.httpUrl}/api/v1/usage/carol`);
    expect(usage.json.requests).toBe(1);
    const lines = await scrape(e.httpUrl);
    expect(lines.some((l) => /^tokenmeter_rejected_spans_total\{reason="[a-z_]+"\} 1$/.test(l))).toBe(true);
    expect(sample(lines, 'tokenmeter_ingested_spans_total{outcome="rejected"}')).toBe('tokenmeter_ingested_spans_total{outcome="rejected"} 1');

    const pb = encodeExportResponse('traces', 'protobuf', { rejected: 3, errorMessage: 'three bad' });
    expect(ExportTraceServiceResponse.lookupType('ExportTraceServiceResponse').toObject(ExportTraceServiceResponse.lookupType('ExportTraceServiceResponse').decode(pb), { longs: String })).toEqual({
      partialSuccess: { rejectedSpans: '3', errorMessage: 'three bad' },
    });
  });

  it('answers a protobuf request with a protobuf ExportTraceServiceResponse (partial_success read by the real OTel deserializer)', async () => {
    const e = await start();
    const genAi = (user: string, input: number) => ({
      name: 'chat gpt-4o',
      attributes: {
        'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o',
        'gen_ai.usage.input_tokens': input, 'gen_ai.usage.output_tokens': 10, 'user.id': user,
      },
    });
    const ok = await postOtlp(e.otlpUrl, protobufBody(makeSpans([genAi('pb-user', 100)])), 'application/x-protobuf');
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toBe('application/x-protobuf');
    expect(ok.body.length).toBe(0); // an empty message: full success
    const partial = await postOtlp(e.otlpUrl, gzip(protobufBody(makeSpans([genAi('pb-user', 200), genAi('pb-user', -1), genAi('pb-user', Number.NaN)]))), 'application/x-protobuf', { 'content-encoding': 'gzip' });
    expect(partial.status).toBe(200);
    expect(partial.headers['content-type']).toBe('application/x-protobuf');
    const response = ProtobufTraceSerializer.deserializeResponse(new Uint8Array(partial.body)) as { partialSuccess?: { rejectedSpans?: unknown; errorMessage?: string } };
    expect(Number(response.partialSuccess?.rejectedSpans)).toBe(2);
    expect(response.partialSuccess?.errorMessage).toMatch(/^2 span\(s\) rejected: /);
    const usage = await getJson(`${e.httpUrl}/api/v1/usage/pb-user`);
    expect(usage.json.requests).toBe(2);
    expect(usage.json.tokens.input).toBe(300);
  });

  it('415 for a wrong content type, 405 for GET, 404 elsewhere', async () => {
    const e = await start();
    expect((await postOtlp(e.otlpUrl, 'hello', 'text/plain')).status).toBe(415);
    expect((await postOtlp(e.otlpUrl, otlpJson([]), 'application/json', { 'content-encoding': 'br' })).status).toBe(415);
    expect((await httpRequest(`${e.otlpUrl}/v1/traces`)).status).toBe(405);
    expect((await httpRequest(`${e.otlpUrl}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(404);
    const lines = await scrape(e.httpUrl);
    expect(sample(lines, 'tokenmeter_rejected_requests_total{reason="unsupported_media_type"}')).toBe('tokenmeter_rejected_requests_total{reason="unsupported_media_type"} 2');
  });

  it('413 from Content-Length before reading, and while streaming once the limit is crossed', async () => {
    const e = await start({ config: { limits: { max_request_bytes: 1024 } } });
    const declared = await postOtlp(e.otlpUrl, Buffer.alloc(2048, 0x20), 'application/json');
    expect(declared.status).toBe(413);

    // Chunked upload with no Content-Length: the server answers 413 once 1 KiB has arrived, without waiting for the end.
    const { port } = new URL(e.otlpUrl);
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(port), '127.0.0.1');
      let got = '';
      sock.on('data', (d) => (got += d.toString()));
      sock.on('close', () => resolve(got));
      sock.on('error', () => resolve(got));
      sock.write('POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = 'a'.repeat(512);
      let sent = 0;
      const timer = setInterval(() => {
        if (sock.destroyed || sent > 200) {
          clearInterval(timer);
          if (!sock.destroyed) reject(new Error('server kept reading'));
          return;
        }
        sock.write(`${(512).toString(16)}\r\n${chunk}\r\n`);
        sent++;
      }, 5);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);

    const gzBomb = gzip(Buffer.alloc(10 * 1024 * 1024, 0x20));
    expect(gzBomb.length).toBeLessThan(1024 * 1024);
    const e2 = await start({ config: { limits: { max_decompressed_bytes: 4096 } } });
    expect((await postOtlp(e2.otlpUrl, gzBomb, 'application/json', { 'content-encoding': 'gzip' })).status).toBe(413);
    expect((await httpRequest(`${e2.httpUrl}/healthz`)).status).toBe(200);
  });

  it('401 without the configured ingest bearer token', async () => {
    const e = await start({ config: { auth: { ingest_token: 'ingest-token-0123456789' } } });
    const body = otlpJson([{ spanId: '3333333333333333', user: 'dave', model: 'gpt-4o', input: 1, output: 1 }]);
    expect((await postOtlp(e.otlpUrl, body)).status).toBe(401);
    expect((await postOtlp(e.otlpUrl, body, 'application/json', { authorization: 'Bearer ingest-token-012345678' })).status).toBe(401);
    expect((await postOtlp(e.otlpUrl, body, 'application/json', { authorization: 'Basic aW5nZXN0' })).status).toBe(401);
    expect(e.ledger.records.size).toBe(0);
    expect((await postOtlp(e.otlpUrl, body, 'application/json', { authorization: 'Bearer ingest-token-0123456789' })).status).toBe(200);
    expect(e.ledger.records.size).toBe(1);
  });

  it('counts a batch sent twice once (duplicates are counted as such)', async () => {
    const e = await start();
    const body = otlpJson([
      { spanId: '4444444444444444', user: 'erin', model: 'gpt-4o', input: 1000, output: 0 },
      { spanId: '5555555555555555', user: 'erin', model: 'gpt-4o', input: 1000, output: 0 },
    ]);
    expect((await postOtlp(e.otlpUrl, body)).status).toBe(200);
    expect((await postOtlp(e.otlpUrl, body)).status).toBe(200);
    const usage = await getJson(`${e.httpUrl}/api/v1/usage/erin`);
    expect(usage.json.requests).toBe(2);
    expect(usage.json.cost_usd).toBe('0.005');
    const lines = await scrape(e.httpUrl);
    expect(sample(lines, 'tokenmeter_ingested_spans_total{outcome="priced"}')).toBe('tokenmeter_ingested_spans_total{outcome="priced"} 2');
    expect(sample(lines, 'tokenmeter_ingested_spans_total{outcome="duplicate"}')).toBe('tokenmeter_ingested_spans_total{outcome="duplicate"} 2');
    expect(sample(lines, 'tokenmeter_tokens_total{plan="free",provider="openai",model="gpt-4o",type="input"}')).toBe(
      'tokenmeter_tokens_total{plan="free",provider="openai",model="gpt-4o",type="input"} 2000',
    );
  });

  it('503 with Retry-After while the ledger is down, nothing counted; the retry is counted exactly once', async () => {
    const e = await start({ config: { ledger: { retry_after: '7s' } } });
    const body = otlpJson([{ spanId: '6666666666666666', user: 'frank', model: 'gpt-4o', input: 1000, output: 100 }]);
    e.ledger.down = true;
    const r1 = await postOtlp(e.otlpUrl, body);
    expect(r1.status).toBe(503);
    expect(r1.headers['retry-after']).toBe('7');
    const during = await scrape(e.httpUrl);
    expect(sample(during, 'tokenmeter_ingested_spans_total{outcome="priced"}')).toBe('tokenmeter_ingested_spans_total{outcome="priced"} 0');
    expect(sample(during, 'tokenmeter_ledger_up')).toBe('tokenmeter_ledger_up 0');
    expect((await httpRequest(`${e.httpUrl}/readyz`)).status).toBe(503);
    expect((await httpRequest(`${e.httpUrl}/healthz`)).status).toBe(200);
    e.ledger.down = false;
    expect((await postOtlp(e.otlpUrl, body)).status).toBe(200);
    expect((await httpRequest(`${e.httpUrl}/readyz`)).status).toBe(200);
    const after = await scrape(e.httpUrl);
    expect(sample(after, 'tokenmeter_ingested_spans_total{outcome="priced"}')).toBe('tokenmeter_ingested_spans_total{outcome="priced"} 1');
    expect(sample(after, 'tokenmeter_period_requests{user="frank",plan="free"}')).toBe('tokenmeter_period_requests{user="frank",plan="free"} 1');
    expect(sample(after, 'tokenmeter_cost_usd_total{plan="free",provider="openai",model="gpt-4o",type="output"}')).toBe(
      'tokenmeter_cost_usd_total{plan="free",provider="openai",model="gpt-4o",type="output"} 0.001',
    );
  });

  it('a record the ledger would refuse is rejected alone (partial success, reason invalid_record); the rest is committed', async () => {
    // An extraction bug simulated: extraction lets a NUL through; the pipeline's per-record ledger check catches it.
    const { extractUsage } = await import('../../src/ingest/index.js');
    const e = await start({
      extract: (span) => {
        const r = extractUsage(span);
        if (r.kind === 'usage' && r.record.userId === 'poisoned') r.record.userId = 'bad\u0000id';
        return r;
      },
    });
    const res = await postOtlp(
      e.otlpUrl,
      otlpJson([
        { spanId: 'c000000000000001', user: 'carol', plan: 'pro', model: 'gpt-4o', input: 1000, output: 500 },
        { spanId: 'c000000000000002', user: 'poisoned', plan: 'pro', model: 'gpt-4o', input: 1000, output: 500 },
        { spanId: 'c000000000000003', user: 'carol', plan: 'pro', model: 'gpt-4o', input: 2000, output: 1000 },
      ]),
    );
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body.toString());
    expect(body.partialSuccess.rejectedSpans).toBe('1');
    expect(body.partialSuccess.errorMessage).toContain('userId must not contain NUL');
    const usage = await getJson(`${e.httpUrl}/api/v1/usage/carol`);
    expect([usage.json.requests, usage.json.tokens.total, usage.json.cost_usd]).toEqual([2, 4500, '0.0225']);
    const m = await scrape(e.httpUrl);
    expect(sample(m, 'tokenmeter_rejected_spans_total{reason="invalid_record"}')).toBe('tokenmeter_rejected_spans_total{reason="invalid_record"} 1');
  });

  it("500 only for the exporter's own fault (a ledger error that is not unavailability), counted as internal_error", async () => {
    const e = await start();
    const m0 = await scrape(e.httpUrl);
    expect(sample(m0, 'tokenmeter_rejected_requests_total{reason="internal_error"}')).toBe('tokenmeter_rejected_requests_total{reason="internal_error"} 0');
    e.ledger.commit = () => Promise.reject(new Error('a bug in the ledger'));
    const res = await postOtlp(e.otlpUrl, otlpJson([{ spanId: 'c000000000000004', user: 'dave', model: 'gpt-4o', input: 10, output: 5 }]));
    expect(res.status).toBe(500);
    const m = await scrape(e.httpUrl);
    expect(sample(m, 'tokenmeter_rejected_requests_total{reason="internal_error"}')).toBe('tokenmeter_rejected_requests_total{reason="internal_error"} 1');
  });

  it('accepts /v1/metrics without pricing it', async () => {
    const e = await start();
    const res = await httpRequest(`${e.otlpUrl}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"resourceMetrics":[]}' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({});
    expect((await httpRequest(`${e.otlpUrl}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"resourceMetrics":' })).status).toBe(400);
    expect(e.ledger.commits).toBe(0);
  });

  it('finishes a commit in flight on close, then stops accepting', async () => {
    const e = await startTestExporter();
    let release!: () => void;
    e.ledger.gate = new Promise<void>((r) => (release = r));
    const pending = postOtlp(e.otlpUrl, otlpJson([{ spanId: '7777777777777777', user: 'gina', model: 'gpt-4o', input: 5, output: 5 }]));
    await new Promise((r) => setTimeout(r, 50));
    const closing = e.close();
    setTimeout(release, 50);
    expect((await pending).status).toBe(200);
    await closing;
    expect(e.ledger.records.size).toBe(1);
    expect(e.ledger.closed).toBe(true);
    await expect(postOtlp(e.otlpUrl, otlpJson([]))).rejects.toThrow();
  });
});
