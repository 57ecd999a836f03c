/**
 * Issue 13: spans of the instrumentations users already run. Attribution keys in precedence order, estimates from
 * span content when a call reports no counts, the current GenAI / Sentry / modality names, span-reported cost, the
 * instrumentation layer; each new attribute parsed with hostile and oversized values.
 */
import { describe, expect, it } from 'vitest';
import { decodedSpan } from './decoded-span.js';
import { extractUsage, type DecodedSpan, type ExtractResult } from '../../src/ingest/index.js';
import { ATTRIBUTION_KEYS } from '../../src/ingest/extract.js';
import { MAX_CONTENT_CHARS } from '../../src/ingest/span-content.js';
import type { AttributeMap, AttributeValue } from '../../src/ingest/types.js';
import { estimateChatTokens, estimateTokens } from '../../src/usage/index.js';

/** The spans below come from the OTel contrib openai instrumentation unless a test says otherwise. */
function span(attributes: Record<string, AttributeValue>, extra: Partial<DecodedSpan> = {}, resource: Record<string, AttributeValue> = {}): DecodedSpan {
  return decodedSpan(attributes, { scope: { name: '@opentelemetry/instrumentation-openai', version: '0.21.0', attributes: Object.create(null) as AttributeMap }, ...extra }, resource);
}

