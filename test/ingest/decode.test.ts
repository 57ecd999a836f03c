import { gzipSync } from 'node:zlib';
import { SpanKind } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { decodeTraceRequest, IngestError } from '../../src/ingest/index.js';
import { decodeTraceRequestReference } from '../../src/ingest/trace-proto-reference.js';
import { hrTimeToNanos, jsonBody, makeSpans, protobufBody } from './otel-spans.js';

const OPTS = { maxDecompressedBytes: 4 * 1024 * 1024 };
const PB = 'application/x-protobuf';
const JSON_CT = 'application/json; charset=utf-8';

function sampleSpans() {
  return makeSpans(
    [
      {
        name: 'chat gpt-4o',
        attributes: {
          'gen_ai.operation.name': 'chat',
          'gen_ai.provider.name': 'openai',
          'gen_ai.request.model': 'gpt-4o',
          'gen_ai.usage.input_tokens': 1200,
          'gen_ai.usage.output_tokens': 345,
          'gen_ai.request.temperature': 0.25,
          'gen_ai.request.stream': true,
          'gen_ai.response.finish_reasons': ['stop', 'length'],
          'user.id': 'user-ü-1',
          'big.int': 2 ** 40 + 3,
          negative: -17,
        },
      },
      { name: 'GET /health', kind: SpanKind.SERVER, attributes: { 'http.route': '/health' }, error: 'boom' },
    ],
    { 'service.name': 'svc', 'deployment.environment': 'test', 'host.cores': 2 },
  );
}

function expectMatchesSdk(decoded: ReturnType<typeof decodeTraceRequest>, spans: ReturnType<typeof makeSpans>): void {
  expect(decoded.spans).toHaveLength(spans.length);
  for (let i = 0; i < spans.length; i++) {
    const want = spans[i];
    const got = decoded.spans.find((s) => s.spanId === want.spanContext().spanId);
    expect(got, `span ${want.name}`).toBeDefined();
    if (got === undefined) continue;
    expect(got.traceId).toBe(want.spanContext().traceId);
    expect(got.name).toBe(want.name);
    expect(got.kind).toBe(want.kind + 1); // API SpanKind.INTERNAL=0 is OTLP SPAN_KIND_INTERNAL=1
    expect(got.startTimeUnixNano).toBe(hrTimeToNanos(want.startTime));
    expect(got.endTimeUnixNano).toBe(hrTimeToNanos(want.endTime));
    expect({ ...got.attributes }).toEqual(want.attributes);
    expect(got.statusCode).toBe(want.status.code);
    expect(got.statusMessage).toBe(want.status.message ?? '');
    expect({ ...got.resource }).toEqual(want.resource.attributes);
    expect(got.scope.name).toBe('tokenmeter-test');
    expect(got.scope.version).toBe('1.2.3');
    expect(got.invalidId).toBeUndefined();
  }
}

describe('decodeTraceRequest round-trips bodies made by the real OTel JS serializers', () => {
  const spans = sampleSpans();

  it('protobuf', () => {
    expectMatchesSdk(decodeTraceRequest(protobufBody(spans), PB, undefined, OPTS), spans);
  });

  it('protobuf, gzip', () => {
    expectMatchesSdk(decodeTraceRequest(gzipSync(protobufBody(spans)), PB, 'gzip', OPTS), spans);
  });

  it('JSON', () => {
    expectMatchesSdk(decodeTraceRequest(jsonBody(spans), JSON_CT, undefined, OPTS), spans);
  });

  it('JSON, gzip', () => {
    expectMatchesSdk(decodeTraceRequest(gzipSync(jsonBody(spans)), 'application/json', 'gzip', OPTS), spans);
  });

  it('the walker and protobufjs reflection over the official definitions agree', () => {
    const body = protobufBody(spans);
    const walked = decodeTraceRequest(body, PB, 'identity', OPTS);
    const reference = decodeTraceRequestReference(body);
    expect(walked.resourceSpansCount).toBe(1);
    expect(reference.resourceSpansCount).toBe(1);
    expect(walked.spans).toEqual(reference.spans);
  });
});

