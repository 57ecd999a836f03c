// Scrape cost with N active users, in its own process (run with --expose-gc). Args: <mode> <users> <scrapes>
//   tokenmeter   the real exporter (dist/, embedded journal ledger in a temp dir): N spans, one per user, ingested
//                through OTLP/HTTP; then GET /metrics timed (and ExporterMetrics.renderBody() alone, the event-loop block)
//   prom-client  a prom-client Registry holding as many plain Gauge series as tokenmeter's /metrics had (arg 4),
//                spread over the 8 per-user families: registry.metrics() timed
// Heap per user: heapUsed after globalThis.gc() before and after the users became active, divided by N.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { childMain } from '../lib/child.mjs';
import { makeBatches, planOf, userId } from '../lib/payloads.mjs';
import { median } from '../lib/stats.mjs';
import { drive } from '../ingest/drive.mjs';

const [mode, usersArg, scrapesArg, seriesArg] = process.argv.slice(2);
const users = Number(usersArg);
const scrapes = Number(scrapesArg);
// prom-client mode: how many series in all (the count tokenmeter's /metrics had), spread over the per-user families.
const seriesCount = Number(seriesArg ?? users * 8);

function heapUsed() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}

/** Per-user families the exporter emits for each active (user, plan) (DESIGN.md table). */
const USER_FAMILIES = [
  'tokenmeter_user_tokens_total',
  'tokenmeter_user_cost_usd_total',
  'tokenmeter_period_tokens',
  'tokenmeter_period_requests',
  'tokenmeter_period_cost_usd',
  'tokenmeter_limit_tokens',
  'tokenmeter_limit_requests',
  'tokenmeter_limit_cost_usd',
];

function countSeries(text) {
  let all = 0;
  const perUser = Object.fromEntries(USER_FAMILIES.map((f) => [f, 0]));
  for (const line of text.split('\n')) {
    if (line === '' || line[0] === '#') continue;
    all++;
    if (line.includes('user="')) {
      const name = line.slice(0, line.indexOf('{'));
      if (name in perUser) perUser[name]++;
    }
  }
  return { all, perUser };
}

async function tokenmeter() {
  if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');
  const { startExporter } = await import('../../dist/exporter/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-bench-scrape-'));
  try {
    const running = await startExporter({
      storage: dir,
      host: '127.0.0.1',
      otlpPort: 0,
      httpPort: 0,
      // Every user gets its own series (the default bound is 10,000) and no periodic re-read during the run.
      config: { limits: { max_users: Math.max(10_000, users * 2) }, ledger: { refresh_interval: '0s' } },
      log: () => {},
    });
    // Warm-up through the whole path (decode, extract, price, commit, metrics) with one user outside the N, so that
    // lazily built state (price book indexes, prepared statements, JIT) is in the baseline.
    const warm = makeBatches({ batches: 2, batchSize: 64, users: 1, userOffset: 9_000_000, seed: 99 });
    await drive(running.otlpUrl, warm.bodies, { concurrency: 1, warmup: 0, spansPerBody: 64 });
    await (await fetch(`${running.httpUrl}/metrics`)).text();
    const before = heapUsed();
    const perChunk = 16;
    const batchSize = Math.min(512, users);
    const batches = Math.ceil(users / batchSize);
    let sent = 0;
    for (let b = 0; b < batches; b += perChunk) {
      const n = Math.min(perChunk, batches - b);
      const { bodies } = makeBatches({ batches: n, batchSize, users, sequentialUsers: true, firstSpan: b * batchSize, seed: b + 1 });
      const r = await drive(running.otlpUrl, bodies, { concurrency: 4, warmup: 0, spansPerBody: batchSize });
      sent += r.spans;
    }
    const after = heapUsed();
    const times = [];
    let text = '';
    let bytes = 0;
    for (let i = 0; i < scrapes; i++) {
      const t0 = performance.now();
      const res = await fetch(`${running.httpUrl}/metrics`);
      text = await res.text();
      times.push(performance.now() - t0);
      bytes = Buffer.byteLength(text);
    }
    const renderTimes = [];
    for (let i = 0; i < scrapes; i++) {
      const t0 = performance.now();
      await running.metrics.renderBody();
      renderTimes.push(performance.now() - t0);
    }
    const series = countSeries(text);
    await running.close();
    return { mode, users, spansSent: sent, scrapeMillis: median(times), scrapeTimes: times, renderMillis: median(renderTimes), bytes, series, heapBytesPerUser: (after - before) / users, heapDelta: after - before };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function promClient() {
  if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');
  const { Registry, Gauge } = await import('prom-client');
  const before = heapUsed();
  const registry = new Registry();
  const gauges = USER_FAMILIES.map((name) => new Gauge({ name, help: `${name} per user.`, labelNames: ['user', 'plan'], registers: [registry] }));
  for (let k = 0; k < seriesCount; k++) {
    const u = Math.floor(k / gauges.length);
    gauges[k % gauges.length].set({ user: userId(u), plan: planOf(u) }, 1000 + u * 7 + k + 0.25);
  }
  const after = heapUsed();
  const times = [];
  let text = '';
  for (let i = 0; i < scrapes; i++) {
    const t0 = performance.now();
    text = await registry.metrics();
    times.push(performance.now() - t0);
  }
  const series = countSeries(text);
  return { mode, users, scrapeMillis: median(times), scrapeTimes: times, bytes: Buffer.byteLength(text), series, heapBytesPerSeries: (after - before) / series.all, heapBytesPerUser: (after - before) / users, heapDelta: after - before };
}

childMain(() => (mode === 'tokenmeter' ? tokenmeter() : promClient()));