const BASE = { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o' };
const COUNTS = { 'gen_ai.usage.input_tokens': 100, 'gen_ai.usage.output_tokens': 10 };
const VERCEL_LEAF = {
  'ai.operationId': 'ai.generateText.doGenerate',
  'ai.model.provider': 'openai.chat',
  'ai.model.id': 'gpt-4o',
  'ai.usage.inputTokens': 100,
  'ai.usage.outputTokens': 10,
  'ai.usage.inputTokenDetails.noCacheTokens': 100,
};

function usage(r: ExtractResult) {
  expect(r.kind, JSON.stringify(r)).toBe('usage');
  if (r.kind !== 'usage') throw new Error('not usage');
  return r;
}

describe('attribution: one table of keys, in precedence order, for spans of every convention', () => {
  it('each user key alone names the user, and each wins over every key after it', () => {
    const keys = ATTRIBUTION_KEYS.user;
    for (let i = 0; i < keys.length; i++) {
      const attrs: Record<string, AttributeValue> = { ...BASE, ...COUNTS };
      const meta: Record<string, string> = {};
      for (let j = i; j < keys.length; j++) {
        if (keys[j]!.startsWith('metadata.')) meta[keys[j]!.slice('metadata.'.length)] = `u${j}`;
        else attrs[keys[j]!] = `u${j}`;
      }
      if (Object.keys(meta).length > 0) attrs.metadata = JSON.stringify(meta);
      expect([keys[i], usage(extractUsage(span(attrs))).record.userId]).toEqual([keys[i], `u${i}`]);
    }
  });

  it('OpenLLMetry association properties name the user on a Vercel AI SDK span (Traceloop moves the metadata there)', () => {
    const r = usage(extractUsage(span({ ...VERCEL_LEAF, 'traceloop.association.properties.userId': 'alice', 'traceloop.association.properties.plan': 'pro' }, { scope: { name: 'ai', version: '', attributes: Object.create(null) as AttributeMap } })));
    expect([r.record.userId, r.record.planFromSpan, r.record.source]).toEqual(['alice', 'pro', 'vercel-ai']);
  });

  it('AI SDK 7 runtime context, OpenInference metadata: user, plan and feature', () => {
    const v7 = usage(extractUsage(span({ ...BASE, ...COUNTS, 'ai.settings.context.userId': 'carol', 'ai.settings.context.plan': 'team', 'ai.settings.context.feature': 'chat' })));
    expect([v7.record.userId, v7.record.planFromSpan, v7.record.feature]).toEqual(['carol', 'team', 'chat']);
    const oi = usage(extractUsage(span({ 'openinference.span.kind': 'LLM', 'llm.model_name': 'gpt-4o', 'llm.system': 'openai', 'llm.token_count.prompt': 5, 'llm.token_count.completion': 1, metadata: '{"user_id":42,"plan":"pro","feature":"search"}' })));
    expect([oi.record.userId, oi.record.planFromSpan, oi.record.feature]).toEqual(['42', 'pro', 'search']);
  });

  it('hostile OpenInference metadata: ignored when not a JSON object or oversized, rejected when the user is not a string, never reaches a prototype', () => {
    const oi = (metadata: AttributeValue) => extractUsage(span({ ...BASE, ...COUNTS, metadata }));
    for (const bad of ['{', '[1,2]', 'null', '"x"', 7, JSON.stringify({ user_id: 'x'.repeat(70 * 1024) })]) {
      expect(usage(oi(bad)).record.userId).toBe('anonymous');
    }
    const nested = oi('{"userId":{"id":"a"}}');
    expect(nested.kind === 'rejected' && nested.reason).toBe('invalid_attribute');
    const long = oi(JSON.stringify({ userId: 'x'.repeat(300) }));
    expect(long.kind === 'rejected' && long.message).toMatch(/metadata\.userId.*limit 256/);
    const nul = oi('{"userId":"a\\u0000b"}');
    expect(nul.kind === 'rejected' && nul.reason).toBe('invalid_attribute');
    expect(usage(oi('{"__proto__":{"userId":"evil"},"constructor":"x"}')).record.userId).toBe('anonymous');
    expect(({} as Record<string, unknown>).userId).toBeUndefined();
  });
});

describe('never drop a call: a GenAI call span without token counts', () => {
  const model = 'gpt-4o';
  it('is estimated from gen_ai.input.messages / gen_ai.output.messages (and system instructions), flagged estimated', () => {
    const r = usage(extractUsage(span({
      ...BASE,
      'gen_ai.system_instructions': JSON.stringify([{ type: 'text', content: 'Be brief.' }]),
      'gen_ai.input.messages': JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: 'Hello there' }] }]),
      'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', parts: [{ type: 'text', content: 'General Kenobi' }], finish_reason: 'stop' }]),
    })));
    const input = estimateChatTokens([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }], model);
    expect(r.record.usage).toEqual({ input, cache_read: 0, cache_write: 0, output: estimateTokens('General Kenobi', model), reasoning: 0 });
    expect([r.record.estimated, r.facts.missingUsage]).toEqual([true, 'estimated']);
  });

  it.each([
    ['OpenLLMetry indexed gen_ai.prompt.N', { 'gen_ai.prompt.0.role': 'user', 'gen_ai.prompt.0.content': 'Hello there', 'gen_ai.completion.0.role': 'assistant', 'gen_ai.completion.0.content': 'General Kenobi' }],
    ['OpenInference llm.input_messages.N', { 'llm.input_messages.0.message.role': 'user', 'llm.input_messages.0.message.content': 'Hello there', 'llm.output_messages.0.message.content': 'General Kenobi' }],
    ['Vercel ai.prompt.messages + ai.response.text', { 'ai.prompt.messages': JSON.stringify([{ role: 'user', content: [{ type: 'text', text: 'Hello there' }] }]), 'ai.response.text': 'General Kenobi' }],
  ])('is estimated from %s', (_name, content) => {
    const r = usage(extractUsage(span({ ...BASE, ...content })));
    expect(r.record.usage.input).toBe(estimateChatTokens([{ role: 'user', content: 'Hello there' }], model));
    expect(r.record.usage.output).toBe(estimateTokens('General Kenobi', model));
    expect(r.record.estimated).toBe(true);
  });

  it('an OpenInference streamed span (LLM kind, no counts) is estimated, not rejected', () => {
    const r = usage(extractUsage(span({ 'openinference.span.kind': 'LLM', 'llm.model_name': 'gpt-4o', 'llm.system': 'openai', 'llm.input_messages.0.message.role': 'user', 'llm.input_messages.0.message.content': 'Hi' })));
    expect([r.record.source, r.record.estimated, r.facts.missingUsage]).toEqual(['openinference', true, 'estimated']);
  });

  it('hostile or oversized content: counted as a request with zero tokens, flagged, never thrown', () => {
    for (const attrs of [
      { 'gen_ai.input.messages': '{not json' },
      { 'gen_ai.input.messages': '{"role":"user"}' },
      { 'gen_ai.input.messages': 'x'.repeat(MAX_CONTENT_CHARS + 1) },
      { 'gen_ai.output.messages': 42 },
      { 'llm.input_messages.0.message.content': 'a'.repeat(MAX_CONTENT_CHARS + 1) },
    ] as Record<string, AttributeValue>[]) {
      const r = usage(extractUsage(span({ ...BASE, ...attrs })));
      expect(r.record.usage.input + r.record.usage.output, JSON.stringify(Object.keys(attrs))).toBe(0);
      expect(r.facts.missingUsage).toBe(JSON.stringify(attrs).length > MAX_CONTENT_CHARS ? 'not_estimated' : 'no_content');
      expect(r.record.estimated).toBe(true);
    }
    // Odd shapes inside valid JSON are skipped, the rest estimated.
    const odd = usage(extractUsage(span({ ...BASE, 'gen_ai.input.messages': JSON.stringify([null, 3, { role: 'user', parts: 'plain' }, { parts: [{ type: 'image', url: 'x' }, 'y'] }]) })));
    expect(odd.record.usage.input).toBe(estimateChatTokens([{ role: 'user', content: 'plain' }, { role: 'user', content: 'y' }], model));
    // Indexed messages beyond the cap are not read.
    const many: Record<string, AttributeValue> = { ...BASE };
    for (let i = 0; i < 1500; i++) many[`gen_ai.prompt.${i}.content`] = 'a';
    expect(usage(extractUsage(span(many))).record.usage.input).toBe(estimateChatTokens(Array.from({ length: 1000 }, () => ({ role: 'user', content: 'a' })), model));
  });

  it('a span that is not an LLM call is still ignored (agent and step spans of AI SDK 7, tools, workflows)', () => {
    for (const op of ['invoke_agent', 'agent_step', 'execute_tool', 'invoke_workflow']) {
      expect(extractUsage(span({ ...BASE, 'gen_ai.operation.name': op, ...COUNTS })).kind).toBe('ignored');
    }
    expect(extractUsage(span({ 'http.method': 'GET' })).kind).toBe('ignored');
  });
});

