// OTLP/protobuf trace batches of realistic GenAI spans, made the way a real app makes them: spans from the OTel JS
// SDK (BasicTracerProvider) carrying the attributes tokenmeter's instrumentation writes, serialised by the real
// OTLP exporter's serializer (otlp-transformer ProtobufTraceSerializer). Deterministic choice of users, plans and
// models (seeded), random trace/span ids from the SDK (every span unique, so nothing is deduplicated).
import { SpanKind } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

// Names as tokenmeter's contract defines them (src/contract/names.ts); literal so that building payloads needs no dist/.
const A = {
  user: 'user.id',
  plan: 'tokenmeter.plan',
  feature: 'tokenmeter.feature',
  op: 'gen_ai.operation.name',
  provider: 'gen_ai.provider.name',
  reqModel: 'gen_ai.request.model',
  resModel: 'gen_ai.response.model',
  resId: 'gen_ai.response.id',
  finish: 'gen_ai.response.finish_reasons',
  input: 'gen_ai.usage.input_tokens',
  output: 'gen_ai.usage.output_tokens',
  cacheRead: 'gen_ai.usage.cache_read.input_tokens',
  cacheWrite: 'gen_ai.usage.cache_creation.input_tokens',
  reasoning: 'gen_ai.usage.reasoning.output_tokens',
  stream: 'gen_ai.request.stream',
  maxTokens: 'gen_ai.request.max_tokens',
  serverAddress: 'server.address',
  serverPort: 'server.port',
};

/** Models in tokenmeter's shipped catalog (each priced), as apps request them and providers answer. */
const MODELS = [
  { provider: 'openai', request: 'gpt-4o-mini', response: 'gpt-4o-mini-2024-07-18', host: 'api.openai.com' },
  { provider: 'openai', request: 'gpt-4o', response: 'gpt-4o-2024-08-06', host: 'api.openai.com' },
  { provider: 'openai', request: 'gpt-4.1-mini', response: 'gpt-4.1-mini-2025-04-14', host: 'api.openai.com' },
  { provider: 'openai', request: 'gpt-5-mini', response: 'gpt-5-mini-2025-08-07', host: 'api.openai.com', reasoning: true },
  { provider: 'openai', request: 'o4-mini', response: 'o4-mini-2025-04-16', host: 'api.openai.com', reasoning: true },
  { provider: 'anthropic', request: 'claude-haiku-4-5', response: 'claude-haiku-4-5-20251001', host: 'api.anthropic.com', cacheWrite: true },
  { provider: 'anthropic', request: 'claude-sonnet-4', response: 'claude-sonnet-4-20250514', host: 'api.anthropic.com', cacheWrite: true },
];
const PLANS = ['free', 'pro', 'team'];
const FEATURES = ['chat', 'summarise', 'search', 'agent'];

/** Mulberry32: small seeded PRNG so every run sends the same mix. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function userId(i) {
  return `user-${String(i).padStart(6, '0')}`;
}

/** Plan of user i: fixed per user, as in an app. */
export function planOf(i) {
  return PLANS[i % 3 === 0 ? 2 : i % 2];
}

/**
 * `batches` protobuf bodies of `batchSize` spans each, users drawn from `users` distinct ids.
 * Returns { bodies: Buffer[], spans: number, bytes: number }. `timeOf(k)` (epoch ms of span k, counted from
 * `firstSpan`) back-dates the spans (the ledger-scale benchmark spreads them over the billing period).
 */
