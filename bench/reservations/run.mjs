// Admission control (issue 16): what `enforce: 'block'` adds to an LLM call, and how many reservations per second
// the exporter answers on the embedded ledger. Part of `npm run bench` (section `reservations`); alone:
//   npm run build && node bench/run.mjs --only=reservations [--quick] [--write]
//   node bench/reservations/run.mjs [--quick] [--users=100] [--latency-ms=200] [--rounds=4] [--calls=10] [--seconds=3]
//     [--stagger=false: all users start at once, so every call of a round asks for its reservation in the same burst]
//     [--compare-http: a fourth variant, 'block' with the reservations stream off (an HTTP request per reservation)]
// Every component is a real process on loopback: a provider server answering OpenAI chat completions after a fixed
// latency, a tokenmeter exporter (embedded journal ledger, holds file on), and one app process per variant (the bare
// `openai` client; tokenmeter with enforce 'off'; with 'block'), each running 100 concurrent users that make calls
// one after another. Variants alternate round by round (the machine's load drifts), and each round's order rotates.
// Added latency = block − bare, at the median and at p99 of all calls. Part 2: reservations per second over HTTP
// from concurrent clients (load processes using tokenmeter's own batching client, and the single form one request
// per reservation for comparison), the exporter's CPU per reservation, and the decision alone in process.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const self = fileURLToPath(import.meta.url);
const dist = new URL('../../dist/', import.meta.url);

export const GOAL_ADDED_MEDIAN_MILLIS = 1;
export const GOAL_ADDED_P99_MILLIS = 5;
export const GOAL_RESERVATIONS_PER_SECOND = 10_000;

const BENCH_CONFIG = {
  // No limits: every reservation is granted and held (a refusal is less work than a grant).
  plans: { bench: { default: true } },
  reservations: { ttl: '10m' },
  ledger: { refresh_interval: '0s' },
};

