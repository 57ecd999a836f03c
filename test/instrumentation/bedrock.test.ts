import * as bedrock from '@aws-sdk/client-bedrock-runtime';
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  CountTokensCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
  ValidationException,
} from '@aws-sdk/client-bedrock-runtime';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { instrument, withUser } from '../../src/instrumentation/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { estimateTokens, loadEstimator, normalizeGenAiAttributes } from '../../src/usage/index.js';
import { ACCESS_KEY_ID, startBedrockServer, type BedrockServer } from './bedrock-server.js';
import { createHarness, onlySpan, usageAttrs, type Harness } from './harness.js';

let h: Harness;
let server: BedrockServer;
let client: BedrockRuntimeClient;
const book = PriceBook.load();
const AT = new Date('2026-11-24T12:00:00Z');
// A cross-region inference profile id, as apps pass it.
const MODEL = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
const messages = [{ role: 'user' as const, content: [{ text: 'Explain the meter.' }] }];

beforeAll(async () => {
  // The tokenizer built first: a call needing an estimate before then ends a moment later, once it is
  // (test/instrumentation/deferred-estimate.test.ts); these tests read the span right after the call.
  await loadEstimator();
  h = await createHarness();
  server = await startBedrockServer();
  expect(instrument(bedrock)).toEqual(['BedrockRuntimeClient.send (Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream)']);
  client = new BedrockRuntimeClient({
    region: 'us-east-1',
    endpoint: server.url,
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: 'dummy-secret-for-tests' },
    maxAttempts: 1,
  });
});
afterAll(async () => {
  client?.destroy();
  await server?.close();
  await h?.shutdown();
});
afterEach(() => {
  h.reset();
  server.reset();
});

function priced(span: ReadableSpan): { model: string; costUsd: Record<string, string>; totalUsd: string } {
  const r = book.priceStrings({
    provider: String(span.attributes['gen_ai.provider.name']),
    model: String(span.attributes['gen_ai.request.model']),
    usage: normalizeGenAiAttributes(span.attributes).usage,
    at: AT,
  });
  if (!r.priced) throw new Error(`unpriced: ${r.reason}`);
  return { model: r.model, costUsd: { ...r.costUsd }, totalUsd: r.totalUsd };
}

// Bedrock's inputTokens exclude cache reads and writes.
const CONVERSE_CACHED = { inputTokens: 100, cacheReadInputTokens: 2000, cacheWriteInputTokens: 1000, outputTokens: 300, totalTokens: 3400 };
const CACHED_BUCKETS = { input: 100, cache_read: 2000, cache_write: 1000, output: 300, reasoning: 0 };
// 100 × 3.00 + 2000 × 0.30 + 1000 × 3.75 + 300 × 15.00 = 300 + 600 + 3750 + 4500 = 9150 µ$
const CACHED_COST = {
  model: 'claude-sonnet-4-5',
  costUsd: { input: '0.0003', cache_read: '0.0006', cache_write: '0.00375', output: '0.0045', reasoning: '0' },
  totalUsd: '0.00915',
};

