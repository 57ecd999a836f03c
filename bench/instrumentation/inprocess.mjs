// Diagnostic, not part of `npm run bench`: tokenmeter's added cost measured in ONE process, alternating batches
// with tokenmeter enabled and disabled (it patches and restores the SDK prototypes), so that other work on a
// shared machine disturbs both sides alike. Prints the fastest batch per side (wall and CPU µs per call).
// Usage: node bench/instrumentation/inprocess.mjs <openai|anthropic> [dist dir] [rounds]
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { cannedFetch, ANTHROPIC_USAGE, OPENAI_USAGE } from './canned.mjs';

const require = createRequire(import.meta.url);
const [provider = 'openai', distArg, roundsArg = '12'] = process.argv.slice(2);
const dist = distArg ?? fileURLToPath(new URL('../../dist', import.meta.url));
const rounds = Number(roundsArg);
const BATCH = Number(process.env.BENCH_BATCH ?? 200);

class PullReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}
const exporter = new InMemorySpanExporter();
const tracerProvider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
tracerProvider.register();
const reader = new PullReader();
// BENCH_NO_METRICS=1: no MeterProvider (tokenmeter's histograms are no-ops), to isolate what recording costs.
if (!process.env.BENCH_NO_METRICS) metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
if (provider === 'anthropic') process.env.ANTHROPIC_OPEN_TELEMETRY = 'false';
const tm = await import(pathToFileURL(`${dist}/instrumentation/index.js`).href);

let json;
let stream;
let sdk;
if (provider === 'openai') {
  sdk = require('openai');
  const client = new sdk.default({ apiKey: 'sk-bench', baseURL: 'http://127.0.0.1:9/v1', fetch: cannedFetch('openai'), maxRetries: 0 });
  const params = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say something short.' }], max_tokens: 64 };
  const sparams = { ...params, stream: true, stream_options: { include_usage: true } };
  json = () => client.chat.completions.create(params);
  stream = async () => {
    for await (const _ of await client.chat.completions.create(sparams));
  };
} else {
  sdk = require('@anthropic-ai/sdk');
  const client = new sdk.default({ apiKey: 'sk-ant-bench', baseURL: 'http://127.0.0.1:9', fetch: cannedFetch('anthropic'), maxRetries: 0 });
  const params = { model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Say something short.' }] };
  const sparams = { ...params, stream: true };
  json = () => client.messages.create(params);
  stream = async () => {
    for await (const _ of await client.messages.create(sparams));
  };
}

async function batch(fn) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < BATCH; i++) await fn();
  const wall = ((performance.now() - t0) * 1000) / BATCH;
  const c = process.cpuUsage(c0);
  exporter.reset();
  return [wall, (c.user + c.system) / BATCH];
}

const expected = provider === 'openai' ? OPENAI_USAGE : ANTHROPIC_USAGE;
const best = {};
const keep = (k, v) => {
  const b = (best[k] ??= [Infinity, Infinity]);
  b[0] = Math.min(b[0], v[0]);
  b[1] = Math.min(b[1], v[1]);
};
let instrumented = false;
const on = () => {
  tm.instrument(sdk);
  instrumented = true;
};
const off = () => {
  tm.disable();
  instrumented = false;
};
// Warm-up both ways.
for (let r = 0; r < 4; r++) {
  on();
  await batch(json);
  await batch(stream);
  off();
  await batch(json);
  await batch(stream);
}
for (let r = 0; r < rounds; r++) {
  for (const mode of ['json', 'stream']) {
    const fn = mode === 'json' ? json : stream;
    const order = r % 2 === 0 ? ['bare', 'tokenmeter'] : ['tokenmeter', 'bare'];
    for (const side of order) {
      if (side === 'tokenmeter' && !instrumented) on();
      if (side === 'bare' && instrumented) off();
      if (side === 'tokenmeter') {
        // Checked outside the timing: one span per call with the canned usage.
        await fn();
        const s = exporter.getFinishedSpans();
        const u = expected[mode];
        if (s.length !== 1 || s[0].attributes['gen_ai.usage.input_tokens'] !== u.input || s[0].attributes['gen_ai.usage.output_tokens'] !== u.output) {
          throw new Error(`tokenmeter ${mode}: expected one span with usage ${JSON.stringify(u)}`);
        }
        exporter.reset();
      }
      keep(`${side}/${mode}`, await batch(fn));
    }
  }
}
const names = process.env.BENCH_NO_METRICS ? [] : (await reader.collect()).resourceMetrics.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.descriptor.name));
for (const mode of ['json', 'stream']) {
  const b = best[`bare/${mode}`];
  const t = best[`tokenmeter/${mode}`];
  console.log(
    `${provider} ${mode.padEnd(6)} bare ${b[0].toFixed(1)} µs (cpu ${b[1].toFixed(1)})  tokenmeter ${t[0].toFixed(1)} (cpu ${t[1].toFixed(1)})  added ${(t[0] - b[0]).toFixed(1)} (cpu ${(t[1] - b[1]).toFixed(1)})`,
  );
}
console.log(`metrics: ${[...new Set(names)].join(', ') || 'none'}`);
