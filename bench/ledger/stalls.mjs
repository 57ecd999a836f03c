// Issue 15, points 1 and 5: the journal ledger under sustained ingest with many users, snapshots included: the
// longest event-loop stall, request latency percentiles, close(), and the restart times (clean close vs kill -9).
// In-process on the built ledger (dist/), no HTTP: the figures are the ledger's own, not the exporter's.
//
// Two loads. Capacity: a closed loop (SENDERS callers, each sending its next batch when the last is durable), a
// few seconds: the most the ledger takes, and its latency is queueing (SENDERS × BATCH calls in flight / rate, by
// Little's law). Sustained: an OPEN loop at fixed fractions of that capacity (RATES), one batch of BATCH records
// (an OTLP export request) on a timer schedule that does not wait for the ledger, each request's latency measured
// from its scheduled send time to its durable ack (so a stall delays the requests scheduled during it and is
// counted: no coordinated omission); run for --seconds and until --snapshots snapshots were written.
//
//   node bench/ledger/stalls.mjs [--quick] [--users=100000] [--calls=1000000] [--seconds=15] [--snapshots=2]
//        [--capacity-seconds=5] [--rates=0.5,0.8] [--snapshot-every-bytes=N] [--stall-log] [--why] [--json]
//        [--snapshot-sync-every-bytes=N] [--snapshot-loop-share=F] [--compare='share=1;share=0.25,sync=2097152' [--compare-rounds=3]]
// --compare: after the capacity phase, only the open loop at the first rate, the ledger reopened with each variant
// (';'-separated; share = snapshotLoopShare, sync = snapshotSyncEveryBytes) in turn for --compare-rounds
// alternating rounds (p99 per round, median and range per variant).
// --why: after each open-loop rate, print to stderr what the slowest 1% of requests waited for (see whyReport):
// their latency split into the steps of their commit group, fdatasync times with and without snapshot I/O
// overlapping, and GC pauses.
// (a huge --snapshot-every-bytes runs the same load without snapshots, to tell their stalls from the rest)
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { JournalLedger } from '../../dist/ledger/index.js';
import { fmt, fmtBytes } from '../lib/stats.mjs';

const PERIOD = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1)).toISOString();
const BATCH = 512;
const STALL_LOG = process.argv.includes('--stall-log');
const WHY = process.argv.includes('--why');
const SENDERS = 8;
/** The open-loop rates, as fractions of the closed-loop capacity; the first is the one the goals are judged at. */
const RATES = [0.5, 0.8];
const PLANS = ['free', 'pro', 'team'];
const MODELS = [
  ['openai', 'gpt-4o'],
  ['openai', 'gpt-4o-mini'],
  ['anthropic', 'claude-sonnet-4'],
];

/** Call `k` (a distinct trace id + span id per k, so `k` is also its dedup identity). */
export function recordOf(k, users) {
  const [provider, model] = MODELS[k % 3];
  const input = 100 + (k % 997);
  const output = 10 + (k % 89);
  const inCost = `0.${String(input * 25).padStart(8, '0')}`;
  const outCost = `0.${String(output * 100).padStart(8, '0')}`;
  const total = (BigInt(input * 25) + BigInt(output * 100)).toString().padStart(9, '0');
  return {
    traceId: k.toString(16).padStart(32, '0'),
    spanId: (k + 1).toString(16).padStart(16, '0'),
    endTimeMillis: Date.parse(PERIOD) + (k % 86_400_000),
    provider,
    rawModel: model,
    model,
    operation: 'chat',
    usage: { input, cache_read: 0, cache_write: 0, output, reasoning: 0 },
    estimated: false,
    userId: `user-${(k * 7919) % users}`,
    outcome: 'success',
    source: 'tokenmeter',
    plan: PLANS[((k * 7919) % users) % 3],
    periodStart: PERIOD,
    priced: true,
    priceId: `${provider}/${model}`,
    costUsd: { input: inCost, cache_read: '0', cache_write: '0', output: outCost, reasoning: '0' },
    totalCostUsd: `${total.slice(0, -8) || '0'}.${total.slice(-8)}`.replace(/\.?0+$/, ''),
  };
}

const batchOf = (from, users) => Array.from({ length: BATCH }, (_, i) => recordOf(from + i, users));