describe('the conventions as they are now', () => {
  it('reads gen_ai.usage.cache_write.input_tokens (current) before cache_creation, and Sentry spellings', () => {
    const current = usage(extractUsage(span({ ...BASE, 'gen_ai.usage.input_tokens': 1000, 'gen_ai.usage.output_tokens': 10, 'gen_ai.usage.cache_write.input_tokens': 300, 'gen_ai.usage.cache_creation.input_tokens': 999 })));
    expect(current.record.usage).toMatchObject({ input: 700, cache_write: 300 });
    const sentry = usage(extractUsage(span({ ...BASE, 'gen_ai.usage.input_tokens': 1000, 'gen_ai.usage.output_tokens': 100, 'gen_ai.usage.input_tokens.cached': 400, 'gen_ai.usage.input_tokens.cache_write': 100, 'gen_ai.usage.output_tokens.reasoning': 60 })));
    expect(sentry.record.usage).toEqual({ input: 500, cache_read: 400, cache_write: 100, output: 40, reasoning: 60 });
  });

  it('modality parts: audio input minus its cached part, audio and image output', () => {
    const r = usage(extractUsage(span({ ...BASE, 'gen_ai.usage.input_tokens': 1000, 'gen_ai.usage.cache_read.input_tokens': 200, 'gen_ai.usage.output_tokens': 100, 'gen_ai.usage.audio.input_tokens': 300, 'gen_ai.usage.audio.cache_read.input_tokens': 50, 'gen_ai.usage.audio.output_tokens': 40, 'gen_ai.usage.image.output_tokens': 10, 'gen_ai.usage.text.input_tokens': 700 })));
    expect(r.record.usage).toMatchObject({ input: 800, cache_read: 200, output: 100, input_audio: 250, output_audio: 40, output_image: 10 });
  });

  it.each([
    [{ 'gen_ai.usage.audio.input_tokens': 10, 'gen_ai.usage.audio.cache_read.input_tokens': 11 }, /audio\.cache_read\.input_tokens.*exceeds/],
    [{ 'gen_ai.usage.audio.input_tokens': 101 }, /audio\.input_tokens" minus .* exceeds the uncached input tokens/],
    [{ 'gen_ai.usage.audio.output_tokens': 11 }, /exceed the output tokens/],
    [{ 'gen_ai.usage.audio.output_tokens': -1 }, /non-negative integer/],
    [{ 'gen_ai.usage.image.output_tokens': '1e3' }, /non-negative integer/],
    [{ 'gen_ai.usage.audio.input_tokens': 1e300 }, /non-negative integer/],
  ])('rejects hostile modality counts %o', (attrs, message) => {
    const r = extractUsage(span({ ...BASE, ...COUNTS, ...attrs }));
    expect(r.kind).toBe('rejected');
    expect(r.kind === 'rejected' && r.message).toMatch(message);
  });

  it('a cost the span reports is kept next to tokenmeter\'s (facts), never used for billing; hostile values are ignored', () => {
    const cost = (v: AttributeValue, key = 'gen_ai.usage.cost') => usage(extractUsage(span({ ...BASE, ...COUNTS, [key]: v }))).facts.reportedCostUsd;
    expect(cost(0.0123)).toBe(0.0123);
    expect(cost('0.5', 'gen_ai.cost.total_cost')).toBe(0.5);
    expect(cost(2, 'gen_ai.usage.total_cost')).toBe(2);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, 1e12, '1e3', 'free', true, [1], '0x10']) expect(cost(bad as AttributeValue)).toBeUndefined();
    const r = usage(extractUsage(span({ ...BASE, ...COUNTS, 'gen_ai.usage.cost': 99 })));
    expect(r.record.usage).toMatchObject({ input: 100, output: 10 });
  });
});

