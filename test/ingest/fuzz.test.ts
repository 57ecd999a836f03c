import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMetricsRequest, decodeTraceRequest, IngestError } from '../../src/ingest/index.js';
import { ExportTraceServiceRequest } from '../../src/ingest/otlp-proto.js';
import { decodeTraceRequestReference } from '../../src/ingest/trace-proto-reference.js';
import { walkTraceRequest } from '../../src/ingest/trace-proto-walker.js';
import { wellFormedHostileString } from './hostile-strings.js';

const OPTS = { maxDecompressedBytes: 1 << 20 };

// Random ExportTraceServiceRequests in protobufjs object form (official field names and types).
const anyValue: fc.Arbitrary<Record<string, unknown>> = fc.letrec<{ v: Record<string, unknown> }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ stringValue: wellFormedHostileString }),
    fc.record({ boolValue: fc.boolean() }),
    fc.record({ intValue: fc.oneof(fc.integer(), fc.constant(-1), fc.constant(2 ** 40)) }),
    fc.record({ doubleValue: fc.double() }),
    fc.record({ bytesValue: fc.uint8Array({ maxLength: 6 }) }),
    fc.constant({}),
    fc.record({ arrayValue: fc.record({ values: fc.array(tie('v'), { maxLength: 3 }) }) }),
    fc.record({
      kvlistValue: fc.record({ values: fc.array(fc.record({ key: fc.string({ maxLength: 5 }), value: tie('v') }), { maxLength: 3 }) }),
    }),
  ),
})).v;
const keyValues = fc.array(fc.record({ key: fc.oneof(fc.constantFrom('gen_ai.usage.input_tokens', 'user.id', 'a', '', '__proto__'), wellFormedHostileString), value: anyValue }), {
  maxLength: 4,
});
const spanArb = fc.record(
  {
    traceId: fc.oneof(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ maxLength: 20 })),
    spanId: fc.oneof(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ maxLength: 10 })),
    parentSpanId: fc.uint8Array({ maxLength: 8 }),
    name: wellFormedHostileString,
    kind: fc.integer({ min: 0, max: 5 }),
    startTimeUnixNano: fc.bigInt({ min: 0n, max: 2n ** 62n }).map((b) => b.toString()),
    endTimeUnixNano: fc.bigInt({ min: 0n, max: 2n ** 62n }).map((b) => b.toString()),
    attributes: keyValues,
    events: fc.array(fc.record({ name: fc.string({ maxLength: 4 }), attributes: keyValues }), { maxLength: 2 }),
    status: fc.record({ code: fc.integer({ min: 0, max: 2 }), message: wellFormedHostileString }),
  },
  { requiredKeys: ['traceId', 'spanId'] },
);
const requestArb = fc.record({
  resourceSpans: fc.array(
    fc.record({
      resource: fc.record({ attributes: keyValues }),
      scopeSpans: fc.array(
        fc.record({ scope: fc.record({ name: wellFormedHostileString, version: wellFormedHostileString }), spans: fc.array(spanArb, { maxLength: 3 }) }),
        { maxLength: 2 },
      ),
    }),
    { maxLength: 2 },
  ),
});

function encode(obj: Record<string, unknown>): Buffer {
  return Buffer.from(ExportTraceServiceRequest.encode(ExportTraceServiceRequest.fromObject(obj)).finish());
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };
function attempt(fn: () => unknown): Outcome {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

const mutation = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
);

function mutate(buf: Buffer, muts: { op: 'flip' | 'truncate' | 'insert'; at: number; byte?: number; bytes?: Uint8Array }[]): Buffer {
  let out = Buffer.from(buf);
  for (const m of muts) {
    if (out.length === 0) break;
    const at = m.at % out.length;
    if (m.op === 'flip') out[at] = m.byte as number;
    else if (m.op === 'truncate') out = out.subarray(0, at);
    else out = Buffer.concat([out.subarray(0, at), Buffer.from(m.bytes as Uint8Array), out.subarray(at)]);
  }
  return out;
}

