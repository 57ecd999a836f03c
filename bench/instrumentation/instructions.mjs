// Diagnostic, not part of `npm run bench`: one side of inprocess.mjs (bare, floor, tokenmeter or another build)
// alone, for a run under valgrind's callgrind, which counts the instructions executed whatever the machine's load
// (a loaded machine makes CPU-time differences of a few µs unresolvable). Each side runs in its own process with
// the same set-up, warm-up (4 x --batch calls) and --rounds x --batch calls; two processes per side with different
// --rounds give its instructions per call with the start-up and the one-off JIT work cancelled out:
//   BENCH_DEPS_DIR=bench/.deps/newest valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=/dev/null \
//     ~/.cache/tokenmeter/node/24.22.3/bin/node bench/instrumentation/instructions.mjs anthropic --side=tokenmeter --rounds=10
//   (then --rounds=30; per call = (Collected(30) - Collected(10)) / (20 x 200); compare the sides' per-call counts).
// --side=other1 with --other=<dist dir> runs another build (e.g. a copy of the previous dist/ under bench/.deps/).
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { cannedFetch, ANTHROPIC_USAGE, OPENAI_USAGE } from './canned.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    other: { type: 'string' },
    rounds: { type: 'string', default: '30' },
    batch: { type: 'string', default: '200' },
    modes: { type: 'string', default: 'json,stream' },
    side: { type: 'string', default: 'tokenmeter' },
    dist: { type: 'string' },
  },
});
const provider = positionals[0] ?? 'openai';
const dist = values.dist ?? fileURLToPath(new URL('../../dist', import.meta.url));
const rounds = Number(values.rounds);
const BATCH = Number(values.batch);
const modes = values.modes.split(',');
// --other=<dir>[,<dir>...]: other builds, measured as the sides other1, other2, ...
const otherDirs = values.other ? values.other.split(',') : [];
const otherIds = otherDirs.map((_, i) => `other${i + 1}`);

const projectRequire = createRequire(import.meta.url);
const depsRequire = process.env.BENCH_DEPS_DIR ? createRequire(join(resolve(process.env.BENCH_DEPS_DIR), 'package.json')) : undefined;
function require(name) {
  if (depsRequire) {
    try {
      return depsRequire(name);
    } catch (err) {
      if (err?.code !== 'MODULE_NOT_FOUND') throw err;
    }
  }
  return projectRequire(name);
}
// OpenTelemetry JS 3.x merged sdk-trace-base and sdk-trace-node into @opentelemetry/sdk-trace.
function hasDep(name) {
  try {
    return depsRequire?.resolve(name) !== undefined;
  } catch {
    return false;
  }
}
const otel3 = hasDep('@opentelemetry/sdk-trace');
const { context, metrics, trace } = require('@opentelemetry/api');
const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics');
const { InMemorySpanExporter, SimpleSpanProcessor } = require(otel3 ? '@opentelemetry/sdk-trace' : '@opentelemetry/sdk-trace-base');

class PullReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}
const exporter = new InMemorySpanExporter();
const processor = otel3 ? new SimpleSpanProcessor({ exporter }) : new SimpleSpanProcessor(exporter);
let tracerProvider;
if (otel3) {
  tracerProvider = new (require('@opentelemetry/sdk-trace').TracerProvider)({ spanProcessors: [processor] });
  const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tracerProvider);
} else {
  tracerProvider = new (require('@opentelemetry/sdk-trace-node').NodeTracerProvider)({ spanProcessors: [processor] });
  tracerProvider.register();
}
if (provider === 'anthropic') process.env.ANTHROPIC_OPEN_TELEMETRY = 'false';
const tm = await import(pathToFileURL(`${dist}/instrumentation/index.js`).href);
const copies = { tokenmeter: tm };
for (let i = 0; i < otherDirs.length; i++) copies[otherIds[i]] = await import(pathToFileURL(`${otherDirs[i]}/instrumentation/index.js`).href);
// One producer per copy on the reader (as tokenmeter/register puts one on each reader); an older build without
// it records through the SDK's histograms.
const producers = Object.values(copies).filter((m) => typeof m.tokenmeterMetricProducer === 'function').map((m) => m.tokenmeterMetricProducer());
const reader = new PullReader({ metricProducers: producers });
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));

let json;
let stream;
let sdk;
let proto;
if (provider === 'openai') {
  sdk = require('openai');
  proto = sdk.OpenAI.Chat.Completions.prototype;
  const client = new sdk.default({ apiKey: 'sk-bench', baseURL: 'http://127.0.0.1:9/v1', fetch: cannedFetch('openai'), maxRetries: 0 });
  const params = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say something short.' }], max_tokens: 64 };
  const sparams = { ...params, stream: true, stream_options: { include_usage: true } };
  json = () => client.chat.completions.create(params);
  stream = async () => {
    for await (const _ of await client.chat.completions.create(sparams));
  };
} else {
  sdk = require('@anthropic-ai/sdk');
  proto = sdk.Anthropic.Messages.prototype;
  const client = new sdk.default({ apiKey: 'sk-ant-bench', baseURL: 'http://127.0.0.1:9', fetch: cannedFetch('anthropic'), maxRetries: 0 });
  const params = { model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Say something short.' }] };
  const sparams = { ...params, stream: true };
  json = () => client.messages.create(params);
  stream = async () => {
    for await (const _ of await client.messages.create(sparams));
  };
}

// The bench's `span-floor` variant: one span per call, no attributes, ended when the SDK's promise settles.
const floorTracer = tracerProvider.getTracer('span-floor');
const sdkCreate = proto.create;
function floorCreate(...args) {
  const span = floorTracer.startSpan('chat');
  const promise = sdkCreate.apply(this, args);
  promise.then(
    () => span.end(),
    () => span.end(),
  );
  return promise;
}

let current = 'bare';
function use(side) {
  if (side === current) return;
  copies[current]?.disable();
  if (current === 'floor') proto.create = sdkCreate;
  copies[side]?.instrument(sdk);
  if (side === 'floor') proto.create = floorCreate;
  current = side;
}

async function batch(fn) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < BATCH; i++) await fn();
  const wall = ((performance.now() - t0) * 1000) / BATCH;
  const c = process.cpuUsage(c0);
  exporter.reset();
  return { wall, cpu: (c.user + c.system) / BATCH };
}

// Async context tracking on from the start (any span export switches it on for the process).
context.with(context.active(), () => {});
use(values.side);
for (let r = 0; r < 4 + rounds; r++) {
  for (const mode of modes) await batch(mode === 'json' ? json : stream);
}
// Checked after the counted calls (the same for every --rounds): one span per call with the canned usage.
const expected = provider === 'openai' ? OPENAI_USAGE : ANTHROPIC_USAGE;
for (const mode of modes) {
  if (copies[values.side] === undefined) break;
  await (mode === 'json' ? json : stream)();
  const s = exporter.getFinishedSpans();
  const u = expected[mode];
  if (s.length !== 1 || s[0].attributes['gen_ai.usage.input_tokens'] !== u.input || s[0].attributes['gen_ai.usage.output_tokens'] !== u.output) {
    throw new Error(`${values.side} ${mode}: expected one span with usage ${JSON.stringify(u)}`);
  }
  exporter.reset();
}
use('bare');
console.log(`${values.side}: ${(4 + rounds) * BATCH} calls per mode done`);