export function reservationsConfig(quick, overrides = {}) {
  const base = quick
    ? { quick: true, users: 100, latencyMillis: 200, stagger: true, rounds: 1, callsPerUser: 3, warmupCallsPerUser: 2, seconds: 1, loadProcesses: 2, loadConcurrency: 128, singleConcurrency: 64 }
    : { users: 100, latencyMillis: 200, stagger: true, rounds: 4, callsPerUser: 10, warmupCallsPerUser: 3, seconds: 3, loadProcesses: 2, loadConcurrency: 128, singleConcurrency: 64 };
  return { ...base, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
}

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// A child process that answers IPC commands; `call(cmd)` resolves with its next message.
function child(role, extra = {}) {
  const c = fork(self, [`--role=${role}`, `--opts=${JSON.stringify(extra)}`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages = [];
  const waiting = [];
  let exited;
  c.on('message', (m) => (waiting.length > 0 ? waiting.shift().resolve(m) : messages.push(m)));
  c.on('exit', (code, signal) => {
    exited = new Error(`bench ${role} process exited with ${code ?? signal}`);
    for (const w of waiting.splice(0)) w.reject(exited);
  });
  const next = () =>
    messages.length > 0
      ? Promise.resolve(messages.shift())
      : exited
        ? Promise.reject(exited)
        : new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  return {
    ready: next(),
    async call(cmd) {
      c.send(cmd);
      const m = await next();
      if (m?.error) throw new Error(`bench ${role}: ${m.error}`);
      return m;
    },
    stop() {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      return new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
    },
  };
}

function onCommands(handler) {
  process.on('message', async (m) => {
    try {
      process.send(await handler(m));
    } catch (err) {
      process.send({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    }
  });
}

// ------------------------------------------------------------------------------------------------- child roles

async function providerRole(o) {
  const { createServer } = await import('node:http');
  const text = JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Three short bullet points.' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 42, completion_tokens: 20, total_tokens: 62 },
  });
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    req.on('end', () => setTimeout(() => res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text), o.latencyMillis));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  process.send({ url: `http://127.0.0.1:${server.address().port}/v1` });
}

async function exporterRole() {
  const { startExporter } = await import(new URL('exporter/index.js', dist));
  const dir = mkdtempSync(join(tmpdir(), 'tm-bench-res-'));
  const e = await startExporter({ storage: join(dir, 'ledger'), host: '127.0.0.1', otlpPort: 0, httpPort: 0, log: () => {}, config: BENCH_CONFIG });
  process.on('SIGTERM', async () => {
    await e.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
  onCommands((m) => (m === 'cpu' ? { cpu: process.cpuUsage() } : { error: `unknown command ${m}` }));
  process.send({ httpUrl: e.httpUrl });
}

async function appRole(o) {
  const { default: OpenAI } = await import('openai');
  const messages = [{ role: 'user', content: 'Summarise the meeting notes in three short bullet points, please.' }];
  let call;
  if (o.variant === 'bare') {
    const client = new OpenAI({ apiKey: 'k', baseURL: o.providerUrl, maxRetries: 0 });
    call = () => client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 200, messages });
  } else {
    const { trace, context } = await import('@opentelemetry/api');
    const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
    const { BasicTracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
    const tm = await import(new URL('instrumentation/index.js', dist));
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    // Spans are ended and batched as in an app, and dropped here: this process measures the call path only.
    const drop = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {}, forceFlush: async () => {} };
    const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(drop)] });
    trace.setGlobalTracerProvider(provider);
    for (const inst of tm.tokenmeterInstrumentations()) inst.setTracerProvider(provider);
    tm.instrument(OpenAI);
    tm.configureEnforcement({ url: o.exporterUrl, timeoutMillis: 5000, stream: o.variant !== 'block-http' });
    const client = new OpenAI({ apiKey: 'k', baseURL: o.providerUrl, maxRetries: 0 });
    const enforce = o.variant === 'block-http' ? 'block' : o.variant;
    call = (u) => tm.withUser({ id: `user-${u}`, plan: 'bench', enforce }, () => client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 200, messages }));
  }
  onCommands(async ({ callsPerUser }) => {
    const lat = [];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: o.users }, async (_, u) => {
        // Users do not all press enter in the same millisecond: their first calls are spread evenly over one
        // provider latency (then each user's calls follow one another). Not counted in any call's latency.
        if (o.staggerMillis > 0) await new Promise((r) => setTimeout(r, (u / o.users) * o.staggerMillis));
        for (let i = 0; i < callsPerUser; i++) {
          const s = performance.now();
          await call(u);
          lat.push(performance.now() - s);
        }
      }),
    );
    const cpu = process.cpuUsage(cpu0);
    return { lat, cpuMicros: cpu.user + cpu.system, seconds: (performance.now() - t0) / 1000 };
  });
  process.send({ ready: true });
}

async function loadRole(o) {
  const { subscribe } = await import('node:diagnostics_channel');
  const enforce = await import(new URL('instrumentation/enforce.js', dist));
  enforce.configureEnforcement({ url: o.exporterUrl, timeoutMillis: 5000, stream: o.mode === 'stream' });
  const s = enforce.enforcementSettings();
  let httpRequests = 0;
  subscribe('http.client.request.start', () => httpRequests++);
  const body = (i) => ({ user: `load-${o.index}-${i % 1000}`, plan: 'bench', provider: 'openai', model: 'gpt-4o-mini', input_tokens: 120, max_output_tokens: 200, enforce: 'block' });
  // batched: tokenmeter's own client with the stream off (HTTP batches); stream: tokenmeter's own client (what an
  // app sends: one upgraded connection); single: one HTTP request per reservation (the single form).
  const ask = o.mode !== 'single' ? (i) => enforce.requestReservation(body(i), s) : (i) => enforce.exporterRequest('POST', s.url, JSON.stringify(body(i)), s);
  let answered = 0;
  let granted = 0;
  let failed = 0;
  let i = 0;
  const end = performance.now() + o.seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (performance.now() < end) {
        try {
          const r = await ask(i++);
          answered++;
          if (r.status === 200 && r.json?.granted === true) granted++;
        } catch {
          failed++;
        }
      }
    }),
  );
  process.send({ answered, granted, failed, httpRequests, seconds: (performance.now() - t0) / 1000 });
  process.exit(0);
}

// ------------------------------------------------------------------------------------------------- the bench

