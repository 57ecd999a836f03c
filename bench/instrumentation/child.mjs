// One instrumentation variant in its own process: warm-up, then timed batches of sequential SDK calls against a
// canned `fetch`, non-streaming and 20-chunk streams. Checks that the variant produced spans with the usage the
// canned responses report. Args: <provider> <variant> <warmup> <batches> <batchSize>
// BENCH_DEPS_DIR: a directory (bench/lib/deps.mjs) whose packages win over the project's: the newest SDKs, peer
// instrumentations and OpenTelemetry SDK line (3.x, which has one TracerProvider and no NodeTracerProvider).
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { childMain } from '../lib/child.mjs';
import { median } from '../lib/stats.mjs';
import { ANTHROPIC_USAGE, OPENAI_USAGE, cannedFetch } from './canned.mjs';

const projectRequire = createRequire(import.meta.url);
const depsDir = process.env.BENCH_DEPS_DIR;
const depsRequire = depsDir ? createRequire(join(depsDir, 'package.json')) : undefined;
/** A package from BENCH_DEPS_DIR when it holds it, else the project's. */
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
function hasDep(name) {
  try {
    depsRequire?.resolve(name);
    return depsRequire !== undefined;
  } catch {
    return false;
  }
}
/** The version of the package `require(name)` loads (some packages do not export their package.json). */
function pkgVersion(name) {
  let dir = dirname((depsRequire && hasDep(name) ? depsRequire : projectRequire).resolve(name));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8'));
      if (pkg.name === name) return pkg.version;
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}
const { context, metrics, trace } = require('@opentelemetry/api');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { MeterProvider, MetricReader } = require('@opentelemetry/sdk-metrics');
// OpenTelemetry JS 3.x merged sdk-trace-base and sdk-trace-node into @opentelemetry/sdk-trace.
const otel3 = hasDep('@opentelemetry/sdk-trace');
const { BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor } = require(otel3 ? '@opentelemetry/sdk-trace' : '@opentelemetry/sdk-trace-base');
const notes = [];
const [provider, variant, warmupArg, batchesArg, batchSizeArg] = process.argv.slice(2);
const warmup = Number(warmupArg);
const batches = Number(batchesArg);
const batchSize = Number(batchSizeArg);

/** A tracer provider as an app on this OpenTelemetry line makes one. */
function makeTracerProvider(processor) {
  if (otel3) return new (require('@opentelemetry/sdk-trace').TracerProvider)({ spanProcessors: [processor] });
  return new (require('@opentelemetry/sdk-trace-node').NodeTracerProvider)({ spanProcessors: [processor] });
}

/** Global registration with async context propagation, as NodeTracerProvider.register() does on the 2.x line. */
function registerTracerProvider(tracerProvider) {
  if (!otel3) {
    tracerProvider.register();
    return;
  }
  const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tracerProvider);
}

class PullReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

/** tokenmeter's built instrumentation entry point. */
function tokenmeterModule() {
  // BENCH_TOKENMETER_DIST: another build's dist/ (comparing two versions in one run); the bench never sets it.
  const dist = process.env.BENCH_TOKENMETER_DIST;
  return import(dist ? pathToFileURL(`${dist}/instrumentation/index.js`).href : '../../dist/instrumentation/index.js');
}

/**
 * The metric reader. For `tokenmeter`, with tokenmeter's MetricProducer on it, as tokenmeter/register puts one on
 * each of its readers (its GenAI histograms then skip the SDK's per-record attribute hashing). The diagnostic
 * `tokenmeter-sdkhist` is an app's own MeterProvider without it: the histograms go through the SDK.
 */
async function makeReader() {
  if (variant === 'tokenmeter') {
    const tm = await tokenmeterModule();
    // An older build (BENCH_TOKENMETER_DIST) may not have it: then it records through the SDK, as it did.
    if (typeof tm.tokenmeterMetricProducer === 'function') return new PullReader({ metricProducers: [tm.tokenmeterMetricProducer()] });
  }
  return new PullReader();
}

