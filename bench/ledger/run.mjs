// Section 4 (and the per-call half of 5): a simulated month of calls into the embedded (journal) ledger through the
// real exporter, its size on disk, and the time to restart and reload the period state.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { drive, startServer, sumMetric } from '../ingest/drive.mjs';
import { makeBatches } from '../lib/payloads.mjs';
import { fmt, fmtBytes, median } from '../lib/stats.mjs';
import { DedupKeys } from '../../dist/ledger/dedup-keys.js';
import { benchLedgerStalls } from './stalls.mjs';

const BATCH = 512;

function duBytes(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? duBytes(p) : statSync(p).size;
  }
  return n;
}

/**
 * Memory of the dedup record: the journal ledger keeps every (trace id, span id) of the dedup window in a
 * DedupKeys table (typed arrays only, so its size is exact), here filled with as many random ids as the run sent.
 */
function dedupKeyBytes(n) {
  const keys = new DedupKeys();
  for (let k = 0; k < n; k++) keys.add(randomBytes(16).toString('hex'), randomBytes(8).toString('hex'));
  return { keys: keys.size, bytes: keys.bytes, bytesPerKey: keys.bytes / keys.size };
}

function countUsers(text) {
  let n = 0;
  for (const line of text.split('\n')) if (line.startsWith('tokenmeter_period_requests{')) n++;
  return n;
}