describe('Bedrock Converse', () => {
  it('records ConverseCommand through the middleware stack, SigV4-signed, priced exactly from an inference-profile id', async () => {
    server.setConverseUsage(CONVERSE_CACHED);
    const out = await client.send(new ConverseCommand({ modelId: MODEL, messages, inferenceConfig: { maxTokens: 256, temperature: 0.5 } }));
    expect(out.output?.message?.content?.[0]?.text).toBe('The meter counts every token once.');
    expect(out.usage).toEqual(CONVERSE_CACHED);
    expect(server.requests[0].headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTOKENMETERTEST\/\d{8}\/us-east-1\/bedrock\/aws4_request/);
    const span = onlySpan(h);
    expect(span.name).toBe(`chat ${MODEL}`);
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'aws.bedrock',
      'gen_ai.request.model': MODEL,
      'gen_ai.request.max_tokens': 256,
      'gen_ai.request.temperature': 0.5,
      'gen_ai.response.finish_reasons': ['end_turn'],
    });
    expect(normalizeGenAiAttributes(span.attributes).usage).toEqual(CACHED_BUCKETS);
    expect(priced(span)).toEqual(CACHED_COST);
  });

  it('adds its middleware once per client, so a second command is one more span, not two', async () => {
    await client.send(new ConverseCommand({ modelId: MODEL, messages }));
    await client.send(new ConverseCommand({ modelId: MODEL, messages }));
    expect(h.finished().length).toBe(2);
    expect(client.middlewareStack.identify().filter((n) => n.startsWith('tokenmeterBedrockMiddleware')).length).toBe(1);
  });

  it('reads ConverseStream usage from the metadata event (binary event-stream frames), under withUser', async () => {
    server.setConverseUsage(CONVERSE_CACHED);
    const text = await withUser({ id: 'u-br', plan: 'team' }, async () => {
      const out = await client.send(new ConverseStreamCommand({ modelId: MODEL, messages }));
      let t = '';
      for await (const ev of out.stream!) if (ev.contentBlockDelta?.delta?.text !== undefined) t += ev.contentBlockDelta.delta.text;
      return t;
    });
    expect(text).toBe('The meter counts every token once.');
    const span = onlySpan(h);
    expect(span.attributes).toMatchObject({ 'user.id': 'u-br', 'tokenmeter.plan': 'team', 'gen_ai.request.stream': true, 'gen_ai.response.finish_reasons': ['end_turn'] });
    expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
    expect(normalizeGenAiAttributes(span.attributes).usage).toEqual(CACHED_BUCKETS);
    expect(priced(span)).toEqual(CACHED_COST);
  });

  it('records a failed command with the SDK exception, rethrown unchanged', async () => {
    server.failNext(400);
    const err = await client.send(new ConverseCommand({ modelId: MODEL, messages })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationException);
    const span = onlySpan(h);
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('ValidationException');
    expect(usageAttrs(span.attributes)).toEqual({});
  });

  it('leaves other commands alone (CountTokens is not billed)', async () => {
    await client.send(new CountTokensCommand({ modelId: MODEL, input: { converse: { messages } } })).catch(() => undefined);
    expect(h.finished()).toEqual([]);
  });
});

describe('Bedrock InvokeModel with an Anthropic body', () => {
  const anthropicBody = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 256, messages: [{ role: 'user', content: 'Explain the meter.' }] });
  // Anthropic's input_tokens exclude cache reads and writes, as Bedrock's do.
  const ANTHROPIC_CACHED = { input_tokens: 100, cache_read_input_tokens: 2000, cache_creation_input_tokens: 1000, output_tokens: 300 };

  it('reads usage (cache reads and writes) from the response body, priced from an ARN', async () => {
    server.setAnthropicUsage(ANTHROPIC_CACHED);
    const arn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0';
    const out = await client.send(new InvokeModelCommand({ modelId: arn, body: anthropicBody, contentType: 'application/json' }));
    const body = JSON.parse(out.body.transformToString()) as { id: string; usage: unknown };
    expect(body.usage).toEqual(ANTHROPIC_CACHED);
    const span = onlySpan(h);
    expect(span.attributes).toMatchObject({ 'gen_ai.provider.name': 'aws.bedrock', 'gen_ai.request.model': arn, 'gen_ai.response.id': body.id });
    expect(normalizeGenAiAttributes(span.attributes).usage).toEqual(CACHED_BUCKETS);
    expect(priced(span)).toEqual(CACHED_COST);
  });

  it('reads InvokeModelWithResponseStream usage from message_start and the cumulative message_delta', async () => {
    server.setAnthropicUsage(ANTHROPIC_CACHED);
    const out = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: MODEL, body: anthropicBody, contentType: 'application/json' }));
    const types: string[] = [];
    for await (const ev of out.body!) types.push((JSON.parse(new TextDecoder().decode(ev.chunk!.bytes)) as { type: string }).type);
    expect(types[0]).toBe('message_start');
    expect(types.at(-1)).toBe('message_stop');
    const span = onlySpan(h);
    expect(span.attributes['tokenmeter.usage.estimated']).toBeUndefined();
    expect(normalizeGenAiAttributes(span.attributes).usage).toEqual(CACHED_BUCKETS);
    expect(priced(span)).toEqual(CACHED_COST);
  });

  it('marks a stream the caller breaks off and completes its output with a labelled estimate', async () => {
    const out = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: MODEL, body: anthropicBody, contentType: 'application/json' }));
    for await (const ev of out.body!) {
      void ev;
      break;
    }
    const span = onlySpan(h);
    expect(span.attributes['tokenmeter.stream.end']).toBe('break');
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(20);
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
  });
});