/** Enables the variant's instrumentation (before the SDK is required, as in an app), returns a description. */
async function setUpVariant(tracerProvider, meterProvider) {
  // The Anthropic SDK (1.x) records its own OTel spans through the global tracer provider unless told not to;
  // only the `sdk-builtin` variant measures that. tokenmeter switches it off by itself, the others need it off
  // too or every call would produce two spans.
  if (provider === 'anthropic' && variant !== 'sdk-builtin') process.env.ANTHROPIC_OPEN_TELEMETRY = 'false';
  let instrumentations = [];
  let version = '';
  switch (variant) {
    case 'bare':
    case 'sdk-builtin':
      break;
    case 'bare-context':
      // Diagnostic floor: the bare SDK once Node's async context tracking is on. Any variant that ends a span
      // switches it on (SimpleSpanProcessor exports inside `context.with`); from then on every promise pays for it.
      context.with(context.active(), () => {});
      break;
    case 'span-floor': {
      // Diagnostic floor: what any span-producing instrumentation pays at least. One span per call with no
      // attributes, no usage and no metrics, patched on the prototype as instrumentations do. It ends when the
      // call ends: for a non-streaming call when the SDK's promise settles; for a stream when the caller has read
      // it to its end (a span that carries the stream's usage cannot end before its last chunk). The stream's end
      // is signalled by the bench's loop (endFloorSpan), so the floor observes no chunk: a lower bound.
      const tracer = tracerProvider.getTracer('span-floor');
      const proto = provider === 'openai' ? require('openai').OpenAI.Chat.Completions.prototype : require('@anthropic-ai/sdk').Anthropic.Messages.prototype;
      const original = proto.create;
      proto.create = function create(...args) {
        const span = tracer.startSpan('chat');
        const promise = original.apply(this, args);
        promise.then(
          (result) => {
            if (result !== null && typeof result === 'object' && typeof result[Symbol.asyncIterator] === 'function') floorSpans.set(result, span);
            else span.end();
          },
          () => span.end(),
        );
        return promise;
      };
      break;
    }
    case 'tokenmeter-noop':
    case 'tokenmeter-nometrics':
    case 'tokenmeter-sdkhist':
    case 'tokenmeter': {
      const tm = await tokenmeterModule();
      instrumentations = tm.tokenmeterInstrumentations();
      version = projectRequire('../../package.json').version;
      break;
    }
    case 'otel-contrib': {
      const { OpenAIInstrumentation } = require('@opentelemetry/instrumentation-openai');
      instrumentations = [new OpenAIInstrumentation()];
      version = pkgVersion('@opentelemetry/instrumentation-openai');
      break;
    }
    case 'traceloop': {
      if (provider === 'openai') {
        const { OpenAIInstrumentation } = require('@traceloop/instrumentation-openai');
        instrumentations = [new OpenAIInstrumentation()];
        version = pkgVersion('@traceloop/instrumentation-openai');
      } else {
        // 0.27 patches `Anthropic.Completions.prototype`, which @anthropic-ai/sdk 1.x no longer has: its require
        // hook throws and the app's `require('@anthropic-ai/sdk')` fails. To measure its per-call cost anyway,
        // its Messages wrapper is applied through `manuallyInstrument` with a stand-in for the missing class.
        const { AnthropicInstrumentation } = require('@traceloop/instrumentation-anthropic');
        const inst = new AnthropicInstrumentation({ enabled: false });
        inst.setTracerProvider(tracerProvider);
        const sdk = require('@anthropic-ai/sdk');
        const shim = { ...sdk, Anthropic: { Completions: { prototype: { create() {} } }, Messages: sdk.Anthropic.Messages, Beta: sdk.Anthropic.Beta } };
        inst.manuallyInstrument(shim);
        version = `${pkgVersion('@traceloop/instrumentation-anthropic')} (shimmed)`;
        notes.push('@traceloop/instrumentation-anthropic 0.27 throws when @anthropic-ai/sdk 1.13 is required (it patches Anthropic.Completions, removed in 1.x); measured through manuallyInstrument with a stand-in class');
      }
      break;
    }
    default:
      throw new Error(`unknown variant ${variant}`);
  }
  // tokenmeter-nometrics (diagnostic): no MeterProvider, so the GenAI histograms are no-ops; isolates their cost.
  // tokenmeter-noop (diagnostic): no providers at all (no-op spans and histograms); isolates tokenmeter's own code.
  if (variant === 'tokenmeter-noop') registerInstrumentations({ instrumentations });
  else if (instrumentations.length > 0) registerInstrumentations(variant === 'tokenmeter-nometrics' ? { instrumentations, tracerProvider } : { instrumentations, tracerProvider, meterProvider });
  return version;
}

