/**
 * Admission control (issue 16) for the SDKs that are not Stainless: Google Gen AI (@google/genai), Amazon Bedrock
 * (@aws-sdk/client-bedrock-runtime) and the Vercel AI SDK (`ai` with @ai-sdk/openai, which sends its own HTTP
 * requests). The real SDKs against local servers speaking each provider's wire format, a real exporter (in-memory
 * ledger) answering the reservations. For each: a refused call rejects the SDK's own promise with UsageLimitError
 * and nothing reaches the provider (streams included); the estimate is the local input count + the request's max
 * output; the span carries the reservation id; exactly N of M concurrent calls reach the provider server; fail
 * closed / fail open on an exporter that never answers; no unhandled rejection.
 */
import * as bedrockModule from '@aws-sdk/client-bedrock-runtime';
import { BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand, InvokeModelCommand, InvokeModelWithResponseStreamCommand } from '@aws-sdk/client-bedrock-runtime';
import { createOpenAI } from '@ai-sdk/openai';
import * as genai from '@google/genai';
import { GoogleGenAI } from '@google/genai';
import type * as aiModule from 'ai';
import { createServer, type Server, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ATTR_RESERVATION_ID, ATTR_RESERVATION_REFUSED, ATTR_RESERVATION_UNAVAILABLE } from '../../src/contract/names.js';
import { patchAiSdk } from '../../src/instrumentation/ai-sdk.js';
import { configureEnforcement, instrument, UsageLimitError, withUser } from '../../src/instrumentation/index.js';
import { estimateTokens, loadEstimator } from '../../src/usage/index.js';
import { getJson, otlpJson, postOtlp, startTestExporter, type TestExporter } from '../exporter/harness.js';
import { ACCESS_KEY_ID, startBedrockServer, type BedrockServer } from './bedrock-server.js';
import { startGeminiServer, type GeminiServer } from './gemini-server.js';
import { useHarnessWithMock } from './harness.js';

const env = useHarnessWithMock({ seed: 1616 });
let exporter: TestExporter;
let gemini: GeminiServer;
let bedrock: BedrockServer;
let google: GoogleGenAI;
let client: BedrockRuntimeClient;
let ai: typeof aiModule;
let openai: ReturnType<typeof createOpenAI>;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
let silent: Server;
let silentUrl: string;
const sockets: Socket[] = [];

const BEDROCK_MODEL = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';

beforeAll(async () => {
  await loadEstimator();
  expect(instrument(genai)).toContain('models.generateContent');
  expect(instrument(bedrockModule)).toHaveLength(1);
  const patched = patchAiSdk(createRequire(import.meta.url)('ai'));
  expect(patched.done).toContain('generateText');
  ai = patched.exports as typeof aiModule;
  exporter = await startTestExporter();
  gemini = await startGeminiServer();
  bedrock = await startBedrockServer();
  google = new GoogleGenAI({ apiKey: 'test-key', httpOptions: { baseUrl: gemini.url } });
  client = new BedrockRuntimeClient({ region: 'us-east-1', endpoint: bedrock.url, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: 'dummy-secret-for-tests' }, maxAttempts: 1 });
  openai = createOpenAI({ baseURL: env.mock.openaiBaseURL, apiKey: 'test-key' });
  // Accepts connections and never answers: the exporter "down" for the fail modes.
  silent = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
  process.on('unhandledRejection', onUnhandled);
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  configureEnforcement({});
  client?.destroy();
  for (const s of sockets) s.destroy();
  silent?.close();
  await gemini?.close();
  await bedrock?.close();
  await exporter?.close();
});
afterEach(() => {
  configureEnforcement({});
  gemini.reset();
  bedrock.reset();
  expect(unhandled).toEqual([]);
});

let seeded = 0;
/** `used` calls of `user` committed at the exporter (free plan: 10 requests, 50,000 tokens). */
async function seed(user: string, used: number): Promise<void> {
  const spans = Array.from({ length: used }, () => ({ traceId: 'f'.repeat(32), spanId: (++seeded).toString(16).padStart(16, '0'), user, model: 'gpt-4o-mini', input: 10, output: 5 }));
  expect((await postOtlp(exporter.otlpUrl, otlpJson(spans))).status).toBe(200);
}

const reserved = async (user: string): Promise<{ requests: number; tokens: number }> => (await getJson(`${exporter.httpUrl}/api/v1/usage/${user}`)).json.reserved;
const settle = <T>(p: Promise<T>): Promise<T | unknown> => p.then((v) => v, (e: unknown) => e);

/** One provider, as the tests below drive it. */
interface Provider {
  name: string;
  /** Requests the provider's server received. */
  received(): number;
  /** A non-streaming call with maxOutputTokens 77 and the text "hello there"; resolves to the SDK's result. */
  call(): Promise<unknown>;
  /** A streamed call, read to its end; resolves to the number of chunks (rejects like the SDK does). */
  stream(): Promise<number>;
  /** The input tokens the reservation asks for (the local count of the request's text). */
  inputTokens: number;
}

const PROMPT = 'hello there';
const anthropicBody = (max: number) => JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: max, messages: [{ role: 'user', content: PROMPT }] });

