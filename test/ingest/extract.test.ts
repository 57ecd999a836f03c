import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Attributes } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { decodedSpan } from './decoded-span.js';
import { MAX_PLAUSIBLE_TOKENS } from '../../src/usage/index.js';
import { decodeTraceRequest, extractUsage, type DecodedSpan, type ExtractResult } from '../../src/ingest/index.js';
import type { AttributeValue } from '../../src/ingest/types.js';
import { jsonBody, makeSpans, protobufBody } from './otel-spans.js';

interface FixtureSpan {
  name: string;
  scope?: string;
  attributes: Attributes;
  error?: string;
  expect: Record<string, unknown>;
}
interface Fixture {
  convention: string;
  source: string;
  scope?: string;
  spans: FixtureSpan[];
}

const FIXTURE_DIR = join(import.meta.dirname, '..', 'fixtures', 'otlp');
const fixtures: Fixture[] = readdirSync(FIXTURE_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(FIXTURE_DIR, f), 'utf8')) as Fixture);

function summarize(r: ExtractResult): Record<string, unknown> {
  if (r.kind !== 'usage') return { kind: r.kind };
  const rec = r.record;
  const out: Record<string, unknown> = {
    kind: 'usage',
    source: rec.source,
    provider: rec.provider,
    model: rec.rawModel,
    operation: rec.operation,
    usage: rec.usage,
    user: rec.userId,
    estimated: rec.estimated,
    outcome: rec.outcome,
  };
  if (rec.planFromSpan !== undefined) out.plan = rec.planFromSpan;
  if (rec.feature !== undefined) out.feature = rec.feature;
  if (rec.serviceTier !== undefined) out.serviceTier = rec.serviceTier;
  return out;
}

describe('extractUsage on fixture spans of every convention, through the real SDK, serializers and decoder', () => {
  it('has fixtures for every convention', () => {
    expect(fixtures.map((f) => f.convention).sort()).toEqual(['openinference', 'openllmetry', 'otel-genai', 'tokenmeter', 'vercel-ai']);
    for (const f of fixtures) expect(f.source.length).toBeGreaterThan(20);
  });

  for (const fixture of fixtures) {
    for (const encoding of ['protobuf', 'json'] as const) {
      it(`${fixture.convention} (${encoding})`, () => {
        const sdkSpans = makeSpans(
          fixture.spans.map((s) => ({ name: s.name, attributes: s.attributes, error: s.error, scope: s.scope ?? fixture.scope })),
        );
        const body = encoding === 'protobuf' ? protobufBody(sdkSpans) : jsonBody(sdkSpans);
        const decoded = decodeTraceRequest(body, encoding === 'protobuf' ? 'application/x-protobuf' : 'application/json', undefined, {
          maxDecompressedBytes: 1 << 20,
        });
        expect(decoded.spans).toHaveLength(fixture.spans.length);
        for (let i = 0; i < fixture.spans.length; i++) {
          const want = fixture.spans[i];
          const sdk = sdkSpans[i];
          const span = decoded.spans.find((s) => s.spanId === sdk.spanContext().spanId) as DecodedSpan;
          const result = extractUsage(span);
          expect(summarize(result), `${fixture.convention}: ${want.name}`).toEqual(want.expect);
          if (result.kind === 'usage') {
            expect(result.record.traceId).toBe(sdk.spanContext().traceId);
            expect(result.record.spanId).toBe(sdk.spanContext().spanId);
            expect(result.record.endTimeMillis).toBe(Math.floor(sdk.endTime[0] * 1000 + sdk.endTime[1] / 1e6));
            expect(result.warnings).toEqual([]);
          }
        }
      });
    }
  }
});

const span = decodedSpan;

const BASE = {
  'gen_ai.operation.name': 'chat',
  'gen_ai.provider.name': 'openai',
  'gen_ai.request.model': 'gpt-4o',
};

function rejected(r: ExtractResult): { reason: string; message: string } {
  expect(r.kind).toBe('rejected');
  return r as { reason: string; message: string };
}