function makeClient() {
  if (provider === 'openai') {
    const { default: OpenAI } = require('openai');
    return new OpenAI({ apiKey: 'sk-bench', baseURL: 'http://127.0.0.1:9/v1', fetch: cannedFetch('openai'), maxRetries: 0 });
  }
  const { default: Anthropic } = require('@anthropic-ai/sdk');
  return new Anthropic({ apiKey: 'sk-ant-bench', baseURL: 'http://127.0.0.1:9', fetch: cannedFetch('anthropic'), maxRetries: 0 });
}

/** The span-floor variant's open span of each stream, ended once the stream has been read to its end. */
const floorSpans = new WeakMap();
function endFloorSpan(stream) {
  const span = floorSpans.get(stream);
  if (span !== undefined) {
    floorSpans.delete(stream);
    span.end();
  }
}

function makeCall(client, stream) {
  const floor = variant === 'span-floor';
  if (provider === 'openai') {
    const params = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say something short.' }], max_tokens: 64 };
    if (!stream) return async () => client.chat.completions.create(params);
    const sparams = { ...params, stream: true, stream_options: { include_usage: true } };
    return async () => {
      let n = 0;
      const s = await client.chat.completions.create(sparams);
      for await (const chunk of s) n += chunk ? 1 : 0;
      if (floor) endFloorSpan(s);
      return n;
    };
  }
  const params = { model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Say something short.' }] };
  if (!stream) return async () => client.messages.create(params);
  const sparams = { ...params, stream: true };
  return async () => {
    let n = 0;
    const s = await client.messages.create(sparams);
    for await (const event of s) n += event ? 1 : 0;
    if (floor) endFloorSpan(s);
    return n;
  };
}

const INPUT_KEYS = ['gen_ai.usage.input_tokens', 'gen_ai.usage.prompt_tokens', 'llm.usage.prompt_tokens'];
const OUTPUT_KEYS = ['gen_ai.usage.output_tokens', 'gen_ai.usage.completion_tokens', 'llm.usage.completion_tokens'];

/** What the spans of one batch say: spans per call, and whether every call's span carries the real usage. */
function inspectSpans(spans, calls, expected) {
  let withUsage = 0;
  let wrongUsage = 0;
  const usageKeys = new Set();
  for (const s of spans) {
    const a = s.attributes;
    const inKey = INPUT_KEYS.find((k) => typeof a[k] === 'number');
    const outKey = OUTPUT_KEYS.find((k) => typeof a[k] === 'number');
    if (inKey === undefined || outKey === undefined) continue;
    usageKeys.add(inKey).add(outKey);
    if (a[inKey] === expected.input && a[outKey] === expected.output) withUsage++;
    else wrongUsage++;
  }
  return {
    spans: spans.length,
    calls,
    spanNames: [...new Set(spans.map((s) => s.name))],
    spansWithUsage: withUsage,
    spansWithWrongUsage: wrongUsage,
    usageKeys: [...usageKeys],
  };
}

async function measure(call, exporter, expected, flush) {
  for (let i = 0; i < warmup; i++) {
    await call();
    if (i % 256 === 255) exporter.reset();
  }
  await flush();
  exporter.reset();
  const perCall = [];
  const cpuPerCall = [];
  let check;
  for (let b = 0; b < batches; b++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < batchSize; i++) await call();
    const elapsed = performance.now() - t0;
    const cpu = process.cpuUsage(c0);
    perCall.push((elapsed * 1000) / batchSize);
    // CPU time of this process (user + system): less disturbed by other work on the machine than wall time.
    cpuPerCall.push((cpu.user + cpu.system) / batchSize);
    // Checked on every batch (outside the timing); the last one is reported.
    await flush();
    check = inspectSpans(exporter.getFinishedSpans(), batchSize, expected);
    exporter.reset();
  }
  // The machine may be shared: interference only ever adds time, so the fastest batch is the process's figure
  // (the median of its batches is kept too).
  return { perCallMicros: Math.min(...perCall), medianBatchMicros: median(perCall), batchesMicros: perCall, cpuPerCallMicros: Math.min(...cpuPerCall), check };
}