const providers: Provider[] = [
  {
    name: 'Google Gen AI',
    received: () => gemini.requests.length,
    call: () => google.models.generateContent({ model: 'gemini-2.5-flash', contents: PROMPT, config: { maxOutputTokens: 77 } }),
    async stream() {
      let n = 0;
      for await (const _ of await google.models.generateContentStream({ model: 'gemini-2.5-flash', contents: PROMPT, config: { maxOutputTokens: 77 } })) n++;
      return n;
    },
    inputTokens: estimateTokens(PROMPT),
  },
  {
    name: 'Bedrock Converse',
    received: () => bedrock.requests.length,
    call: () => client.send(new ConverseCommand({ modelId: BEDROCK_MODEL, messages: [{ role: 'user', content: [{ text: PROMPT }] }], inferenceConfig: { maxTokens: 77 } })),
    async stream() {
      const out = await client.send(new ConverseStreamCommand({ modelId: BEDROCK_MODEL, messages: [{ role: 'user', content: [{ text: PROMPT }] }], inferenceConfig: { maxTokens: 77 } }));
      let n = 0;
      for await (const _ of out.stream!) n++;
      return n;
    },
    inputTokens: estimateTokens(PROMPT),
  },
  {
    name: 'Bedrock InvokeModel',
    received: () => bedrock.requests.length,
    call: () => client.send(new InvokeModelCommand({ modelId: BEDROCK_MODEL, body: anthropicBody(77), contentType: 'application/json' })),
    async stream() {
      const out = await client.send(new InvokeModelWithResponseStreamCommand({ modelId: BEDROCK_MODEL, body: anthropicBody(77), contentType: 'application/json' }));
      let n = 0;
      for await (const _ of out.body!) n++;
      return n;
    },
    inputTokens: estimateTokens(PROMPT),
  },
  {
    name: 'Vercel AI SDK (@ai-sdk/openai)',
    received: () => env.mock.requests.length,
    call: () => ai.generateText({ model: openai.chat('gpt-4o-mini'), prompt: PROMPT, maxOutputTokens: 77 }),
    async stream() {
      // streamText hands a model error to onError and ends its streams; the SDK's own text promise rejects.
      let failure: unknown;
      const r = ai.streamText({ model: openai.chat('gpt-4o-mini'), prompt: PROMPT, maxOutputTokens: 77, onError: ({ error }) => void (failure = error) });
      let n = 0;
      for await (const _ of r.textStream) n++;
      if (failure !== undefined) throw failure;
      return n;
    },
    inputTokens: estimateTokens(PROMPT),
  },
];

const slug = (s: string) => s.toLowerCase().replace(/[^a-z]+/g, '-');

describe.each(providers)('$name with enforce: block', (p) => {
  const user = slug(p.name);

  it('a granted call is sent once, its span carries the reservation id, and the hold is its input count + its max output', async () => {
    configureEnforcement({ url: exporter.httpUrl, enforce: 'block' });
    const u = `${user}-ok`;
    await withUser({ id: u, plan: 'free' }, () => p.call());
    expect(p.received()).toBe(1);
    const span = env.h.finished().at(-1)!;
    expect(span.attributes[ATTR_RESERVATION_ID]).toMatch(/^r_[0-9a-f]{24}$/);
    // Not settled here (the span goes to an in-memory exporter): the hold is exactly the estimate.
    expect(await reserved(u)).toMatchObject({ requests: 1, tokens: p.inputTokens + 77 });
    expect(await withUser({ id: u, plan: 'free' }, () => p.stream())).toBeGreaterThan(0);
    expect(p.received()).toBe(2);
    expect(env.h.finished().at(-1)!.attributes[ATTR_RESERVATION_ID]).toMatch(/^r_/);
  });

  it('a call over the limit rejects with UsageLimitError through the SDK promise (streams too); nothing is sent', async () => {
    configureEnforcement({ url: exporter.httpUrl, enforce: 'block' });
    const u = `${user}-full`;
    await seed(u, 10);
    const err = await settle(withUser({ id: u, plan: 'free' }, () => p.call()));
    expect(err).toBeInstanceOf(UsageLimitError);
    expect(err).toMatchObject({ user: u, plan: 'free', limit: 'requests', used: 10, limitValue: 10, status: 429 });
    expect(env.h.finished().at(-1)!.attributes[ATTR_RESERVATION_REFUSED]).toBe('requests');
    expect(await settle(withUser({ id: u, plan: 'free' }, () => p.stream()))).toBeInstanceOf(UsageLimitError);
    expect(p.received()).toBe(0);
  });

  it('3 requests left, 20 concurrent calls (half streamed): exactly 3 reach the provider server, 17 get UsageLimitError', async () => {
    configureEnforcement({ url: exporter.httpUrl, enforce: 'block', timeoutMillis: 10_000 });
    const u = `${user}-race`;
    await seed(u, 7);
    const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => settle(withUser({ id: u, plan: 'free' }, () => (i % 2 === 0 ? p.call() : p.stream())))));
    const limited = outcomes.filter((o) => o instanceof UsageLimitError);
    expect(limited).toHaveLength(17);
    expect(outcomes.filter((o) => o instanceof Error && !(o instanceof UsageLimitError))).toEqual([]);
    expect(p.received()).toBe(3);
    expect(await reserved(u)).toMatchObject({ requests: 3 });
  });

  it('the exporter never answers: fail closed refuses after the timeout, fail open sends and marks the span', async () => {
    const u = `${user}-down`;
    configureEnforcement({ url: silentUrl, enforce: 'block', fail: 'closed', timeoutMillis: 100 });
    const err = await settle(withUser({ id: u }, () => p.call()));
    expect(err).toBeInstanceOf(UsageLimitError);
    expect(err).toMatchObject({ limit: 'unavailable', status: 503 });
    expect(await settle(withUser({ id: u }, () => p.stream()))).toMatchObject({ limit: 'unavailable' });
    expect(p.received()).toBe(0);
    configureEnforcement({ url: silentUrl, enforce: 'block', fail: 'open', timeoutMillis: 100 });
    await withUser({ id: u }, () => p.call());
    expect(p.received()).toBe(1);
    expect(env.h.finished().at(-1)!.attributes[ATTR_RESERVATION_UNAVAILABLE]).toBe(true);
  });
});