function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Longest gap between 1 ms timer ticks while `fn` runs (the longest time nothing else could run), and the histogram's max. */
async function watchLoop(fn) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  let longest = 0;
  // The same gap counted in CPU time the process used during it (all its threads: an upper bound on the main
  // thread's own work). On a machine shared by many processes a gap is mostly waiting for a core; this is not.
  let longestCpu = 0;
  const t = setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    const gap = now - last;
    longest = Math.max(longest, gap);
    // --stall-log: every gap over 20 ms with when it ended (ms since the process began, as --trace-gc prints).
    if (STALL_LOG && gap > 20) process.stderr.write(`stall ${gap.toFixed(1)} ms ending at ${now.toFixed(0)} ms, cpu ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms\n`);
    longestCpu = Math.max(longestCpu, Math.min(gap, (cpu.user + cpu.system) / 1000));
    last = now;
    lastCpu = process.cpuUsage();
  }, 1);
  try {
    const value = await fn();
    return { value, longestGapMillis: longest, longestCpuMillis: longestCpu, delayMaxMillis: h.max / 1e6 };
  } finally {
    clearInterval(t);
    h.disable();
  }
}

/** CPU time (user + system, every thread of the process) since `from` (a process.cpuUsage()), in ms. */
function cpuMillisSince(from) {
  const c = process.cpuUsage(from);
  return (c.user + c.system) / 1000;
}

function snapshotFiles(dir) {
  return readdirSync(dir)
    .filter((n) => n.startsWith('snapshot-'))
    .map((n) => ({ name: n, bytes: statSync(join(dir, n)).size }));
}

/** Commits calls [from, to) with SENDERS concurrent callers of BATCH calls each; returns every commit's latency. */
async function ingest(ledger, from, to, users, untilMillis = Infinity) {
  const latencies = [];
  let next = from;
  const sender = async () => {
    while (next < to && performance.now() < untilMillis) {
      const start = next;
      next += BATCH;
      const batch = batchOf(start, users);
      const t0 = performance.now();
      await ledger.commit(batch);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, sender));
  return { latencies, next };
}

/** Names of the snapshots in `dir` (written whole: a snapshot being written is a .tmp file). */
function snapshotNames(dir) {
  return readdirSync(dir).filter((n) => n.startsWith('snapshot-') && n.endsWith('.snap'));
}

/**
 * Open loop: request i (BATCH calls, from call `from + i × BATCH` on) is due at t0 + i × BATCH / callsPerSecond and
 * is sent then, or at the first timer tick after (a tick sends every request that is due, however many a stall
 * held back): the schedule never waits for the ledger. A request's latency runs from its scheduled time to its
 * durable ack. Sending stops once `minSeconds` have passed and `snapshots` new snapshots are on disk (or at
 * `maxSeconds`); then every request in flight is waited for.
 */
function openLoop(ledger, dir, from, users, callsPerSecond, { minSeconds, maxSeconds, snapshots }) {
  return new Promise((resolve, reject) => {
    const intervalMillis = (BATCH / callsPerSecond) * 1000;
    const latencies = [];
    /** --why: each request's scheduled, sent and acknowledged times. */
    const requests = [];
    const before = new Set(snapshotNames(dir));
    const written = new Set();
    let sent = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    let failure;
    let lastAck = 0;
    let lastPoll = 0;
    let stopped = false;
    const t0 = performance.now();
    const finish = () => {
      if (!stopped || inFlight > 0) return;
      if (failure) reject(failure);
      else resolve({ latencies, requests, sent, next: from + sent * BATCH, maxInFlight, snapshotsWritten: written.size, seconds: (performance.now() - t0) / 1000, ackSeconds: (lastAck - t0) / 1000 });
    };
    const tick = setInterval(() => {
      const now = performance.now();
      if (now - lastPoll >= 100) {
        lastPoll = now;
        for (const n of snapshotNames(dir)) if (!before.has(n)) written.add(n);
      }
      const elapsed = (now - t0) / 1000;
      if ((elapsed >= minSeconds && written.size >= snapshots) || elapsed >= maxSeconds || failure) {
        clearInterval(tick);
        stopped = true;
        finish();
        return;
      }
      while (t0 + sent * intervalMillis <= now) {
        const scheduled = t0 + sent * intervalMillis;
        const start = from + sent * BATCH;
        sent++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        const batch = batchOf(start, users);
        const sentAt = performance.now();
        ledger.commit(batch).then(
          () => {
            lastAck = performance.now();
            latencies.push(lastAck - scheduled);
            if (WHY) requests.push({ scheduled, sent: sentAt, ack: lastAck });
            inFlight--;
            finish();
          },
          (err) => {
            failure ??= err;
            inFlight--;
            finish();
          },
        );
      }
    }, 1);
  });
}

/** The defaults for what a caller leaves out (run.mjs passes users, calls, seconds and snapshotEveryBytes). */
export function stallsConfig(cfg) {
  return { rates: RATES, snapshots: 2, capacitySeconds: 5, maxSeconds: Math.max(120, cfg.seconds ?? 15), ...cfg };
}

