// Diagnostic, not part of `npm run bench`: tokenmeter's own per-call path, without the SDK's request work. The
// Anthropic SDK's messages.create is replaced by one that returns a real APIPromise whose response is already
// there (no fetch, headers or body stream), so that what is left is what an instrumentation adds around it:
// a few µs, measured in CPU time with far less noise than whole SDK calls on a loaded machine. Sides, in rotating
// rounds in one process: bare (that APIPromise), floor (the bench's one bare span per call) and the builds given.
// Usage: node bench/instrumentation/call-path.mjs <dist dir> [<dist dir> ...]
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { context, metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
const require = createRequire(import.meta.url);
const dists = process.argv.slice(2);
class PullReader extends MetricReader { async onForceFlush() {} async onShutdown() {} }
const exporter = new InMemorySpanExporter();
const tp = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
tp.register();
process.env.ANTHROPIC_OPEN_TELEMETRY = 'false';
const copies = {};
for (const [i, d] of dists.entries()) copies[`b${i}`] = await import(pathToFileURL(`${d}/instrumentation/index.js`).href);
const producers = Object.values(copies).map((m) => m.tokenmeterMetricProducer());
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PullReader({ metricProducers: producers })] }));
context.with(context.active(), () => {});
const sdk = require('@anthropic-ai/sdk');
const { APIPromise } = require('@anthropic-ai/sdk/core/api-promise');
const proto = sdk.Anthropic.Messages.prototype;
const body = '{"id":"msg_01","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[{"type":"text","text":"The quick brown fox."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":42,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":20,"service_tier":"standard"}}';
const client = new sdk.default({ apiKey: 'k', baseURL: 'http://127.0.0.1:9' });
const props = { response: { headers: new Headers() }, options: {} };
proto.create = function create() {
  return new APIPromise(this._client, Promise.resolve(props), async () => JSON.parse(body));
};
const sdkCreate = proto.create;
const floorTracer = tp.getTracer('floor');
function floorCreate(...args) {
  const span = floorTracer.startSpan('chat');
  const p = sdkCreate.apply(this, args);
  p.then(() => span.end(), () => span.end());
  return p;
}
const params = { model: 'claude-haiku-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Say something short.' }] };
let current = 'bare';
function use(side) {
  if (side === current) return;
  copies[current]?.disable();
  if (current === 'floor') proto.create = sdkCreate;
  copies[side]?.instrument(sdk);
  if (side === 'floor') proto.create = floorCreate;
  current = side;
}
const sides = ['bare', 'floor', ...Object.keys(copies)];
const N = 500;
const res = {};
for (let r = 0; r < 150; r++) {
  const order = sides.map((_, i) => sides[(i + r) % sides.length]);
  for (const side of order) {
    use(side);
    const c0 = process.cpuUsage();
    for (let i = 0; i < N; i++) await client.messages.create(params);
    const c = process.cpuUsage(c0);
    if (r >= 10) (res[side] ??= []).push((c.user + c.system) / N);
    exporter.reset();
  }
}
const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
console.log(`Node ${process.version}, CPU µs per call, ${N} calls per round, 140 rounds counted`);
for (const side of sides) {
  const xs = res[side];
  const paired = med(xs.map((x, i) => x - res.bare[i]));
  console.log(side.padEnd(6), 'min', Math.min(...xs).toFixed(2), 'med', med(xs).toFixed(2), 'paired added', paired.toFixed(2), dists[Number(side.slice(1))] ?? '');
}