describe('enforce: off (the default)', () => {
  it('asks nothing: every provider sends at once, no reservation attribute', async () => {
    configureEnforcement({ url: silentUrl });
    for (const p of providers) {
      await withUser({ id: 'off-user' }, () => p.call());
      expect(env.h.finished().at(-1)!.attributes[ATTR_RESERVATION_ID]).toBeUndefined();
      expect(env.h.finished().at(-1)!.attributes[ATTR_RESERVATION_UNAVAILABLE]).toBeUndefined();
    }
    expect(gemini.requests.length + bedrock.requests.length + env.mock.requests.length).toBe(providers.length);
  });
});

describe('Vercel AI SDK with its own telemetry on', () => {
  it('the reservation is keyed by and marked on the AI SDK leaf span (the span the exporter bills), and a refusal marks it too', async () => {
    configureEnforcement({ url: exporter.httpUrl, enforce: 'block' });
    const tracer = env.h.tracerProvider.getTracer('ai');
    await withUser({ id: 'telemetry-user', plan: 'free' }, () => ai.generateText({ model: openai.chat('gpt-4o-mini'), prompt: PROMPT, maxOutputTokens: 77, experimental_telemetry: { isEnabled: true, tracer } }));
    const leaf = env.h.finished().find((s) => s.name === 'ai.generateText.doGenerate')!;
    expect(leaf.attributes[ATTR_RESERVATION_ID]).toMatch(/^r_/);
    // The leaf span's identity settles the hold when the exporter commits it.
    const ctx = leaf.spanContext();
    expect(await reserved('telemetry-user')).toMatchObject({ requests: 1 });
    const body = otlpJson([{ traceId: ctx.traceId, spanId: ctx.spanId, user: 'telemetry-user', model: 'gpt-4o-mini', input: 5, output: 7 }]);
    expect((await postOtlp(exporter.otlpUrl, body)).status).toBe(200);
    expect(await reserved('telemetry-user')).toMatchObject({ requests: 0, tokens: 0 });
    env.h.reset();
    await seed('telemetry-full', 10);
    const err = await settle(withUser({ id: 'telemetry-full', plan: 'free' }, () => ai.generateText({ model: openai.chat('gpt-4o-mini'), prompt: PROMPT, experimental_telemetry: { isEnabled: true, tracer } })));
    expect(err).toBeInstanceOf(UsageLimitError);
    expect(env.h.finished().find((s) => s.name === 'ai.generateText.doGenerate')!.attributes[ATTR_RESERVATION_REFUSED]).toBe('requests');
    expect(env.mock.requests).toHaveLength(1);
  });
});

describe('embeddings with enforce: block', () => {
  const embeds: [string, () => Promise<unknown>, () => number][] = [
    ['Google Gen AI embedContent', () => google.models.embedContent({ model: 'gemini-embedding-001', contents: [PROMPT, 'again'] }), () => gemini.requests.length],
    ['AI SDK embedMany', () => ai.embedMany({ model: openai.embedding('text-embedding-3-small'), values: [PROMPT, 'again'] }), () => env.mock.requests.length],
  ];
  it.each(embeds)('%s: the hold is the input count alone (an embedding has no output); refused when the requests are used up', async (name, embed, received) => {
    configureEnforcement({ url: exporter.httpUrl, enforce: 'block' });
    const u = `${slug(name)}-embed`;
    await withUser({ id: u, plan: 'free' }, embed);
    expect(received()).toBe(1);
    const held = await reserved(u);
    expect(held.requests).toBe(1);
    // The local count of the two texts (joined as the SDK's adapter counts them), and no default output.
    expect([estimateTokens(PROMPT + 'again'), estimateTokens(`${PROMPT}\nagain`)]).toContain(held.tokens);
    await seed(u, 9);
    expect(await settle(withUser({ id: u, plan: 'free' }, embed))).toMatchObject({ limit: 'requests', used: 10 });
    expect(received()).toBe(1);
  });
});