describe('instrumentation layer and process identity (for billing each call once)', () => {
  it('LangChain / LlamaIndex scopes are framework spans; provider SDK instrumentations and the AI SDK are provider-level', () => {
    const layer = (scope: string, attrs: Record<string, AttributeValue> = { ...BASE, ...COUNTS }) =>
      usage(extractUsage(span(attrs, { scope: { name: scope, version: '1', attributes: Object.create(null) as AttributeMap } }))).facts.layer;
    expect(layer('@traceloop/instrumentation-langchain')).toBe('framework');
    expect(layer('@arizeai/openinference-instrumentation-langchain')).toBe('framework');
    expect(layer('opentelemetry.instrumentation.llamaindex')).toBe('framework');
    expect(layer('@traceloop/instrumentation-openai')).toBe('provider');
    expect(layer('@opentelemetry/instrumentation-openai')).toBe('provider');
    expect(layer('ai', { ...VERCEL_LEAF })).toBe('provider');
    expect(layer('gen_ai')).toBe('provider');
  });

  it('the process key comes from the resource, bounded, and differs between services', () => {
    const key = (res: Record<string, AttributeValue>) => usage(extractUsage(span({ ...BASE, ...COUNTS }, {}, res))).facts.resourceKey;
    expect(key({ 'service.name': 'a' })).not.toBe(key({ 'service.name': 'b' }));
    expect(key({ 'service.name': 'a', 'process.pid': 1 })).not.toBe(key({ 'service.name': 'a', 'process.pid': 2 }));
    expect(key({ 'service.name': 'x'.repeat(100_000) }).length).toBeLessThan(2000);
    expect(key({ 'service.name': { nested: 'object' } as unknown as AttributeValue })).toBe(key({}));
  });
});