export async function benchLedgerStalls(config, log = console.log) {
  const cfg = stallsConfig(config);
  const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-bench-stalls-'));
  const journal = {
    ...(cfg.snapshotEveryBytes ? { snapshotEveryBytes: cfg.snapshotEveryBytes } : {}),
    ...(cfg.snapshotSyncEveryBytes ? { snapshotSyncEveryBytes: cfg.snapshotSyncEveryBytes } : {}),
    ...(cfg.snapshotLoopShare ? { snapshotLoopShare: cfg.snapshotLoopShare } : {}),
  };
  const traced = WHY ? startTrace() : undefined;
  const journalOpen = traced ? { ...journal, trace: traced.trace } : journal;
  try {
    // A month of calls for every user (the state a snapshot and a restart carry).
    log(`ledger stalls: prefilling ${cfg.calls.toLocaleString('en-US')} calls for ${cfg.users.toLocaleString('en-US')} users`);
    let ledger = await JournalLedger.open(dir, {}, journalOpen);
    const t0 = performance.now();
    await ingest(ledger, 0, cfg.calls, cfg.users);
    const prefillSeconds = (performance.now() - t0) / 1000;
    await ledger.checkpoint();
    // A snapshot of the whole state with nothing else running: its wall time and the longest stall it causes.
    const idle = await watchLoop(async () => {
      const c0 = performance.now();
      await ledger.checkpoint();
      return performance.now() - c0;
    });

    // Capacity: the closed loop for a few seconds (the most the ledger takes here; its latency is queueing).
    log(`ledger stalls: capacity, closed loop (${SENDERS} callers × ${BATCH} calls) for ${cfg.capacitySeconds} s`);
    const snapsBefore = new Set(snapshotFiles(dir).map((s) => s.name));
    let snapshotsStarted = 0;
    let lastBytes = ledger.journalBytesSinceSnapshot;
    const poll = setInterval(() => {
      const b = ledger.journalBytesSinceSnapshot;
      if (b < lastBytes) snapshotsStarted++;
      lastBytes = b;
    }, 1);
    if (STALL_LOG) process.stderr.write(`phase capacity from ${performance.now().toFixed(0)} ms\n`);
    const cap0 = performance.now();
    const run = await watchLoop(() => ingest(ledger, cfg.calls, Number.MAX_SAFE_INTEGER, cfg.users, performance.now() + cfg.capacitySeconds * 1000));
    const capacitySeconds = (performance.now() - cap0) / 1000;
    clearInterval(poll);
    // Wait for a snapshot still being written (it is part of the run's load, not of what follows).
    const settle = await watchLoop(() => ledger.checkpoint());
    const sustainedCalls = run.value.next - cfg.calls;
    const capacityCallsPerSecond = sustainedCalls / capacitySeconds;
    const lat = [...run.value.latencies].sort((a, b) => a - b);
    const snapshotsWritten = snapshotFiles(dir).filter((s) => !snapsBefore.has(s.name)).length;

    // Sustained: the open loop at each fraction of the capacity, snapshots included.
    let next = run.value.next;
    if (cfg.compare) {
      // --compare: the open loop at the first rate, the ledger reopened with each variant's options in turn, rounds
      // alternating (the machine's noise falls on every variant alike). Nothing else is run.
      const offered = Math.max(BATCH, Math.round(capacityCallsPerSecond * cfg.rates[0]));
      const compare = [];
      for (let round = 1; round <= cfg.compareRounds; round++) {
        for (const variant of cfg.compare) {
          await ledger.close();
          ledger = await JournalLedger.open(dir, {}, { ...journalOpen, ...variantOptions(variant) });
          log(`ledger stalls: round ${round}, ${variant}: open loop at ${offered.toLocaleString('en-US')} calls/s`);
          traced?.clear();
          const open = await watchLoop(() => openLoop(ledger, dir, next, cfg.users, offered, { minSeconds: cfg.seconds, maxSeconds: cfg.maxSeconds, snapshots: cfg.snapshots }));
          const done = await watchLoop(() => ledger.checkpoint());
          if (traced) process.stderr.write(whyReport(`round ${round}, ${variant}`, open.value.requests, traced));
          next = open.value.next;
          const l = [...open.value.latencies].sort((a, b) => a - b);
          compare.push({ round, variant, p50: percentile(l, 50), p99: percentile(l, 99), max: l[l.length - 1], longestStallMillis: Math.max(open.longestGapMillis, done.longestGapMillis), snapshotsWritten: open.value.snapshotsWritten, loadAverage: os.loadavg()[0] });
        }
      }
      await ledger.close();
      return { config: cfg, sustainedCallsPerSecond: capacityCallsPerSecond, offeredCallsPerSecond: offered, compare };
    }
    const rates = [];
    for (const fraction of cfg.rates) {
      const offered = Math.max(BATCH, Math.round(capacityCallsPerSecond * fraction));
      log(`ledger stalls: open loop at ${Math.round(fraction * 100)}% of capacity (${offered.toLocaleString('en-US')} calls/s in requests of ${BATCH}) for ≥ ${cfg.seconds} s and ≥ ${cfg.snapshots} snapshot(s)`);
      let started = 0;
      let last = ledger.journalBytesSinceSnapshot;
      const watch = setInterval(() => {
        const b = ledger.journalBytesSinceSnapshot;
        if (b < last) started++;
        last = b;
      }, 1);
      if (STALL_LOG) process.stderr.write(`phase open ${fraction} from ${performance.now().toFixed(0)} ms\n`);
      const cpu0 = process.cpuUsage();
      traced?.clear();
      const open = await watchLoop(() => openLoop(ledger, dir, next, cfg.users, offered, { minSeconds: cfg.seconds, maxSeconds: cfg.maxSeconds, snapshots: cfg.snapshots }));
      const cpuMillis = cpuMillisSince(cpu0);
      clearInterval(watch);
      if (STALL_LOG) process.stderr.write(`phase open ${fraction} to ${performance.now().toFixed(0)} ms\n`);
      const done = await watchLoop(() => ledger.checkpoint());
      if (traced) process.stderr.write(whyReport(`open loop at ${Math.round(fraction * 100)}%`, open.value.requests, traced));
      next = open.value.next;
      const l = [...open.value.latencies].sort((a, b) => a - b);
      const calls = open.value.sent * BATCH;
      rates.push({
        fraction,
        offeredCallsPerSecond: offered,
        offeredRequestsPerSecond: offered / BATCH,
        seconds: open.value.seconds,
        requests: open.value.sent,
        acknowledged: l.length,
        calls,
        achievedCallsPerSecond: calls / open.value.ackSeconds,
        cpuMillisPerCall: cpuMillis / calls,
        maxInFlightRequests: open.value.maxInFlight,
        latencyMillis: { p50: percentile(l, 50), p99: percentile(l, 99), max: l[l.length - 1] },
        longestStallMillis: Math.max(open.longestGapMillis, done.longestGapMillis),
        longestStallCpuMillis: Math.max(open.longestCpuMillis, done.longestCpuMillis),
        loopDelayMaxMillis: Math.max(open.delayMaxMillis, done.delayMaxMillis),
        snapshotsStarted: started,
        snapshotsWritten: open.value.snapshotsWritten,
      });
    }
    const judged = rates[0];

    // close() with commits queued behind it: the stall it causes (it writes a snapshot).
    await ingest(ledger, next, next + SENDERS * BATCH, cfg.users);
    const closing = await watchLoop(async () => {
      const c0 = performance.now();
      await ledger.close();
      return performance.now() - c0;
    });
    const callsInLedger = next + SENDERS * BATCH;

    // Clean restart: the snapshot written by close, nothing to replay.
    const r0 = performance.now();
    let cpu0 = process.cpuUsage();
    ledger = await JournalLedger.open(dir, {}, journal);
    const cleanRestartMillis = performance.now() - r0;
    const cleanRestartCpuMillis = cpuMillisSince(cpu0);
    const cleanRequests = (await ledger.periodSummary(PERIOD)).requests;
    await ledger.close();

    // kill -9: a child process ingests until it has written nearly a whole snapshot interval of journal (the most
    // a crash can leave to replay), then is killed; the parent times the next open.
    log('ledger stalls: kill -9 during ingest, then restart');
    const crash = await crashChild(dir, callsInLedger, cfg, journal);
    const k0 = performance.now();
    cpu0 = process.cpuUsage();
    ledger = await JournalLedger.open(dir, {}, journal);
    const crashRestartMillis = performance.now() - k0;
    const crashRestartCpuMillis = cpuMillisSince(cpu0);
    const crashRequests = (await ledger.periodSummary(PERIOD)).requests;
    await ledger.close();

    return {
      config: cfg,
      prefillSeconds,
      sustainedCalls,
      sustainedCallsPerSecond: capacityCallsPerSecond,
      capacitySeconds,
      commits: lat.length,
      latencyMillis: { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1] },
      longestStallMillis: Math.max(run.longestGapMillis, settle.longestGapMillis),
      longestStallCpuMillis: Math.max(run.longestCpuMillis, settle.longestCpuMillis),
      loopDelayMaxMillis: Math.max(run.delayMaxMillis, settle.delayMaxMillis),
      snapshotsStarted,
      snapshotsWritten,
      rates,
      snapshotBytes: snapshotFiles(dir).map((s) => s.bytes),
      idleSnapshot: { millis: idle.value, longestStallMillis: idle.longestGapMillis, longestStallCpuMillis: idle.longestCpuMillis },
      loadAverage: os.loadavg(),
      close: { millis: closing.value, longestStallMillis: closing.longestGapMillis, longestStallCpuMillis: closing.longestCpuMillis },
      cleanRestartMillis,
      cleanRestartCpuMillis,
      cleanRestartConsistent: cleanRequests === callsInLedger,
      crash: { ...crash, restartMillis: crashRestartMillis, restartCpuMillis: crashRestartCpuMillis, requestsAfter: crashRequests, consistent: crashRequests >= crash.acknowledged && crashRequests <= crash.attempted },
      goals: {
        // Judged at the first open-loop rate (sustained ingest, snapshots included), not at capacity.
        stall: judged !== undefined && judged.longestStallMillis < 50,
        p99: judged !== undefined && judged.latencyMillis.p99 < 100,
        crashRestart: crashRestartMillis < 5000,
      },
    };
  } finally {
    traced?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** --why: collects the ledger's commit-group and snapshot I/O timings (JournalTrace) and GC pauses. */
function startTrace() {
  const groups = [];
  const io = [];
  const gcs = [];
  const snaps = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ start: e.startTime, end: e.startTime + e.duration, kind: e.detail?.kind ?? e.kind });
  });
  obs.observe({ entryTypes: ['gc'] });
  return {
    groups,
    io,
    gcs,
    snaps,
    trace: {
      snapshot: (start, end, busy, paused) => snaps.push({ start, end, busy, paused }),
      group: (t) => groups.push(t),
      snapshotIo: (kind, start, end, bytes) => io.push({ kind, start, end, bytes }),
    },
    clear() {
      groups.length = 0;
      io.length = 0;
      gcs.length = 0;
      snaps.length = 0;
    },
    stop: () => obs.disconnect(),
  };
}