childMain(async () => {
  const exporter = new InMemorySpanExporter();
  // BENCH_SPAN_PROCESSOR=batch (diagnostic, compare.mjs --span-processor=batch): the BatchSpanProcessor that
  // NodeSDK and tokenmeter/register use in production, flushed before each batch's check (outside the timing).
  const batch = process.env.BENCH_SPAN_PROCESSOR === 'batch';
  // The 3.x line takes the exporter inside the options object.
  const processor = batch
    ? otel3 ? new BatchSpanProcessor({ exporter, maxQueueSize: 4096 }) : new BatchSpanProcessor(exporter, { maxQueueSize: 4096 })
    : otel3 ? new SimpleSpanProcessor({ exporter }) : new SimpleSpanProcessor(exporter);
  const tracerProvider = makeTracerProvider(processor);
  const flush = () => processor.forceFlush();
  if (variant !== 'tokenmeter-noop') registerTracerProvider(tracerProvider);
  const reader = await makeReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  if (variant !== 'tokenmeter-nometrics' && variant !== 'tokenmeter-noop') metrics.setGlobalMeterProvider(meterProvider);
  const version = await setUpVariant(tracerProvider, meterProvider);
  const client = makeClient();
  const usage = provider === 'openai' ? OPENAI_USAGE : ANTHROPIC_USAGE;
  // BENCH_INSTR_MODES=json or =stream (profiling one mode) skips the other; the full bench always runs both.
  const modes = process.env.BENCH_INSTR_MODES ?? 'json,stream';
  const skipped = { perCallMicros: NaN, medianBatchMicros: NaN, batchesMicros: [], check: inspectSpans([], 0, usage.json) };
  const json = modes.includes('json') ? await measure(makeCall(client, false), exporter, usage.json, flush) : skipped;
  const stream = modes.includes('stream') ? await measure(makeCall(client, true), exporter, usage.stream, flush) : skipped;
  const collected = await reader.collect();
  const metricNames = new Set();
  // Data points recorded per metric (cumulative over the whole process), to check that recording kept up with the
  // calls: a GenAI instrumentation records one duration and two token-usage points (input, output) per call.
  const metricCounts = {};
  for (const sm of collected.resourceMetrics.scopeMetrics) {
    for (const m of sm.metrics) {
      metricNames.add(m.descriptor.name);
      for (const dp of m.dataPoints) metricCounts[m.descriptor.name] = (metricCounts[m.descriptor.name] ?? 0) + (dp.value?.count ?? 0);
    }
  }
  const calls = { json: modes.includes('json') ? warmup + batches * batchSize : 0, stream: modes.includes('stream') ? warmup + batches * batchSize : 0 };
  let metricsEveryCall = null;
  if (variant === 'tokenmeter' || variant === 'tokenmeter-sdkhist') {
    const all = calls.json + calls.stream;
    metricsEveryCall =
      metricCounts['gen_ai.client.operation.duration'] === all &&
      metricCounts['gen_ai.client.token.usage'] === 2 * all &&
      metricCounts['gen_ai.client.operation.time_to_first_chunk'] === calls.stream;
  }
  const sdkVersion = pkgVersion(provider === 'openai' ? 'openai' : '@anthropic-ai/sdk');
  const otelVersion = pkgVersion(otel3 ? '@opentelemetry/sdk-trace' : '@opentelemetry/sdk-trace-base');
  return { provider, variant, version, sdkVersion, otelVersion, node: process.version, notes, json, stream, metricNames: [...metricNames], metricCounts, calls, metricsEveryCall, pid: process.pid };
});