export function makeBatches({ batches, batchSize = 512, users = 1000, seed = 1, userOffset = 0, sequentialUsers = false, firstSpan = 0, timeOf }) {
  const rand = rng(seed);
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'chat-api',
      'service.version': '2.3.1',
      'deployment.environment.name': 'production',
      'telemetry.sdk.language': 'nodejs',
      'telemetry.sdk.name': 'opentelemetry',
      'telemetry.sdk.version': '2.12.0',
      'host.name': 'app-7f9c',
    }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('tokenmeter', '0.1.0');
  const bodies = [];
  const traceIdOffsets = [];
  let bytes = 0;
  for (let b = 0; b < batches; b++) {
    for (let i = 0; i < batchSize; i++) {
      // sequentialUsers: span k goes to user k mod users (every user active once per `users` spans).
      const u = userOffset + (sequentialUsers ? (firstSpan + b * batchSize + i) % users : Math.floor(rand() * users));
      const m = MODELS[Math.floor(rand() * MODELS.length)];
      const input = 200 + Math.floor(rand() * 4000);
      const cacheRead = rand() < 0.3 ? Math.floor(input * 0.5) : 0;
      const cacheWrite = m.cacheWrite && rand() < 0.1 ? Math.floor(input * 0.2) : 0;
      const output = 20 + Math.floor(rand() * 800);
      const reasoning = m.reasoning ? Math.floor(output * 0.6) : 0;
      const attributes = {
        [A.op]: 'chat',
        [A.provider]: m.provider,
        [A.reqModel]: m.request,
        [A.resModel]: m.response,
        [A.resId]: `resp_${b}_${i}_${Math.floor(rand() * 1e9).toString(36)}`,
        [A.finish]: ['stop'],
        [A.input]: input,
        [A.output]: output,
        [A.stream]: rand() < 0.5,
        [A.maxTokens]: 1024,
        [A.serverAddress]: m.host,
        [A.serverPort]: 443,
        [A.user]: userId(u),
        [A.plan]: planOf(u),
        [A.feature]: FEATURES[Math.floor(rand() * FEATURES.length)],
      };
      if (cacheRead > 0) attributes[A.cacheRead] = cacheRead;
      if (cacheWrite > 0) attributes[A.cacheWrite] = cacheWrite;
      if (reasoning > 0) attributes[A.reasoning] = reasoning;
      const k = firstSpan + b * batchSize + i;
      const at = timeOf ? timeOf(k) : undefined;
      const span = tracer.startSpan(`chat ${m.request}`, at === undefined ? { kind: SpanKind.CLIENT, attributes } : { kind: SpanKind.CLIENT, attributes, startTime: at });
      span.end(at === undefined ? undefined : at + 850);
    }
    const spans = exporter.getFinishedSpans();
    exporter.reset();
    const body = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans));
    bytes += body.length;
    bodies.push(body);
    traceIdOffsets.push(traceIdOffsetsOf(body, spans));
  }
  return { bodies, spans: batches * batchSize, bytes, traceIdOffsets };
}

/** Where each span's 16 trace id bytes are in `body` (spans are serialised in order: each search starts after the last). */
function traceIdOffsetsOf(body, spans) {
  const out = new Int32Array(spans.length);
  let from = 0;
  spans.forEach((s, i) => {
    const id = Buffer.from(s.spanContext().traceId, 'hex');
    let at = body.indexOf(id, from);
    if (at < 0) at = body.indexOf(id);
    if (at < 0) throw new Error('payloads: a trace id is missing from its body');
    out[i] = at;
    from = at + 16;
  });
  return out;
}

/**
 * A copy of `body` whose spans all have new trace ids: the first 4 bytes of each (random) id XORed with `variant`
 * (≥ 1). Distinct variants of one body, and any variants of distinct bodies, carry distinct spans, so a pool of a
 * few dozen bodies (building one with the OTel SDK takes ~45 ms) feeds a deduplicating receiver indefinitely.
 */
export function withFreshTraceIds(body, offsets, variant) {
  if (!Number.isInteger(variant) || variant < 1 || variant > 0xffffffff) throw new RangeError('variant must be an integer in [1, 2^32)');
  const copy = Buffer.from(body);
  for (const at of offsets) copy.writeUInt32BE((copy.readUInt32BE(at) ^ variant) >>> 0, at);
  return copy;
}