const overlap = (a0, a1, b0, b1) => Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));

/**
 * What the slowest 1% of requests waited for. A request is in the first commit group that began after it was
 * sent (a group takes everything queued when it begins), so its latency (scheduled → ack) splits into: late (the
 * timer fired late: the loop was busy), queue (sent → its group began: the previous group's write + fdatasync +
 * apply), prepare (dedup + encode slices), write, fdatasync, apply (synced → its ack: totals and results, in
 * slices). Also: fdatasync times of groups whose sync overlapped a snapshot write/sync or not, and GC pause time
 * inside the requests' windows.
 */
function whyReport(label, requests, { groups, io, gcs, snaps }) {
  if (requests.length === 0 || groups.length === 0) return `why (${label}): nothing traced\n`;
  const gs = [...groups].sort((a, b) => a.start - b.start);
  const rows = [];
  for (const r of requests) {
    let lo = 0;
    let hi = gs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (gs[mid].start < r.sent) lo = mid + 1;
      else hi = mid;
    }
    const g = gs[lo];
    if (!g) continue;
    let gc = 0;
    for (const x of gcs) gc += overlap(r.scheduled, r.ack, x.start, x.end);
    let snapIo = 0;
    for (const x of io) snapIo += overlap(g.written, g.synced, x.start, x.end);
    rows.push({
      total: r.ack - r.scheduled,
      late: r.sent - r.scheduled,
      queue: g.start - r.sent,
      prepare: g.appendStart - g.start,
      write: g.written - g.appendStart,
      sync: g.synced - g.written,
      apply: r.ack - g.synced,
      gc,
      snapIo,
      groupRecords: g.records,
    });
  }
  rows.sort((a, b) => a.total - b.total);
  const worst = rows.slice(Math.floor(rows.length * 0.99));
  const keys = ['total', 'late', 'queue', 'prepare', 'write', 'sync', 'apply', 'gc', 'snapIo', 'groupRecords'];
  const mean = (list, k) => list.reduce((s, x) => s + x[k], 0) / list.length;
  const line = (name, list) => `  ${name.padEnd(12)} n=${String(list.length).padStart(5)} ${keys.map((k) => `${k} ${mean(list, k).toFixed(k === 'groupRecords' ? 0 : 1)}`).join('  ')}\n`;
  let out = `why (${label}): mean ms per request (late = timer fired late, queue = waiting for the previous group, snapIo = snapshot I/O overlapping its group's fdatasync, gc = GC pauses in its window)\n`;
  out += line('all', rows) + line('worst 1%', worst);
  // Each of the worst requests in full (up to 12).
  for (const r of worst.slice(-12)) out += `    ${keys.map((k) => `${k} ${r[k].toFixed(k === 'groupRecords' ? 0 : 1)}`).join('  ')}\n`;
  // fdatasync time per group, with and without snapshot I/O overlapping it.
  const syncs = (pred) => gs.filter((g) => g.fresh > 0 && pred(g)).map((g) => g.synced - g.written).sort((a, b) => a - b);
  const busy = (g) => snaps.some((x) => overlap(g.written, g.synced, x.start, x.end) > 0);
  const pr = (list) => (list.length === 0 ? 'none' : `n=${list.length} p50 ${percentile(list, 50).toFixed(1)} p99 ${percentile(list, 99).toFixed(1)} max ${list[list.length - 1].toFixed(1)} ms`);
  out += `  fdatasync per group: while a snapshot is written: ${pr(syncs(busy))}; no snapshot: ${pr(syncs((g) => !busy(g)))}\n`;
  const inSnap = (r) => snaps.some((x) => overlap(r.scheduled, r.ack, x.start, x.end) > 0);
  const lat = (pred) => requests.filter(pred).map((r) => r.ack - r.scheduled).sort((a, b) => a - b);
  out += `  request latency: overlapping a snapshot: ${pr(lat(inSnap))}; not: ${pr(lat((r) => !inSnap(r)))}; snapshots took ${snaps.map((x) => `${(x.end - x.start).toFixed(0)} ms (${x.busy.toFixed(0)} ms producing parts, ${x.paused.toFixed(0)} ms paced)`).join(', ')}\n`;
  const ioBy = (kind) => io.filter((x) => x.kind === kind).map((x) => x.end - x.start).sort((a, b) => a - b);
  out += `  snapshot I/O: write ${pr(ioBy('write'))}; sync ${pr(ioBy('sync'))}; read ${pr(ioBy('read'))}\n`;
  // perf_hooks' kinds: 1 scavenge, 2 mark-compact, 4 incremental marking step, 8 weak callbacks.
  for (const kind of [1, 2, 4, 8]) {
    const gcp = gcs.filter((x) => x.kind === kind).map((x) => x.end - x.start).sort((a, b) => a - b);
    if (gcp.length > 0) out += `  GC pauses of kind ${kind}: ${pr(gcp)}, ${gcp.reduce((s, x) => s + x, 0).toFixed(0)} ms in all\n`;
  }
  return out;
}