describe('protobuf walker vs protobufjs reflection over the official definitions', () => {
  it('agree exactly on random valid requests', () => {
    fc.assert(
      fc.property(requestArb, (req) => {
        const buf = encode(req);
        expect(walkTraceRequest(buf)).toEqual(decodeTraceRequestReference(buf));
      }),
      { seed: 4318, numRuns: 600 },
    );
  });

  it('on mutated bodies: whatever protobufjs accepts, the walker accepts identically; failures are IngestError 400', () => {
    fc.assert(
      fc.property(requestArb, fc.array(mutation, { minLength: 1, maxLength: 3 }), (req, muts) => {
        const buf = mutate(encode(req), muts);
        const ref = attempt(() => decodeTraceRequestReference(buf));
        const got = attempt(() => decodeTraceRequest(buf, 'application/x-protobuf', undefined, OPTS));
        if (!got.ok) {
          expect(got.error).toBeInstanceOf(IngestError);
          expect((got.error as IngestError).status).toBe(400);
        }
        if (ref.ok) {
          expect(got.ok).toBe(true);
          if (got.ok) expect(got.value).toEqual(ref.value);
        }
      }),
      { seed: 9464, numRuns: 2000 },
    );
  });

  it('reject nesting beyond the recursion limit alike', () => {
    // Hand-encoded (protobufjs' encoder has the same limit): AnyValue{array_value{values: AnyValue{...}}}.
    const len = (tag: number, payload: Buffer): Buffer => {
      const n = payload.length;
      const varint: number[] = [];
      let v = n;
      do {
        varint.push((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        v >>>= 7;
      } while (v > 0);
      return Buffer.concat([Buffer.from([tag, ...varint]), payload]);
    };
    let results = '';
    for (let depth = 40; depth <= 52; depth++) {
      let any = len(0x0a, Buffer.from('x')); // AnyValue.string_value
      for (let i = 0; i < depth; i++) any = len(0x2a, len(0x0a, any));
      const kv = Buffer.concat([len(0x0a, Buffer.from('k')), len(0x12, any)]);
      const buf = len(0x0a, len(0x0a, len(0x0a, kv))); // ResourceSpans.resource.attributes
      const ref = attempt(() => decodeTraceRequestReference(buf));
      const got = attempt(() => walkTraceRequest(buf));
      expect(got.ok, `depth ${depth}`).toBe(ref.ok);
      if (got.ok && ref.ok) expect(got.value).toEqual(ref.value);
      results += got.ok ? 'a' : 'r';
    }
    // both accept the shallow ones and reject the deep ones
    expect(results).toMatch(/^a+r+$/);
  });
});

describe('decode never throws anything but a 4xx IngestError', () => {
  const contentTypes = ['application/x-protobuf', 'application/json', 'text/plain', undefined];
  const encodings = [undefined, 'gzip', 'identity', 'br'];
  it('on random and mutated bodies, both endpoints, both encodings', () => {
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.tuple(requestArb, fc.array(mutation, { maxLength: 2 })).map(([r, m]) => mutate(encode(r), m)),
      fc.json().map((j) => Buffer.from(j)),
      fc.tuple(requestArb, fc.boolean()).map(([r, gz]) => (gz ? gzipSync(encode(r)) : encode(r))),
    );
    fc.assert(
      fc.property(body, fc.constantFrom(...contentTypes), fc.constantFrom(...encodings), fc.boolean(), (buf, ct, ce, metrics) => {
        try {
          if (metrics) decodeMetricsRequest(buf, ct, ce, OPTS);
          else decodeTraceRequest(buf, ct, ce, OPTS);
        } catch (err) {
          expect(err).toBeInstanceOf(IngestError);
          expect([400, 413, 415]).toContain((err as IngestError).status);
        }
      }),
      { seed: 2024, numRuns: 3000 },
    );
  });
});
