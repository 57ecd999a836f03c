import { Agent, request } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateRecord } from '../../src/ledger/ledger.js';
import { RESERVED_USER_IDS, userIdProblem } from '../../src/usage/record-text.js';
import { hostileString } from '../ingest/hostile-strings.js';
import { gzip, httpRequest, otlpJson, scrape, startTestExporter, type TestExporter } from './harness.js';

/**
 * Malformed, truncated and random OTLP bodies (seeded, a few thousand cases): every one gets a 2xx with partial
 * success or a 4xx, never a 5xx or a dropped connection, nothing malformed reaches the ledger, and the exporter
 * stays healthy.
 */
let e: TestExporter;
const agent = new Agent({ keepAlive: true, maxSockets: 4 });
beforeAll(async () => {
  e = await startTestExporter({ config: { limits: { max_request_bytes: 64 * 1024 } } });
});
afterAll(async () => {
  agent.destroy();
  await e.close();
});

function post(body: Buffer, contentType: string, encoding?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': contentType, 'content-length': body.length };
    if (encoding) headers['content-encoding'] = encoding;
    const req = request(`${e.otlpUrl}/v1/traces`, { method: 'POST', headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const validJson = otlpJson([
  { spanId: 'f000000000000001', user: 'fuzz', model: 'gpt-4o', input: 10, output: 5 },
  { spanId: 'f000000000000002', user: 'fuzz', model: 'gpt-4o', input: 20, output: 5, extra: { 'gen_ai.usage.reasoning.output_tokens': 2 } },
]);

function validProtobuf(): Buffer {
  // A minimal hand-assembled ExportTraceServiceRequest (one span: ids, name, times), so that mutations hit
  // every wire type; bodies from the real OTel serializer are exercised in the e2e tests.
  const span = Buffer.concat([
    Buffer.from([0x0a, 0x10]), Buffer.from('0af7651916cd43dd8448eb211c80319c', 'hex'),
    Buffer.from([0x12, 0x08]), Buffer.from('00f067aa0ba902b7', 'hex'),
    Buffer.from([0x2a, 0x04]), Buffer.from('chat'),
    Buffer.from([0x39]), Buffer.alloc(8, 1),
    Buffer.from([0x41]), Buffer.alloc(8, 2),
  ]);
  const scopeSpans = Buffer.concat([Buffer.from([0x12, span.length]), span]);
  const resourceSpans = Buffer.concat([Buffer.from([0x12, scopeSpans.length]), scopeSpans]);
  return Buffer.concat([Buffer.from([0x0a, resourceSpans.length]), resourceSpans]);
}

const acceptable = (s: number) => s === 200 || s === 400 || s === 413 || s === 415;

describe('hostile OTLP bodies', () => {
  it('random bytes, truncations and mutations of JSON and protobuf bodies never crash the exporter', async () => {
    const pb = validProtobuf();
    const statuses = new Map<number, number>();
    const count = (s: number) => statuses.set(s, (statuses.get(s) ?? 0) + 1);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 512 }).map((b) => ({ body: Buffer.from(b), type: 'application/x-protobuf' })),
          fc.uint8Array({ maxLength: 512 }).map((b) => ({ body: Buffer.from(b), type: 'application/json' })),
          fc.nat({ max: validJson.length }).map((n) => ({ body: validJson.subarray(0, n), type: 'application/json' })),
          fc.nat({ max: pb.length }).map((n) => ({ body: pb.subarray(0, n), type: 'application/x-protobuf' })),
          fc.tuple(fc.nat({ max: pb.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([i, v]) => {
            const b = Buffer.from(pb);
            b[i] = v;
            return { body: b, type: 'application/x-protobuf' };
          }),
          fc.tuple(fc.nat({ max: validJson.length - 1 }), fc.integer({ min: 32, max: 126 })).map(([i, v]) => {
            const b = Buffer.from(validJson);
            b[i] = v;
            return { body: b, type: 'application/json' };
          }),
          fc.jsonValue({ maxDepth: 4 }).map((v) => ({ body: Buffer.from(JSON.stringify(v) ?? 'null'), type: 'application/json' })),
          fc.uint8Array({ maxLength: 256 }).map((b) => ({ body: Buffer.from(b), type: 'application/json', encoding: 'gzip' })),
          fc.nat({ max: 200 }).map((n) => ({ body: gzip(validJson).subarray(0, n), type: 'application/json', encoding: 'gzip' })),
        ),
        async ({ body, type, encoding }: { body: Buffer; type: string; encoding?: string }) => {
          const status = await post(body, type, encoding);
          count(status);
          return acceptable(status);
        },
      ),
      { seed: 20260401, numRuns: 2500 },
    );
    expect((await httpRequest(`${e.httpUrl}/healthz`)).status).toBe(200);
    expect((await httpRequest(`${e.httpUrl}/readyz`)).status).toBe(200);
    // The generator did produce both outcomes (not all 400s, not all 200s).
    expect(statuses.get(400) ?? 0).toBeGreaterThan(100);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(10);
    // Whatever was accepted was a real, plausible span: every committed record has valid ids and usage.
    for (const r of e.ledger.records.values()) {
      expect(r.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(r.spanId).toMatch(/^[0-9a-f]{16}$/);
      for (const n of Object.values(r.usage)) expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
    }
    const lines = await scrape(e.httpUrl);
    const malformed = lines.find((l) => l.startsWith('tokenmeter_rejected_requests_total{reason="malformed"}'));
    expect(Number(malformed?.split(' ')[1])).toBe(statuses.get(400));
  });

  it('deeply nested JSON and huge attribute values are refused or bounded, not a stack overflow', async () => {
    const deep = Buffer.from(`{"resourceSpans":[{"resource":{"attributes":[{"key":"a","value":${'{"kvlistValue":{"values":[{"key":"b","value":'.repeat(5000)}{}${'}]}}'.repeat(5000)}}]}}]}`);
    expect(acceptable(await post(deep, 'application/json'))).toBe(true);
    const oversize = Buffer.alloc(65 * 1024, 0x20);
    expect(await post(oversize, 'application/json')).toBe(413);
    expect((await httpRequest(`${e.httpUrl}/healthz`)).status).toBe(200);
  });

  it('hostile strings (NUL, controls, bidi, lone surrogates, reserved ids, over-long) in every string field: never a 5xx; only the hostile span is rejected', async () => {
    let n = 0;
    const good = { input: 0, requests: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          user: hostileString,
          plan: hostileString,
          feature: hostileString,
          model: hostileString,
          provider: hostileString,
          operation: hostileString,
          tier: hostileString,
          name: hostileString,
          key: hostileString,
          value: hostileString,
          json: fc.boolean(),
        }),
        async (h) => {
          n++;
          const hostile = otlpJson([
            {
              spanId: `e${n.toString(16).padStart(15, '0')}`,
              user: h.user,
              plan: h.plan,
              feature: h.feature,
              model: h.model,
              provider: h.provider,
              input: 7,
              output: 3,
              extra: { 'gen_ai.operation.name': h.operation, 'openai.response.service_tier': h.tier, [h.key]: h.value },
            },
            // A plain span in the same request: always committed.
            { spanId: `d${n.toString(16).padStart(15, '0')}`, user: 'steady', model: 'gpt-4o', input: 11, output: 0 },
          ]);
          good.input += 11;
          good.requests += 1;
          const status = await post(hostile, 'application/json');
          return status === 200;
        },
      ),
      { seed: 140014, numRuns: 300 },
    );
    const steady = [...e.ledger.records.values()].filter((r) => r.userId === 'steady' && r.spanId.startsWith('d'));
    expect(steady.length).toBe(good.requests);
    expect(steady.reduce((s, r) => s + r.usage.input, 0)).toBe(good.input);
    for (const r of e.ledger.records.values()) {
      expect(() => validateRecord(r, 0)).not.toThrow();
      expect(userIdProblem(r.userId) === undefined || r.userId === 'anonymous').toBe(true);
      if (r.spanId.startsWith('e')) expect(RESERVED_USER_IDS.has(r.userId) && r.userId !== 'anonymous').toBe(false);
    }
    const lines = await scrape(e.httpUrl);
    expect(lines.find((l) => l.startsWith('tokenmeter_rejected_requests_total{reason="internal_error"}'))).toBe('tokenmeter_rejected_requests_total{reason="internal_error"} 0');
  });
});