function crashChild(dir, from, cfg, journal) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, String(from), String(cfg.users), JSON.stringify(journal)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let acknowledged = 0;
    let attempted = 0;
    let bytes = 0;
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = /^acked (\d+) attempted (\d+) bytes (\d+) every (\d+)$/.exec(line);
        if (!m) continue;
        acknowledged = Number(m[1]) - from;
        attempted = Number(m[2]) - from;
        bytes = Number(m[3]);
        // Nearly a whole snapshot interval (at most 64 MiB: a run without snapshots would never get there).
        if (bytes >= 0.9 * Math.min(Number(m[4]), 64 * 1024 * 1024)) child.kill('SIGKILL');
      }
    });
    child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve({ acknowledged: from + acknowledged, attempted: from + attempted, journalBytesToReplay: bytes }) : reject(new Error(`crash child exited without being killed (${signal ?? _code})`))));
  });
}

async function childMain(dir, from, users, journal) {
  const ledger = await JournalLedger.open(dir, {}, journal);
  let next = from;
  let acked = from;
  const every = journal.snapshotEveryBytes ?? 64 * 1024 * 1024;
  const sender = async () => {
    for (;;) {
      const start = next;
      next += BATCH;
      await ledger.commit(batchOf(start, users));
      // Acknowledged in order of the group: counted when every call up to it is durable is not needed here; the
      // parent only checks acknowledged <= reloaded <= attempted.
      acked += BATCH;
      process.stdout.write(`acked ${acked} attempted ${next} bytes ${ledger.journalBytesSinceSnapshot} every ${every}\n`);
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, sender));
}

