// Diagnostic, not part of `npm run bench`: tokenmeter's added CPU cost per call measured in ONE process, in
// alternating rounds of the bare SDK, the one-bare-span floor, tokenmeter and (with --other) another build of
// tokenmeter (tokenmeter patches and restores the SDK prototypes, so the sides take turns on the same SDK objects).
// Other work on a shared machine then disturbs every side alike, and CPU time (`process.cpuUsage()`) is counted
// rather than wall time. Set up as the bench's child processes are: the same canned `fetch`, a SimpleSpanProcessor
// into an InMemorySpanExporter, and a MeterProvider whose reader carries tokenmeter's MetricProducer.
//
// Usage: node bench/instrumentation/inprocess.mjs <openai|anthropic> [--other=<dist dir>] [--rounds=30]
//          [--batch=200] [--modes=json,stream] [--sides=bare,floor,tokenmeter,other]
// With BENCH_DEPS_DIR (see child.mjs) it loads the SDKs and the OpenTelemetry line from there (e.g. on Node 24:
// `BENCH_DEPS_DIR=bench/.deps/newest ~/.cache/tokenmeter/node/24.22.3/bin/node bench/instrumentation/inprocess.mjs anthropic`).
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
    sides: { type: 'string' },
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
const sides = (values.sides ?? ['bare', 'floor', 'tokenmeter', ...otherIds].join(',')).split(',');
// Every figure is relative to the bare SDK in the same rounds.
if (!sides.includes('bare')) sides.unshift('bare');

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
    const s = await client.chat.completions.create(sparams);
    for await (const _ of s);
    endFloorSpan(s);
  };
} else {
  sdk = require('@anthropic-ai/sdk');
  proto = sdk.Anthropic.Messages.prototype;
  const client = new sdk.default({ apiKey: 'sk-ant-bench', baseURL: 'http://127.0.0.1:9', fetch: cannedFetch('anthropic'), maxRetries: 0 });
  const params = { model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Say something short.' }] };
  const sparams = { ...params, stream: true };
  json = () => client.messages.create(params);
  stream = async () => {
    const s = await client.messages.create(sparams);
    for await (const _ of s);
    endFloorSpan(s);
  };
}

// The bench's `span-floor` variant: one span per call, no attributes, ended when the SDK's promise settles or,
// for a stream, once it has been read to its end (see child.mjs).
const floorTracer = tracerProvider.getTracer('span-floor');
const sdkCreate = proto.create;
const floorSpans = new WeakMap();
function floorCreate(...args) {
  const span = floorTracer.startSpan('chat');
  const promise = sdkCreate.apply(this, args);
  promise.then(
    (result) => {
      if (result !== null && typeof result === 'object' && typeof result[Symbol.asyncIterator] === 'function') floorSpans.set(result, span);
      else span.end();
    },
    () => span.end(),
  );
  return promise;
}
function endFloorSpan(stream) {
  const span = floorSpans.get(stream);
  if (span !== undefined) {
    floorSpans.delete(stream);
    span.end();
  }
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

const expected = provider === 'openai' ? OPENAI_USAGE : ANTHROPIC_USAGE;
const runs = {};
// Async context tracking on from the start for every side (any span export switches it on for the process).
context.with(context.active(), () => {});
for (let r = 0; r < 4; r++) {
  for (const side of sides) {
    use(side);
    for (const mode of modes) await batch(mode === 'json' ? json : stream);
  }
}
for (let r = 0; r < rounds; r++) {
  for (const mode of modes) {
    const fn = mode === 'json' ? json : stream;
    // A different order each round (rotated), so that no side always follows the same one.
    const order = sides.map((_, i) => sides[(i + r) % sides.length]);
    if (r % 2 === 1) order.reverse();
    for (const side of order) {
      use(side);
      // (BENCH_NO_CHECK=1 for builds with a part cut out on purpose, to measure what that part costs.)
      if (copies[side] !== undefined && !process.env.BENCH_NO_CHECK) {
        // Checked outside the timing: one span per call with the canned usage.
        await fn();
        const s = exporter.getFinishedSpans();
        const u = expected[mode];
        if (s.length !== 1 || s[0].attributes['gen_ai.usage.input_tokens'] !== u.input || s[0].attributes['gen_ai.usage.output_tokens'] !== u.output) {
          throw new Error(`${side} ${mode}: expected one span with usage ${JSON.stringify(u)}`);
        }
        exporter.reset();
      }
      (runs[`${side}/${mode}`] ??= []).push(await batch(fn));
    }
  }
}
use('bare');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f = (x) => x.toFixed(1).padStart(6);
console.log(`${provider} on Node ${process.version}, OpenTelemetry ${otel3 ? '3.x' : '2.x'} line; ${rounds} rounds of ${BATCH} calls per side; µs per call`);
// "paired": the median over rounds of (side − bare) within the same round, the steadiest of these estimates on a
// loaded machine (a slow stretch lands on the batches next to each other).
console.log('side/mode            cpu min (added)   cpu median (added)   cpu paired added   wall min (added)');
for (const mode of modes) {
  const bare = runs[`bare/${mode}`];
  const bMin = Math.min(...bare.map((b) => b.cpu));
  const bMed = median(bare.map((b) => b.cpu));
  const bWall = Math.min(...bare.map((b) => b.wall));
  for (const side of sides) {
    const rs = runs[`${side}/${mode}`];
    const cMin = Math.min(...rs.map((b) => b.cpu));
    const cMed = median(rs.map((b) => b.cpu));
    const paired = median(rs.map((b, i) => b.cpu - bare[i].cpu));
    const wMin = Math.min(...rs.map((b) => b.wall));
    console.log(`${`${side}/${mode}`.padEnd(20)} ${f(cMin)} (${f(cMin - bMin)})   ${f(cMed)} (${f(cMed - bMed)})      ${f(paired)}       ${f(wMin)} (${f(wMin - bWall)})`);
  }
}
const names = (await reader.collect()).resourceMetrics.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.descriptor.name));
console.log(`metrics: ${[...new Set(names)].join(', ') || 'none'}`);