function expectIngestError(fn: () => unknown, status: number, messagePart?: RegExp): IngestError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(IngestError);
  const e = caught as IngestError;
  expect(e.status).toBe(status);
  if (messagePart !== undefined) expect(e.message).toMatch(messagePart);
  return e;
}

describe('decodeTraceRequest rejects bad requests with the right status', () => {
  const body = protobufBody(sampleSpans());

  it('415 for an unsupported or missing Content-Type', () => {
    expectIngestError(() => decodeTraceRequest(body, 'text/plain', undefined, OPTS), 415, /text\/plain/);
    expectIngestError(() => decodeTraceRequest(body, undefined, undefined, OPTS), 415, /missing Content-Type/);
    expectIngestError(() => decodeTraceRequest(body, 'application/grpc', undefined, OPTS), 415);
  });

  it('accepts Content-Type parameters and case', () => {
    expect(decodeTraceRequest(body, 'Application/X-Protobuf ; foo=bar', undefined, OPTS).spans).toHaveLength(2);
  });

  it('415 for an unsupported Content-Encoding', () => {
    expectIngestError(() => decodeTraceRequest(body, PB, 'br', OPTS), 415, /Content-Encoding "br"/);
    expectIngestError(() => decodeTraceRequest(body, PB, 'deflate', OPTS), 415);
  });

  it('400 for a truncated protobuf body', () => {
    expectIngestError(() => decodeTraceRequest(body.subarray(0, body.length - 5), PB, undefined, OPTS), 400, /ExportTraceServiceRequest/);
  });

  it('400 for an invalid wire type', () => {
    // field 1, wire type 7 (does not exist)
    expectIngestError(() => decodeTraceRequest(Buffer.from([0x0f, 0x00]), PB, undefined, OPTS), 400, /wire type 7/);
    // field 0
    expectIngestError(() => decodeTraceRequest(Buffer.from([0x02, 0x00]), PB, undefined, OPTS), 400, /field number 0/);
  });

  it('skips a known field with the wrong wire type, as proto3 parsers do', () => {
    // resource_spans (field 1) sent as a varint: skipped as unknown, like protobufjs does
    const decoded = decodeTraceRequest(Buffer.from([0x08, 0x05]), PB, undefined, OPTS);
    expect(decoded.spans).toEqual([]);
    expect(decodeTraceRequestReference(Buffer.from([0x08, 0x05])).spans).toEqual([]);
  });

  it('400 for a corrupt or truncated gzip body', () => {
    const gz = gzipSync(body);
    expectIngestError(() => decodeTraceRequest(gz.subarray(0, gz.length - 10), PB, 'gzip', OPTS), 400, /gzip/);
    expectIngestError(() => decodeTraceRequest(body, PB, 'gzip', OPTS), 400, /gzip/);
  });

  it('400 for malformed JSON and JSON of the wrong shape, naming the field', () => {
    expectIngestError(() => decodeTraceRequest(Buffer.from('{"resourceSpans": ['), JSON_CT, undefined, OPTS), 400, /invalid JSON/);
    expectIngestError(() => decodeTraceRequest(Buffer.from('[]'), JSON_CT, undefined, OPTS), 400, /\(root\): expected an object/);
    expectIngestError(
      () => decodeTraceRequest(Buffer.from('{"resourceSpans": {}}'), JSON_CT, undefined, OPTS),
      400,
      /resourceSpans: expected an array/,
    );
    const bad = {
      resourceSpans: [
        { scopeSpans: [{ spans: [{ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), attributes: [{ key: 'n', value: { intValue: 'x1' } }] }] }] },
      ],
    };
    expectIngestError(
      () => decodeTraceRequest(Buffer.from(JSON.stringify(bad)), JSON_CT, undefined, OPTS),
      400,
      /resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.attributes\[0\]\.value\.intValue: expected a 64-bit integer/,
    );
  });

  it('an invalid id rejects that span only (JSON hex ids)', () => {
    const mk = (traceId: unknown, spanId: unknown) => ({ traceId, spanId, name: 'x' });
    const req = {
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                mk('0123456789abcdef0123456789ABCDEF', '0123456789abcdef'),
                mk('zz23456789abcdef0123456789abcdef', '0123456789abcdef'),
                mk('0123456789abcdef', '0123456789abcdef'),
                mk('0123456789abcdef0123456789abcdef', '00000000000000000'),
                mk('00000000000000000000000000000000', '0123456789abcdef'),
                // base64 of 16 bytes (a common mistake): not hex
                mk('ASNFZ4mrze8BI0VniavN7w==', '0123456789abcdef'),
              ],
            },
          ],
        },
      ],
    };
    const decoded = decodeTraceRequest(Buffer.from(JSON.stringify(req)), JSON_CT, undefined, OPTS);
    expect(decoded.spans.map((s) => s.invalidId)).toEqual([
      undefined,
      'trace_id is not a hex string of 32 characters',
      'trace_id has 8 bytes, expected 16',
      'span_id is not a hex string of 16 characters',
      'trace_id is all zeroes',
      'trace_id is not a hex string of 32 characters',
    ]);
    expect(decoded.spans[0].traceId).toBe('0123456789abcdef0123456789abcdef');
  });

  it('an invalid id rejects that span only (protobuf bytes ids)', async () => {
    const { ExportTraceServiceRequest } = await import('../../src/ingest/otlp-proto.js');
    const msg = ExportTraceServiceRequest.fromObject({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                { traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2), name: 'ok' },
                { traceId: Buffer.alloc(15, 1), spanId: Buffer.alloc(8, 2), name: 'short trace id' },
                { traceId: Buffer.alloc(16, 1), name: 'no span id' },
              ],
            },
          ],
        },
      ],
    });
    const buf = Buffer.from(ExportTraceServiceRequest.encode(msg).finish());
    const decoded = decodeTraceRequest(buf, PB, undefined, OPTS);
    expect(decoded.spans.map((s) => [s.name, s.invalidId])).toEqual([
      ['ok', undefined],
      ['short trace id', 'trace_id has 15 bytes, expected 16'],
      ['no span id', 'span_id has 0 bytes, expected 8'],
    ]);
    expect(decoded.spans[0].traceId).toBe('01'.repeat(16));
    expect(decoded.spans[0].spanId).toBe('02'.repeat(8));
  });

  it('413 when the identity body is over the limit', () => {
    expectIngestError(() => decodeTraceRequest(body, PB, undefined, { maxDecompressedBytes: 100 }), 413, /limit of 100 bytes/);
  });

  it('413 for a gzip bomb, without inflating it', () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024)); // 64 MiB of zeroes in ~64 KiB
    expect(bomb.length).toBeLessThan(100 * 1024);
    expectIngestError(() => decodeTraceRequest(bomb, PB, 'gzip', { maxDecompressedBytes: 1024 * 1024 }), 413, /gzip/);
    expectIngestError(() => decodeTraceRequest(gzipSync(body), PB, 'gzip', { maxDecompressedBytes: body.length - 1 }), 413);
    expect(decodeTraceRequest(gzipSync(body), PB, 'gzip', { maxDecompressedBytes: body.length }).spans).toHaveLength(2);
  });

  it('400 for attribute values nested deeper than the recursion limit, in both encodings', () => {
    // arrayValue { values: [ arrayValue { ... } ] } nested 120 deep
    let v: Record<string, unknown> = { stringValue: 'leaf' };
    for (let i = 0; i < 120; i++) v = { arrayValue: { values: [v] } };
    const req = {
      resourceSpans: [
        { scopeSpans: [{ spans: [{ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), attributes: [{ key: 'deep', value: v }] }] }] },
      ],
    };
    expectIngestError(() => decodeTraceRequest(Buffer.from(JSON.stringify(req)), JSON_CT, undefined, OPTS), 400, /nested deeper/);
  });
});