/** A --compare variant, `share=0.25,sync=2097152`, as JournalLedgerOptions (snapshotLoopShare, snapshotSyncEveryBytes). */
function variantOptions(variant) {
  const o = {};
  for (const kv of variant.split(',')) {
    const [k, v] = kv.split('=');
    if (k === 'share') o.snapshotLoopShare = Number(v);
    else if (k === 'sync') o.snapshotSyncEveryBytes = Number(v);
    else throw new Error(`--compare: unknown setting ${k} in ${variant} (share=F, sync=BYTES)`);
  }
  return o;
}

/** --compare: each round's figures per variant, and each variant's median p99 and range. */
function compareMarkdown(d) {
  const out = [
    `Open loop at ${fmt(d.offeredCallsPerSecond)} calls/s (${Math.round(d.config.rates[0] * 100)}% of ${fmt(d.sustainedCallsPerSecond)} calls/s capacity), ${d.config.compareRounds} alternating rounds:`,
    '',
    '| round | variant | latency p50 / p99 / max (ms) | longest stall (ms) | snapshots | load (1 min) |',
    '| --- | --- | --- | --- | --- | --- |',
    ...d.compare.map((c) => `| ${c.round} | ${c.variant} | ${fmt(c.p50)} / **${fmt(c.p99)}** / ${fmt(c.max)} | ${fmt(c.longestStallMillis)} | ${c.snapshotsWritten} | ${fmt(c.loadAverage)} |`),
    '',
  ];
  for (const variant of d.config.compare) {
    const p99s = d.compare.filter((c) => c.variant === variant).map((c) => c.p99).sort((a, b) => a - b);
    out.push(`- ${variant}: p99 median ${fmt(percentile(p99s, 50))} ms (range ${fmt(p99s[0])}–${fmt(p99s[p99s.length - 1])})`);
  }
  return `${out.join('\n')}\n`;
}