describe('extractUsage rejects, ignores and never throws', () => {
  it('rejects a NUL or a lone surrogate in any string field, control characters and reserved ids in the user id (the ledger\'s text rule)', () => {
    const usage = { 'gen_ai.usage.input_tokens': 10, 'gen_ai.usage.output_tokens': 1 };
    for (const [key, value, reason, message] of [
      ['user.id', 'a\u0000b', 'invalid_attribute', /NUL/],
      ['gen_ai.request.model', 'gpt\u0000', 'invalid_attribute', /NUL/],
      ['tokenmeter.feature', '\ud800', 'invalid_attribute', /lone surrogate/],
      ['tokenmeter.plan', 'x\u0000', 'invalid_attribute', /NUL/],
      ['gen_ai.provider.name', 'open\u0000ai', 'invalid_attribute', /NUL/],
      ['user.id', 'bell\u0007', 'invalid_attribute', /control characters/],
      ['user.id', 'c1\u0085', 'invalid_attribute', /control characters/],
      ['user.id', '__overflow__', 'reserved_user_id', /reserved/],
      ['user.id', 'anonymous', 'reserved_user_id', /reserved/],
    ] as const) {
      const r = rejected(extractUsage(span({ ...BASE, ...usage, [key]: value })));
      expect([key, r.reason]).toEqual([key, reason]);
      expect(r.message).toMatch(message);
    }
    // Bidi and zero-width characters are valid (the status page shows them escaped); no user id is anonymous.
    for (const user of ['bidi\u202Eid', 'zw\u200Bid', 'é😀']) {
      const r = extractUsage(span({ ...BASE, ...usage, 'user.id': user }));
      expect(r.kind === 'usage' && r.record.userId).toBe(user);
    }
    const anon = extractUsage(span({ ...BASE, ...usage }));
    expect(anon.kind === 'usage' && anon.record.userId).toBe('anonymous');
  });

  it('ignores spans that are not GenAI', () => {
    expect(extractUsage(span({ 'http.request.method': 'GET', 'http.route': '/health' }))).toEqual({ kind: 'ignored' });
    expect(extractUsage(span({}))).toEqual({ kind: 'ignored' });
  });

  it.each([
    ['negative', -5, 'implausible_usage', /is negative/],
    ['NaN', NaN, 'implausible_usage', /is not a number/],
    ['fractional', 1.5, 'implausible_usage', /is not an integer/],
    ['beyond MAX_PLAUSIBLE_TOKENS', MAX_PLAUSIBLE_TOKENS + 1, 'implausible_usage', /MAX_PLAUSIBLE_TOKENS/],
    ['infinite', Infinity, 'implausible_usage', /finite/],
    ['an array', [1, 2], 'invalid_usage', /not a number/],
    ['an object', { a: 1 } as AttributeValue, 'invalid_usage', /not a number/],
    ['a boolean', true, 'invalid_usage', /not a number/],
    ['a non-numeric string', 'lots', 'invalid_usage', /not an integer/],
  ])('rejects an input count that is %s, naming the field and span', (_label, value, reason, msg) => {
    const r = rejected(extractUsage(span({ ...BASE, 'gen_ai.usage.input_tokens': value as AttributeValue, 'gen_ai.usage.output_tokens': 3 })));
    expect(r.reason).toBe(reason);
    expect(r.message).toMatch(msg);
    expect(r.message).toContain('gen_ai.usage.input_tokens');
    expect(r.message).toContain('b7ad6b7169203331');
  });

  it('names the convention attribute, not the internal one, in messages', () => {
    const r = rejected(
      extractUsage(span({ 'openinference.span.kind': 'LLM', 'llm.model_name': 'x', 'llm.token_count.prompt': -1, 'llm.token_count.completion': 2 })),
    );
    expect(r.reason).toBe('implausible_usage');
    expect(r.message).toContain('"llm.token_count.prompt"');
  });

  it('accepts integer strings (int64 as OTLP/JSON strings set as string attributes)', () => {
    const r = extractUsage(span({ ...BASE, 'gen_ai.usage.input_tokens': '12', 'gen_ai.usage.output_tokens': '3' }));
    expect(r.kind === 'usage' && r.record.usage).toEqual({ input: 12, cache_read: 0, cache_write: 0, output: 3, reasoning: 0 });
  });

  it('clamps a subset larger than its total, with a warning', () => {
    const r = extractUsage(span({ ...BASE, 'gen_ai.usage.input_tokens': 10, 'gen_ai.usage.cache_read.input_tokens': 50, 'gen_ai.usage.output_tokens': 1 }));
    expect(r.kind).toBe('usage');
    if (r.kind === 'usage') {
      expect(r.record.usage).toEqual({ input: 0, cache_read: 10, cache_write: 0, output: 1, reasoning: 0 });
      expect(r.warnings.join()).toMatch(/clamped/);
    }
  });

  it('rejects a GenAI span without a model', () => {
    const r = rejected(extractUsage(span({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.usage.input_tokens': 5 })));
    expect(r.reason).toBe('missing_model');
  });

  it('keeps the pricing facts the span carries: speed, server.address, inference geo (lower-cased)', () => {
    const r = extractUsage(
      span({ ...BASE, 'gen_ai.usage.input_tokens': 1, 'tokenmeter.speed': 'Fast', 'server.address': 'EU.api.openai.com', 'tokenmeter.inference_geo': 'us' }),
    );
    expect(r.kind === 'usage' && [r.record.speed, r.record.serverAddress, r.record.inferenceGeo]).toEqual(['fast', 'eu.api.openai.com', 'us']);
    const bare = extractUsage(span({ ...BASE, 'gen_ai.usage.input_tokens': 1 }));
    expect(bare.kind === 'usage' && [bare.record.speed, bare.record.serverAddress, bare.record.inferenceGeo]).toEqual([undefined, undefined, undefined]);
  });

  it('keeps the modality parts the span carries (integer strings too)', () => {
    const r = extractUsage(
      span({
        ...BASE,
        'gen_ai.usage.input_tokens': 100,
        'gen_ai.usage.output_tokens': 50,
        'tokenmeter.usage.input_audio_tokens': 60,
        'tokenmeter.usage.output_audio_tokens': '20',
        'tokenmeter.usage.output_image_tokens': 0,
      }),
    );
    expect(r.kind === 'usage' && r.record.usage).toEqual({ input: 100, cache_read: 0, cache_write: 0, output: 50, reasoning: 0, input_audio: 60, output_audio: 20 });
  });

  it.each([
    ['tokenmeter.usage.input_audio_tokens', 101, 'implausible_usage', /exceeds the uncached input tokens \(100\)/],
    ['tokenmeter.usage.output_image_tokens', 51, 'implausible_usage', /exceed the output tokens \(50\)/],
    ['tokenmeter.usage.output_audio_tokens', -1, 'implausible_usage', /non-negative integer/],
    ['tokenmeter.usage.output_audio_tokens', 1.5, 'implausible_usage', /non-negative integer/],
    ['tokenmeter.usage.input_audio_tokens', 'lots', 'invalid_usage', /non-negative integer/],
    ['tokenmeter.usage.input_audio_tokens', [1], 'invalid_usage', /non-negative integer/],
    ['tokenmeter.usage.input_audio_tokens', 1e12, 'implausible_usage', /MAX_PLAUSIBLE_TOKENS/],
  ])('rejects the modality part %s = %j, naming it', (key, value, reason, msg) => {
    const r = rejected(
      extractUsage(span({ ...BASE, 'gen_ai.usage.input_tokens': 100, 'gen_ai.usage.output_tokens': 50, [key]: value as AttributeValue })),
    );
    expect(r.reason).toBe(reason);
    expect(r.message).toMatch(msg);
    expect(r.message).toContain(key.slice(0, 22));
  });

  it('rejects a hostile pricing fact instead of stringifying it', () => {
    for (const [key, value] of [
      ['tokenmeter.speed', { fast: true } as AttributeValue],
      ['server.address', ['us.api.openai.com']],
      ['tokenmeter.inference_geo', 'x'.repeat(100_000)],
    ] as const) {
      const r = rejected(extractUsage(span({ ...BASE, 'gen_ai.usage.input_tokens': 1, [key]: value })));
      expect(r.reason, key).toBe('invalid_attribute');
      expect(r.message, key).toContain(key);
    }
  });

  it('prefers the response model over the request model', () => {
    const r = extractUsage(span({ ...BASE, 'gen_ai.response.model': 'gpt-4o-2024-08-06', 'gen_ai.usage.input_tokens': 1 }));
    expect(r.kind === 'usage' && r.record.rawModel).toBe('gpt-4o-2024-08-06');
  });

  it('a successful model call with no usage and no content is never dropped: a zero-token request flagged estimated (issue 13)', () => {
    const r = extractUsage(span({ ...BASE }));
    expect(r.kind).toBe('usage');
    if (r.kind === 'usage') {
      expect(r.record.usage).toEqual({ input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 });
      expect(r.record.estimated).toBe(true);
      expect(r.facts.missingUsage).toBe('no_content');
      expect(r.warnings[0]).toMatch(/no token counts and it carries no prompt or completion/);
    }
  });

  it('an errored call without usage is a zero-usage request with outcome error', () => {
    const r = extractUsage(span({ ...BASE }, { statusCode: 2, statusMessage: '429 Too Many Requests' }));
    expect(r.kind).toBe('usage');
    if (r.kind === 'usage') {
      expect(r.record.outcome).toBe('error');
      expect(r.record.usage).toEqual({ input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 });
    }
  });

  it('an errored call with usage (error.type) is priced with outcome error', () => {
    const r = extractUsage(span({ ...BASE, 'error.type': 'timeout', 'gen_ai.usage.input_tokens': 40, 'gen_ai.usage.output_tokens': 2 }));
    expect(r.kind === 'usage' && [r.record.outcome, r.record.usage.input]).toEqual(['error', 40]);
  });

  it('rejects an invalid id', () => {
    const r = rejected(extractUsage(span({ ...BASE, 'gen_ai.usage.input_tokens': 1 }, { traceId: '', invalidId: 'trace_id has 15 bytes, expected 16' })));
    expect(r.reason).toBe('invalid_id');
    expect(r.message).toContain('15 bytes');
  });

  it('rejects hostile attribution instead of truncating or stringifying it', () => {
    expect(rejected(extractUsage(span({ ...BASE, 'gen_ai.usage.input_tokens': 1, 'user.id': 'x'.repeat(100_000) }))).reason).toBe(
      'invalid_attribute',
    );
    expect(rejected(extractUsage(span({ ...BASE, 'gen_ai.usage.input_tokens': 1, 'user.id': ['a', 'b'] }))).reason).toBe('invalid_attribute');
    expect(rejected(extractUsage(span({ ...BASE, 'gen_ai.request.model': { a: 'b' } as AttributeValue, 'gen_ai.usage.input_tokens': 1 }))).reason).toBe(
      'invalid_attribute',
    );
  });

  it('numeric user ids are stringified; hostile provider names do not reach Object.prototype', () => {
    const r = extractUsage(span({ ...BASE, 'gen_ai.provider.name': 'constructor', 'user.id': 42, 'gen_ai.usage.input_tokens': 1 }));
    expect(r.kind === 'usage' && [r.record.userId, r.record.provider]).toEqual(['42', 'constructor']);
    const p = extractUsage(span({ ...BASE, 'gen_ai.provider.name': '__proto__', 'gen_ai.usage.input_tokens': 1 }));
    expect(p.kind === 'usage' && p.record.provider).toBe('__proto__');
  });

  it('survives deeply nested kvlists, huge strings and odd types in every attribute', () => {
    let deep: AttributeValue = 'leaf';
    for (let i = 0; i < 1000; i++) deep = { k: [deep] } as AttributeValue;
    const hostile: Record<string, AttributeValue> = {};
    const keys = [
      'gen_ai.operation.name', 'gen_ai.provider.name', 'gen_ai.system', 'gen_ai.request.model', 'gen_ai.response.model',
      'gen_ai.usage.input_tokens', 'gen_ai.usage.output_tokens', 'ai.operationId', 'ai.model.provider', 'ai.response.providerMetadata',
      'openinference.span.kind', 'llm.token_count.prompt', 'user.id', 'tokenmeter.plan', 'error.type', 'traceloop.span.kind',
    ];
    const values: AttributeValue[] = [deep, 'y'.repeat(1 << 20), null, [null, 1, 'a'], NaN, -0, true, {}, '{"anthropic":'];
    for (const v of values) {
      for (const k of keys) hostile[k] = v;
      const r = extractUsage(span(hostile));
      expect(['ignored', 'rejected', 'usage']).toContain(r.kind);
    }
    const vercel = extractUsage(
      span({ 'ai.operationId': 'ai.streamText.doStream', 'ai.model.provider': 'anthropic.messages', 'ai.model.id': 'claude', 'ai.usage.inputTokens': 5, 'ai.usage.outputTokens': 1, 'ai.response.providerMetadata': '{"anthropic":{"cacheCreationInputTokens":{"x":1}}}' }),
    );
    expect(vercel.kind).toBe('rejected');
  });
});
