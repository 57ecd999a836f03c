// Admission control (issue 16): what `enforce: 'block'` adds to an LLM call, and how many reservations per second
// the exporter answers on the embedded ledger. Not part of `npm run bench` (yet): run
//   npm run build && node bench/reservations/run.mjs [--quick] [--users=100] [--calls=20000] [--seconds=5]
// Part 1: the real `openai` client with a canned `fetch` (no network), tokenmeter's instrumentation with a real
// tracer provider, 100 concurrent users each making calls one after another; per-call latency with enforce `off`
// vs `block` (the exporter, a real `tokenmeter serve`-equivalent in a child process, on loopback), and the bare SDK.
// Part 2: POST /api/v1/reservations from a load process (keep-alive, N concurrent), and ReservationService.reserve
// in process (no HTTP), on the embedded journal ledger.
import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')).map(([k, v]) => [k, v ?? 'true']));
const quick = args.quick === 'true';
const USERS = Number(args.users ?? 100);
const CALLS = Number(args.calls ?? (quick ? 1000 : 20000));
const SECONDS = Number(args.seconds ?? (quick ? 1 : 5));
const self = fileURLToPath(import.meta.url);
const dist = new URL('../../dist/', import.meta.url);

const BENCH_CONFIG = {
  // No limits: every reservation is granted and held (the work of a decision is the same either way).
  plans: { bench: { default: true } },
  reservations: { ttl: '10m' },
  ledger: { refresh_interval: '0s' },
};

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), p99: quantile(s, 0.99) };
}