export function stallsMarkdown(d) {
  const out = [];
  const pct = (f) => `${Math.round(f * 100)}%`;
  out.push(
    `The journal ledger in-process (no HTTP): ${d.config.calls.toLocaleString('en-US')} calls prefilled for ${d.config.users.toLocaleString('en-US')} users. ` +
      `**Capacity**: ${fmt(d.capacitySeconds)} s of closed loop (${SENDERS} callers, each committing its next batch of ${BATCH} once the last is durable): the most the ledger takes; its latency is queueing (${(SENDERS * BATCH).toLocaleString('en-US')} calls in flight / rate). ` +
      `**Sustained**: an open loop at ${d.rates.map((r) => pct(r.fraction)).join(' and ')} of that capacity: one request of ${BATCH} calls (an OTLP export request) on a fixed timer schedule that does not wait for the ledger, ` +
      `each request's latency measured from its scheduled send time to its durable ack (journal write + fdatasync + totals; a stall delays every request due during it, and is counted), ` +
      `for at least ${d.config.seconds} s and until ${d.config.snapshots} snapshots were written. Stalls: the longest gap between 1 ms timer ticks, and that gap counted in the CPU time the process used during it ` +
      `(every thread of it: an upper bound on the event loop's own work; the rest of a gap is waiting for a core). The load generator (building each request's ${BATCH} records) runs on the same event loop.`,
    '',
    '| figure | value |',
    '| --- | --- |',
    `| one snapshot of the whole state, ledger idle | ${fmt(d.idleSnapshot.millis)} ms to write, longest stall during it **${fmt(d.idleSnapshot.longestStallMillis)} ms** (in CPU time ≤ ${fmt(d.idleSnapshot.longestStallCpuMillis)} ms) |`,
    `| capacity (closed loop) | **${fmt(d.sustainedCallsPerSecond)} calls/s** (${d.commits.toLocaleString('en-US')} commits); latency p50 / p99 / max ${fmt(d.latencyMillis.p50)} / ${fmt(d.latencyMillis.p99)} / ${fmt(d.latencyMillis.max)} ms (queueing); longest stall ${fmt(d.longestStallMillis)} ms (in CPU time ≤ ${fmt(d.longestStallCpuMillis)} ms); snapshots ${d.snapshotsStarted} begun, ${d.snapshotsWritten} written |`,
  );
  for (const r of d.rates) {
    const head = `open loop, ${pct(r.fraction)} of capacity (${fmt(r.offeredCallsPerSecond)} calls/s offered = ${fmt(r.offeredRequestsPerSecond)} requests/s)`;
    out.push(
      `| ${head}: achieved | ${fmt(r.achievedCallsPerSecond)} calls/s over ${fmt(r.seconds)} s (${r.requests.toLocaleString('en-US')} requests, at most ${r.maxInFlightRequests} in flight; ${fmt(r.cpuMillisPerCall * 1000)} µs of CPU per call) |`,
      `| ${head}: request latency p50 / p99 / max (scheduled send → durable ack) | ${fmt(r.latencyMillis.p50)} / **${fmt(r.latencyMillis.p99)}** / ${fmt(r.latencyMillis.max)} ms |`,
      `| ${head}: longest event-loop stall | **${fmt(r.longestStallMillis)} ms** (in CPU time ≤ ${fmt(r.longestStallCpuMillis)} ms; event-loop delay histogram max ${fmt(r.loopDelayMaxMillis)} ms) |`,
      `| ${head}: snapshots | ${r.snapshotsStarted} begun, ${r.snapshotsWritten} written during the run |`,
    );
  }
  out.push(
    `| snapshot files at the end | ${d.snapshotBytes.map(fmtBytes).join(', ')} |`,
    `| close() (writes a snapshot) | ${fmt(d.close.millis)} ms, longest stall during it ${fmt(d.close.longestStallMillis)} ms (in CPU time ≤ ${fmt(d.close.longestStallCpuMillis)} ms) |`,
    `| restart after a clean close | ${fmt(d.cleanRestartMillis)} ms, ${fmt(d.cleanRestartCpuMillis)} ms of CPU time (${d.cleanRestartConsistent ? 'every call reloaded' : '**MISMATCH**'}) |`,
    `| restart after kill -9 (${fmtBytes(d.crash.journalBytesToReplay)} of journal to replay) | **${fmt(d.crash.restartMillis)} ms**, ${fmt(d.crash.restartCpuMillis)} ms of CPU time (${d.crash.consistent ? 'every acknowledged call reloaded' : '**MISMATCH**'}) |`,
    `| machine load average (1, 5, 15 min) at the end | ${d.loadAverage.map((v) => fmt(v)).join(', ')} (the machine's core count: ${os.cpus().length}) |`,
    '',
  );
  const j = d.rates[0];
  if (j) {
    const at = `sustained ingest at ${fmt(j.offeredCallsPerSecond)} calls/s (${pct(j.fraction)} of capacity, open loop, ${j.snapshotsWritten} snapshot(s) written during it)`;
    out.push(
      `- Goal "longest event-loop stall < 50 ms", ${at}: **${d.goals.stall ? 'met' : 'NOT met'}** (${fmt(j.longestStallMillis)} ms; in CPU time ≤ ${fmt(j.longestStallCpuMillis)} ms).`,
      `- Goal "p99 request latency < 100 ms", ${at}: **${d.goals.p99 ? 'met' : 'NOT met'}** (${fmt(j.latencyMillis.p99)} ms).`,
    );
  }
  out.push(`- Goal "restart after a crash (kill -9) < 5 s": **${d.goals.crashRestart ? 'met' : 'NOT met'}** (${fmt(d.crash.restartMillis)} ms).`, '');
  return out.join('\n');
}