export async function benchLedger(cfg, log) {
  const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-bench-scale-'));
  try {
    // Spread over the current billing period (calendar month, UTC) up to a minute ago.
    const now = Date.now();
    const d = new Date(now);
    const periodStart = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    const span = Math.max(60_000, now - 60_000 - periodStart);
    const timeOf = (k) => periodStart + Math.floor((span * k) / cfg.calls);
    const totalBatches = Math.ceil(cfg.calls / BATCH);
    const chunk = 40;
    log(`ledger: ${cfg.calls} calls for ${cfg.users} users into the embedded journal ledger`);
    // The size of an empty ledger (schema, catalog of the database engine), to give the per-call cost above it.
    const emptyDir = mkdtempSync(join(tmpdir(), 'tokenmeter-bench-empty-'));
    let emptyBytes;
    try {
      await (await startServer('tokenmeter', emptyDir)).stop();
      emptyBytes = duBytes(emptyDir);
    } finally {
      rmSync(emptyDir, { recursive: true, force: true });
    }
    let server = await startServer('tokenmeter', dir);
    const segments = [];
    let ingestSeconds = 0;
    let sent = 0;
    for (let b = 0; b < totalBatches; b += chunk) {
      const n = Math.min(chunk, totalBatches - b);
      const { bodies } = makeBatches({ batches: n, batchSize: BATCH, users: cfg.users, seed: 1000 + b, firstSpan: b * BATCH, timeOf });
      const r = await drive(server.url, bodies, { concurrency: cfg.concurrency, warmup: 0, spansPerBody: BATCH });
      ingestSeconds += r.seconds;
      sent += r.spans;
      segments.push({ callsInLedger: sent, spansPerSecond: r.spansPerSecond });
      if (segments.length % 10 === 0) log(`ledger: ${sent} calls, ${fmt(r.spansPerSecond)} spans/s`);
    }
    const before = await server.stop();
    const pricedBefore = sumMetric(before.metricsText, 'tokenmeter_ingested_spans_total', { outcome: 'priced' });
    const bytesOnDisk = duBytes(dir);
    // Restarts: the exporter opens the ledger and loads every user's period rollup before it answers.
    const restarts = [];
    let after;
    for (let i = 0; i < cfg.restarts; i++) {
      const t0 = performance.now();
      server = await startServer('tokenmeter', dir);
      const processMillis = performance.now() - t0;
      restarts.push({ startExporterMillis: server.startMillis, processMillis, usersLoaded: countUsers(server.initialMetricsText), requestsLoaded: sumMetric(server.initialMetricsText, 'tokenmeter_period_requests') });
      after = await server.stop();
    }
    // Worst case: no snapshot at all (a crash before the first one), every call replayed from the journal. A running
    // ledger snapshots every 128 MiB of journal, so after a crash at most that much is replayed.
    for (const f of readdirSync(dir)) if (f.startsWith('snapshot-')) rmSync(join(dir, f));
    server = await startServer('tokenmeter', dir);
    const replayRestart = { startExporterMillis: server.startMillis, requestsLoaded: sumMetric(server.initialMetricsText, 'tokenmeter_period_requests') };
    await server.stop();
    const restartMedian = median(restarts.map((r) => r.startExporterMillis));
    const last = restarts[restarts.length - 1];
    const files = readdirSync(dir);
    const dedup = dedupKeyBytes(sent);
    // Issue 15: stalls under sustained ingest with snapshots, close(), clean and kill -9 restarts (in-process).
    const stalls = cfg.stalls ? await benchLedgerStalls(cfg.stalls, log) : undefined;
    return {
      stalls,
      config: cfg,
      calls: sent,
      users: cfg.users,
      ingestSeconds,
      spansPerSecond: sent / ingestSeconds,
      segments,
      bytesOnDisk,
      emptyBytes,
      bytesPerCall: (bytesOnDisk - emptyBytes) / sent,
      files: { journalSegments: files.filter((f) => f.startsWith('journal-')).length, snapshots: files.filter((f) => f.startsWith('snapshot-')).map((f) => ({ name: f, bytes: statSync(join(dir, f)).size })) },
      dedup,
      restarts,
      restartMillis: restartMedian,
      replayRestart,
      restartGoalMet: restartMedian < 5000,
      consistent:
        pricedBefore === sent &&
        last.requestsLoaded === sent &&
        last.usersLoaded === Math.min(cfg.users, sent) &&
        sumMetric(after.metricsText, 'tokenmeter_period_requests') === sent &&
        replayRestart.requestsLoaded === sent,
      extrapolated: cfg.calls < 1_000_000 ? { calls: 1_000_000, ingestSeconds: (1_000_000 / sent) * ingestSeconds, bytesOnDisk: emptyBytes + 1_000_000 * ((bytesOnDisk - emptyBytes) / sent) } : undefined,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function ledgerMarkdown(d) {
  const out = [];
  out.push(
    `${d.calls.toLocaleString('en-US')} calls for ${d.users.toLocaleString('en-US')} users, spread over the current billing period, sent through OTLP ` +
      `(${d.config.concurrency} senders, batches of ${BATCH}) into the real exporter with the embedded ledger (the journal ledger) in a temp directory; then the ` +
      `exporter is stopped and started again ${d.config.restarts} time(s) on the same directory.`,
    '',
  );
  out.push('| figure | value |', '| --- | --- |');
  out.push(`| ingest time | ${fmt(d.ingestSeconds)} s (${fmt(d.spansPerSecond)} calls/s) |`);
  out.push(`| ledger size on disk | ${fmtBytes(d.bytesOnDisk)}: an empty ledger's ${fmtBytes(d.emptyBytes)} + ${fmt(d.bytesPerCall, 0)} B per call |`);
  if (d.files) {
    const snaps = d.files.snapshots.map((s) => fmtBytes(s.bytes)).join(', ') || 'none';
    out.push(`| files | ${d.files.journalSegments} journal segment(s) (the per-call record, kept for \`ledger.retention\`), snapshot: ${snaps} |`);
  }
  if (d.dedup) out.push(`| memory of the dedup record | ${fmt(d.dedup.bytesPerKey, 0)} B per (trace id, span id) (${fmtBytes(d.dedup.bytes)} for ${d.dedup.keys.toLocaleString('en-US')} keys) |`);
  out.push(`| restart: startExporter until period state loaded (median) | **${fmt(d.restartMillis)} ms** (${d.restarts.map((r) => fmt(r.startExporterMillis)).join(', ')}) |`);
  out.push(`| restart: new process until ready (incl. Node start, module load) | ${d.restarts.map((r) => `${fmt(r.processMillis)} ms`).join(', ')} |`);
  if (d.replayRestart) {
    out.push(`| restart with no snapshot (every call replayed from the journal: worse than any crash) | ${fmt(d.replayRestart.startExporterMillis)} ms (${d.replayRestart.requestsLoaded.toLocaleString('en-US')} calls reloaded) |`);
  }
  out.push(`| users / calls reloaded from the ledger | ${d.restarts[d.restarts.length - 1].usersLoaded.toLocaleString('en-US')} / ${d.restarts[d.restarts.length - 1].requestsLoaded.toLocaleString('en-US')} |`);
  out.push(`| check | ${d.consistent ? 'ok: every acknowledged call is in the reloaded period totals' : '**MISMATCH** between acknowledged and reloaded calls'} |`);
  out.push('');
  out.push(`- Goal "restart with ${d.users.toLocaleString('en-US')} users under 5 s on the embedded ledger": **${d.restartGoalMet ? 'met' : 'NOT met'}** (${fmt(d.restartMillis)} ms).`);
  if (d.extrapolated) {
    out.push(
      `- **Extrapolation, not a measurement:** at the measured rate, 1,000,000 calls would take about ${fmt(d.extrapolated.ingestSeconds / 60)} min to ingest and ` +
        `about ${fmtBytes(d.extrapolated.bytesOnDisk)} on disk (linear in calls, assuming the per-call rate holds — see the growth table).`,
    );
  }
  out.push('');
  return out.join('\n');
}

export function ledgerGrowthMarkdown(d) {
  const out = ['| calls already in the ledger | spans/s of the next chunk |', '| --- | --- |'];
  const step = Math.max(1, Math.floor(d.segments.length / 6));
  for (let i = 0; i < d.segments.length; i += step) out.push(`| ${d.segments[i].callsInLedger.toLocaleString('en-US')} | ${fmt(d.segments[i].spansPerSecond)} |`);
  const lastSeg = d.segments[d.segments.length - 1];
  if ((d.segments.length - 1) % step !== 0) out.push(`| ${lastSeg.callsInLedger.toLocaleString('en-US')} | ${fmt(lastSeg.spansPerSecond)} |`);
  return out.join('\n');
}