// ----------------------------------------------------------------------------------------------- exporter process
if (args.role === 'exporter') {
  const { startExporter } = await import(new URL('exporter/index.js', dist));
  const e = await startExporter({
    storage: join(mkdtempSync(join(tmpdir(), 'tm-bench-res-')), 'ledger'),
    host: '127.0.0.1',
    otlpPort: 0,
    httpPort: 0,
    log: () => {},
    config: BENCH_CONFIG,
  });
  process.send({ httpUrl: e.httpUrl, otlpUrl: e.otlpUrl });
  process.on('message', async (m) => {
    // CPU time is what the machine's load cannot inflate: microseconds of exporter CPU per reservation.
    if (m === 'cpu') process.send({ cpu: process.cpuUsage() });
    if (m === 'stop') {
      await e.close();
      process.exit(0);
    }
  });
} else if (args.role === 'load') {
  // ----------------------------------------------------------------------------------------------- HTTP load process
  const { Agent, request } = await import('node:http');
  const url = new URL('/api/v1/reservations', args.url);
  const agent = new Agent({ keepAlive: true, maxSockets: Number(args.concurrency) });
  let answered = 0;
  let granted = 0;
  const end = performance.now() + SECONDS * 1000;
  const one = (i) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ user: `load-${i % 1000}`, plan: 'bench', provider: 'openai', model: 'gpt-4o-mini', input_tokens: 120, max_output_tokens: 200 });
      const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          answered++;
          if (res.statusCode === 200 && JSON.parse(text).granted) granted++;
          resolve();
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  let i = 0;
  const worker = async () => {
    while (performance.now() < end) await one(i++);
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Number(args.concurrency) }, worker));
  process.send({ answered, granted, seconds: (performance.now() - t0) / 1000 });
  agent.destroy();
  process.exit(0);
} else {
  // ----------------------------------------------------------------------------------------------- main
  const startChild = (role, extra = []) => {
    const child = fork(self, [`--role=${role}`, ...extra, ...(quick ? ['--quick'] : []), `--seconds=${SECONDS}`], { stdio: 'inherit' });
    return { child, first: new Promise((resolve) => child.once('message', resolve)) };
  };
  const exp = startChild('exporter');
  const { httpUrl } = await exp.first;

  // Part 1: added latency per call.
  const { default: OpenAI } = await import('openai');
  const { trace, context } = await import('@opentelemetry/api');
  const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
  const { BasicTracerProvider, SimpleSpanProcessor, InMemorySpanExporter } = await import('@opentelemetry/sdk-trace-base');
  const tm = await import(new URL('instrumentation/index.js', dist));
  const body = {
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 42, completion_tokens: 20, total_tokens: 62 },
  };
  const text = JSON.stringify(body);
  const cannedFetch = async () => new Response(text, { status: 200, headers: { 'content-type': 'application/json' } });
  const messages = [{ role: 'user', content: 'Summarise the meeting notes in three short bullet points, please.' }];

  const runCalls = async (label, call) => {
    const per = Math.ceil(CALLS / USERS);
    const lat = [];
    let cpu0;
    // Warm-up (JIT, tokenizer, keep-alive connections).
    await Promise.all(Array.from({ length: USERS }, (_, u) => call(u)));
    cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: USERS }, async (_, u) => {
        for (let i = 0; i < per; i++) {
          const s = performance.now();
          await call(u);
          lat.push(performance.now() - s);
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { label, ...stats(lat), callsPerSecond: Math.round(lat.length / wall), appCpuMicrosPerCall: (cpu.user + cpu.system) / lat.length };
  };

  const bareClient = new OpenAI({ apiKey: 'k', baseURL: 'http://127.0.0.1:9/v1', fetch: cannedFetch, maxRetries: 0 });
  const bare = await runCalls('bare SDK (no tokenmeter)', () => bareClient.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 200, messages }));

  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const spans = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  trace.setGlobalTracerProvider(provider);
  const [inst] = tm.tokenmeterInstrumentations();
  inst.setTracerProvider(provider);
  tm.instrument(OpenAI);
  const client = new OpenAI({ apiKey: 'k', baseURL: 'http://127.0.0.1:9/v1', fetch: cannedFetch, maxRetries: 0 });
  const tracked = (enforce) => (u) =>
    tm.withUser({ id: `user-${u}`, plan: 'bench', enforce }, () => client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 200, messages })).finally(() => spans.reset());
  tm.configureEnforcement({ url: httpUrl, timeoutMillis: 5000 });
  const off = await runCalls("tokenmeter, enforce 'off'", tracked('off'));
  const block = await runCalls("tokenmeter, enforce 'block'", tracked('block'));

  // Part 2: reservations per second.
  const { validateConfig } = await import(new URL('config/index.js', dist));
  const { createPorts } = await import(new URL('exporter/adapters.js', dist));
  const { ReservationService, MemoryReservationStore } = await import(new URL('exporter/reservations.js', dist));
  const config = validateConfig({ ...BENCH_CONFIG, storage: join(mkdtempSync(join(tmpdir(), 'tm-bench-res2-')), 'ledger') }, 'bench');
  const ports = await createPorts(config, { now: () => new Date() }, {});
  const svc = new ReservationService({ store: new MemoryReservationStore(ports.ledger), plans: ports.plans, pricing: ports.pricing, now: () => new Date(), ttlMillis: 600_000, defaultOutputTokens: 1024 });
  const req = (i) => ({ user: `load-${i % 1000}`, plan: 'bench', provider: 'openai', model: 'gpt-4o-mini', input_tokens: 120, max_output_tokens: 200, enforce: 'block' });
  for (let i = 0; i < 2000; i++) await svc.reserve(req(i));
  let n = 0;
  const tIn = performance.now();
  while (performance.now() - tIn < SECONDS * 1000) {
    const batch = [];
    for (let k = 0; k < 100; k++) batch.push(svc.reserve(req(n++)));
    await Promise.all(batch);
  }
  const inProcess = Math.round(n / ((performance.now() - tIn) / 1000));
  await ports.ledger.close();

  const exporterCpu = () =>
    new Promise((resolve) => {
      exp.child.once('message', (m) => resolve(m.cpu.user + m.cpu.system));
      exp.child.send('cpu');
    });
  const http = [];
  for (const concurrency of [16, 64]) {
    const c0 = await exporterCpu();
    const load = startChild('load', [`--url=${httpUrl}`, `--concurrency=${concurrency}`]);
    const r = await load.first;
    const c1 = await exporterCpu();
    http.push({ concurrency, perSecond: Math.round(r.answered / r.seconds), granted: r.granted, answered: r.answered, cpuMicros: (c1 - c0) / r.answered });
  }
  exp.child.send('stop');

  const ms = (v) => v.toFixed(3);
  const out = [];
  out.push(`Reservations benchmark (${new Date().toISOString()}): ${USERS} concurrent users, ${CALLS} calls per variant${quick ? ' (--quick: figures meaningless)' : ''}.`);
  out.push('');
  out.push('| variant | median ms/call | p99 ms/call | calls/s | app CPU µs/call |');
  out.push('| --- | ---: | ---: | ---: | ---: |');
  for (const r of [bare, off, block]) out.push(`| ${r.label} | ${ms(r.median)} | ${ms(r.p99)} | ${r.callsPerSecond} | ${r.appCpuMicrosPerCall.toFixed(0)} |`);
  out.push('');
  out.push(`Added by 'block' over 'off': median ${ms(block.median - off.median)} ms, p99 ${ms(block.p99 - off.p99)} ms (goal: 1 ms / 5 ms).`);
  out.push('');
  out.push(`Reservations/s on the embedded ledger: in process (ReservationService.reserve, no HTTP) ${inProcess}; ` + http.map((h) => `HTTP with ${h.concurrency} connections ${h.perSecond} (exporter CPU ${h.cpuMicros.toFixed(0)} µs each)`).join('; ') + ' (goal: 10,000).');
  out.push(`App CPU added per call by 'block': ${(block.appCpuMicrosPerCall - off.appCpuMicrosPerCall).toFixed(0)} µs. Load average at the end: ${(await import('node:os')).loadavg().map((v) => v.toFixed(1)).join(' / ')} on ${(await import('node:os')).cpus().length} CPUs.`);
  console.log(out.join('\n'));
}