if (process.argv[2] === '--child') {
  const [dir, from, users, journal] = process.argv.slice(3);
  await childMain(dir, Number(from), Number(users), JSON.parse(journal));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const opt = (name) => [name, { type: 'string' }];
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'stall-log': { type: 'boolean', default: false },
      why: { type: 'boolean', default: false },
      ...Object.fromEntries(['users', 'calls', 'seconds', 'snapshots', 'capacity-seconds', 'max-seconds', 'rates', 'snapshot-every-bytes', 'snapshot-sync-every-bytes', 'snapshot-loop-share', 'compare', 'compare-rounds'].map(opt)),
    },
  });
  const q = values.quick;
  const cfg = stallsConfig({
    users: Number(values.users ?? (q ? 2_000 : 100_000)),
    calls: Number(values.calls ?? (q ? 40_000 : 1_000_000)),
    seconds: Number(values.seconds ?? (q ? 2 : 15)),
    snapshots: Number(values.snapshots ?? 2),
    capacitySeconds: Number(values['capacity-seconds'] ?? (q ? 1.5 : 5)),
    maxSeconds: Number(values['max-seconds'] ?? (q ? 8 : 120)),
    ...(values.rates ? { rates: values.rates.split(',').map(Number) } : {}),
    snapshotEveryBytes: values['snapshot-every-bytes'] ? Number(values['snapshot-every-bytes']) : q ? 2 * 1024 * 1024 : undefined,
    ...(values['snapshot-sync-every-bytes'] ? { snapshotSyncEveryBytes: Number(values['snapshot-sync-every-bytes']) } : {}),
    ...(values['snapshot-loop-share'] ? { snapshotLoopShare: Number(values['snapshot-loop-share']) } : {}),
    ...(values.compare ? { compare: values.compare.split(';'), compareRounds: Number(values['compare-rounds'] ?? 3) } : {}),
  });
  const d = await benchLedgerStalls(cfg, (m) => process.stderr.write(`${m}\n`));
  if (d.compare) process.stdout.write(values.json ? `${JSON.stringify(d, null, 2)}\n` : compareMarkdown(d));
  else process.stdout.write(values.json ? `${JSON.stringify(d, null, 2)}\n` : stallsMarkdown(d));
}