describe('Bedrock-hosted Amazon Nova and Meta Llama', () => {
  // Nova Pro: 10,000 x $0.80 + 2,000 cache reads x $0.20 + 1,000 x $3.20 (per Mtok) = 8,000 + 400 + 3,200 micro-dollars.
  it('a Converse call to Nova Pro through a us. profile is priced exactly from the bedrock entry', async () => {
    server.setConverseUsage({ inputTokens: 10_000, cacheReadInputTokens: 2_000, outputTokens: 1_000, totalTokens: 13_000 });
    await client.send(new ConverseCommand({ modelId: 'us.amazon.nova-pro-v1:0', messages }));
    const span = onlySpan(h);
    expect(span.attributes['gen_ai.request.model']).toBe('us.amazon.nova-pro-v1:0');
    expect(priced(span)).toEqual({
      model: 'nova-pro',
      costUsd: { input: '0.008', cache_read: '0.0004', cache_write: '0', output: '0.0032', reasoning: '0' },
      totalUsd: '0.0116',
    });
  });

  // Llama 3.3 70B: 10,000 x $0.72 + 1,000 x $0.72 = 7,200 + 720 micro-dollars.
  it('a ConverseStream call to Llama 3.3 70B by its ARN is priced exactly from the bedrock entry', async () => {
    server.setConverseUsage({ inputTokens: 10_000, outputTokens: 1_000, totalTokens: 11_000 });
    const arn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-3-70b-instruct-v1:0';
    const out = await client.send(new ConverseStreamCommand({ modelId: arn, messages }));
    for await (const _ of out.stream ?? []) void _;
    const p = priced(onlySpan(h));
    expect(p.model).toBe('llama3-3-70b-instruct');
    expect(p.totalUsd).toBe('0.00792');
  });
});

describe('Bedrock model ids', () => {
  it.each([
    'anthropic.claude-sonnet-4-5-20250929-v1:0',
    'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
    'eu.anthropic.claude-sonnet-4-5-20250929-v1:0',
    'apac.anthropic.claude-sonnet-4-5-20250929-v1:0',
    'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
    'arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0',
    'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0',
  ])('%s resolves to the catalog entry claude-sonnet-4-5', (id) => {
    expect(book.normalizeModel('aws.bedrock', id)).toEqual({ provider: 'anthropic', model: 'claude-sonnet-4-5', known: true });
  });
});

describe('Bedrock hostile input', () => {
  it('reports implausible usage on the span, unpriced, and the app still gets its output', async () => {
    server.setConverseUsage({ inputTokens: -1, outputTokens: 5, totalTokens: 4 });
    const out = await client.send(new ConverseCommand({ modelId: MODEL, messages }));
    expect(out.usage?.inputTokens).toBe(-1);
    const span = onlySpan(h);
    expect(String(span.attributes['tokenmeter.usage.invalid'])).toMatch(/inputTokens/);
    expect(span.attributes['gen_ai.usage.input_tokens']).toBeUndefined();
  });

  it('labels an estimate for an InvokeModel body of another model family, and survives a non-JSON response body', async () => {
    const out = await client.send(new InvokeModelCommand({ modelId: 'meta.llama3-70b-instruct-v1:0', body: JSON.stringify({ prompt: 'Explain the meter.' }) }));
    expect(JSON.parse(out.body.transformToString())).toMatchObject({ generation: 'The meter counts every token once.' });
    let span = onlySpan(h);
    expect(span.attributes['tokenmeter.usage.estimated']).toBe(true);
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(estimateTokens('Explain the meter.'));
    h.reset();
    const raw = await client.send(new InvokeModelCommand({ modelId: 'meta.llama3-70b-instruct-v1:0', body: JSON.stringify({ prompt: 'x', raw: true }) }));
    expect(raw.body.transformToString()).toBe('not json');
    span = onlySpan(h);
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });
});