/** Runs both parts; `log` gets progress lines. Returns the figures and the goal verdicts. */
export async function benchReservations(cfg, log = () => {}) {
  const started = performance.now();
  const provider = child('provider', { latencyMillis: cfg.latencyMillis });
  const exporter = child('exporter');
  const children = [provider, exporter];
  try {
    const { url: providerUrl } = await provider.ready;
    const { httpUrl: exporterUrl } = await exporter.ready;

    // Part 1: added latency per call.
    const variants = cfg.compareHttp ? ['bare', 'off', 'block', 'block-http'] : ['bare', 'off', 'block'];
    const apps = Object.fromEntries(variants.map((v) => [v, child('app', { variant: v, users: cfg.users, providerUrl, exporterUrl, staggerMillis: cfg.stagger ? cfg.latencyMillis : 0 })]));
    children.push(...Object.values(apps));
    for (const v of variants) await apps[v].ready;
    log(`reservations: warm-up (${cfg.users} users × ${cfg.warmupCallsPerUser} calls per variant)`);
    for (const v of variants) await apps[v].call({ callsPerUser: cfg.warmupCallsPerUser });
    const acc = Object.fromEntries(variants.map((v) => [v, { lat: [], cpuMicros: 0, seconds: 0 }]));
    for (let r = 0; r < cfg.rounds; r++) {
      const order = variants.map((_, k) => variants[(k + r) % variants.length]);
      log(`reservations: round ${r + 1}/${cfg.rounds} (${order.join(', ')}), ${cfg.users} users × ${cfg.callsPerUser} calls each`);
      for (const v of order) {
        const x = await apps[v].call({ callsPerUser: cfg.callsPerUser });
        acc[v].lat.push(...x.lat);
        acc[v].cpuMicros += x.cpuMicros;
        acc[v].seconds += x.seconds;
      }
    }
    const latency = {};
    for (const v of variants) {
      const s = acc[v].lat.sort((a, b) => a - b);
      latency[v] = { calls: s.length, medianMillis: quantile(s, 0.5), p99Millis: quantile(s, 0.99), callsPerSecond: s.length / acc[v].seconds, appCpuMicrosPerCall: acc[v].cpuMicros / s.length };
    }
    await Promise.all(variants.map((v) => apps[v].stop()));

    // Part 2: reservations per second over HTTP, with the exporter's CPU per reservation.
    const cpu = async () => {
      const m = await exporter.call('cpu');
      return m.cpu.user + m.cpu.system;
    };
    const http = [];
    for (const [mode, processes, concurrency] of [
      ['single', 1, cfg.singleConcurrency],
      ['batched', cfg.loadProcesses, cfg.loadConcurrency],
      ['stream', cfg.loadProcesses, cfg.loadConcurrency],
    ]) {
      log(`reservations: HTTP load, ${mode} form, ${processes} process(es) × ${concurrency} concurrent clients, ${cfg.seconds} s`);
      const c0 = await cpu();
      const loads = Array.from({ length: processes }, (_, index) => child('load', { mode, index, exporterUrl, concurrency, seconds: cfg.seconds }));
      const rs = await Promise.all(loads.map((l) => l.ready));
      const c1 = await cpu();
      const answered = rs.reduce((s, r) => s + r.answered, 0);
      const seconds = Math.max(...rs.map((r) => r.seconds));
      http.push({
        mode,
        processes,
        concurrency,
        answered,
        granted: rs.reduce((s, r) => s + r.granted, 0),
        failed: rs.reduce((s, r) => s + r.failed, 0),
        httpRequests: rs.reduce((s, r) => s + r.httpRequests, 0),
        perSecond: answered / seconds,
        exporterCpuMicros: (c1 - c0) / Math.max(1, answered),
      });
    }

    // The decision alone, in process (no HTTP): ReservationService.reserve on the journal ledger with its holds file.
    const inProcess = await decisionInProcess(cfg.seconds);

    const added = {
      medianMillis: latency.block.medianMillis - latency.bare.medianMillis,
      p99Millis: latency.block.p99Millis - latency.bare.p99Millis,
      overOffMedianMillis: latency.block.medianMillis - latency.off.medianMillis,
      overOffP99Millis: latency.block.p99Millis - latency.off.p99Millis,
      appCpuMicrosPerCall: latency.block.appCpuMicrosPerCall - latency.bare.appCpuMicrosPerCall,
      appCpuMicrosOverOff: latency.block.appCpuMicrosPerCall - latency.off.appCpuMicrosPerCall,
    };
    const batched = http.find((h) => h.mode === 'batched');
    return {
      config: cfg,
      latency,
      added,
      http,
      inProcessPerSecond: inProcess,
      // tokenmeter cannot make a call faster: 'block' faster than the bare SDK by more than the goal itself means
      // the machine's noise is larger than what is measured, and the verdict is inconclusive (null), not met.
      goals: {
        addedMedian: added.medianMillis < -GOAL_ADDED_MEDIAN_MILLIS ? null : added.medianMillis <= GOAL_ADDED_MEDIAN_MILLIS,
        addedP99: added.p99Millis < -GOAL_ADDED_P99_MILLIS ? null : added.p99Millis <= GOAL_ADDED_P99_MILLIS,
        reservationsPerSecond: batched.perSecond >= GOAL_RESERVATIONS_PER_SECOND && batched.failed === 0,
      },
      loadAverageAtEnd: loadavg(),
      cpus: cpus().length,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await Promise.all(children.map((c) => c.stop()));
  }
}

async function decisionInProcess(seconds) {
  const { validateConfig } = await import(new URL('config/index.js', dist));
  const { createPorts } = await import(new URL('exporter/adapters.js', dist));
  const { ReservationService, MemoryReservationStore } = await import(new URL('exporter/reservations.js', dist));
  const { openHoldFile } = await import(new URL('exporter/reservation-file.js', dist));
  const dir = mkdtempSync(join(tmpdir(), 'tm-bench-res2-'));
  const config = validateConfig({ ...BENCH_CONFIG, storage: join(dir, 'ledger') }, 'bench');
  const ports = await createPorts(config, { now: () => new Date() }, {});
  const file = openHoldFile(mkdtempSync(join(dir, 'holds-')), new Date(), () => {});
  const store = new MemoryReservationStore(ports.ledger, file);
  const svc = new ReservationService({ store, plans: ports.plans, pricing: ports.pricing, now: () => new Date(), ttlMillis: 600_000, defaultOutputTokens: 1024 });
  const req = (i) => ({ user: `load-${i % 1000}`, plan: 'bench', provider: 'openai', model: 'gpt-4o-mini', input_tokens: 120, max_output_tokens: 200, enforce: 'block' });
  for (let i = 0; i < 2000; i++) await svc.reserve(req(i));
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const batch = [];
    for (let k = 0; k < 100; k++) batch.push(svc.reserve(req(n++)));
    await Promise.all(batch);
  }
  const perSecond = n / ((performance.now() - t0) / 1000);
  await svc.close();
  await ports.ledger.close();
  rmSync(dir, { recursive: true, force: true });
  return perSecond;
}

const f = (v, d = 1) => v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const yes = (ok) => (ok === null ? '**inconclusive** (block faster than the bare SDK: noise larger than the goal)' : ok ? 'yes' : '**no**');

export function reservationsMarkdown(r) {
  const c = r.config;
  const L = r.latency;
  const out = [];
  if (c.quick) out.push('_--quick: tiny sizes, the figures are not meaningful._', '');
  out.push(`${c.users} concurrent users${c.stagger ? ' (first calls spread over one provider latency)' : ' (all starting at once)'}, provider latency ${c.latencyMillis} ms, ${c.rounds} round(s) × ${c.callsPerUser} calls per user per variant (after ${c.warmupCallsPerUser} warm-up calls), ${f(r.seconds, 0)} s; load average at the end ${r.loadAverageAtEnd.map((v) => f(v)).join(' / ')} on ${r.cpus} CPUs.`, '');
  out.push('| goal | measured | met? |', '| --- | --- | --- |');
  out.push(`| 'block' adds ≤ ${GOAL_ADDED_MEDIAN_MILLIS} ms median per call (block − bare SDK) | ${f(r.added.medianMillis, 2)} ms | ${yes(r.goals.addedMedian)} |`);
  out.push(`| 'block' adds ≤ ${GOAL_ADDED_P99_MILLIS} ms p99 per call (block − bare SDK) | ${f(r.added.p99Millis, 2)} ms | ${yes(r.goals.addedP99)} |`);
  const b = r.http.find((h) => h.mode === 'batched');
  out.push(`| exporter answers ≥ ${GOAL_RESERVATIONS_PER_SECOND.toLocaleString('en-US')} reservations/s (embedded ledger, concurrent clients over HTTP) | ${f(b.perSecond, 0)}/s${b.failed > 0 ? `, ${b.failed} failed` : ''} | ${yes(r.goals.reservationsPerSecond)} |`, '');
  out.push('| variant | calls | median ms/call | p99 ms/call | calls/s | app CPU µs/call |', '| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [v, label] of [
    ['bare', 'bare SDK (no tokenmeter)'],
    ['off', "tokenmeter, enforce 'off'"],
    ['block', "tokenmeter, enforce 'block'"],
    ['block-http', "tokenmeter, enforce 'block', stream off (HTTP request per reservation)"],
  ]) {
    if (L[v] === undefined) continue;
    out.push(`| ${label} | ${L[v].calls} | ${f(L[v].medianMillis, 2)} | ${f(L[v].p99Millis, 2)} | ${f(L[v].callsPerSecond, 0)} | ${f(L[v].appCpuMicrosPerCall, 0)} |`);
  }
  out.push('');
  out.push(`'block' over 'off': ${f(r.added.overOffMedianMillis, 2)} ms median, ${f(r.added.overOffP99Millis, 2)} ms p99; app CPU added per call ${f(r.added.appCpuMicrosPerCall, 0)} µs over the bare SDK, ${f(r.added.appCpuMicrosOverOff, 0)} µs over 'off'.`, '');
  out.push('| reservations over HTTP | clients | reservations/s | HTTP requests | reservations per request | exporter CPU µs/reservation |', '| --- | --- | ---: | ---: | ---: | ---: |');
  for (const h of r.http) {
    out.push(
      `| ${h.mode === 'batched' ? "batched (tokenmeter's client, stream off)" : h.mode === 'stream' ? "reservations stream (tokenmeter's client): one upgraded request per process" : 'single form, one request each'} | ${h.processes} × ${h.concurrency} | ${f(h.perSecond, 0)}${h.failed > 0 ? ` (${h.failed} failed)` : ''} | ${h.httpRequests.toLocaleString('en-US')} | ${f(h.answered / Math.max(1, h.httpRequests))} | ${f(h.exporterCpuMicros)} |`,
    );
  }
  out.push('', `The decision alone (ReservationService.reserve in process, journal ledger, holds file on): ${f(r.inProcessPerSecond, 0)}/s.`);
  return out.join('\n');
}

// ------------------------------------------------------------------------------------------------- entry points

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')).map(([k, ...v]) => [k, v.length ? v.join('=') : 'true']));
if (args.role !== undefined) {
  const o = JSON.parse(args.opts ?? '{}');
  // A child whose bench process is gone (crashed, killed) must not linger with its servers open.
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  if (args.role !== 'exporter') process.on('SIGTERM', () => process.exit(0));
  const roles = { provider: providerRole, exporter: exporterRole, app: appRole, load: loadRole };
  roles[args.role](o).catch((err) => {
    process.stderr.write(`bench ${args.role}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
} else if (process.argv[1] === self) {
  const num = (k) => (args[k] !== undefined ? Number(args[k]) : undefined);
  const cfg = reservationsConfig(args.quick === 'true', {
    users: num('users'),
    latencyMillis: num('latency-ms'),
    rounds: num('rounds'),
    callsPerUser: num('calls'),
    seconds: num('seconds'),
    stagger: args.stagger === undefined ? undefined : args.stagger !== 'false',
    compareHttp: args['compare-http'] === 'true' ? true : undefined,
  });
  const r = await benchReservations(cfg, (m) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`));
  console.log(reservationsMarkdown(r));
}
