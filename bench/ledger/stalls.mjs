// Issue 15, points 1 and 5: the journal ledger under sustained ingest with many users, snapshots included: the
// longest event-loop stall, commit (request) latency percentiles, close(), and the restart times (clean close vs
// kill -9). In-process on the built ledger (dist/), no HTTP: the figures are the ledger's own, not the exporter's.
//
//   node bench/ledger/stalls.mjs [--quick] [--users=100000] [--calls=1000000] [--seconds=15] [--snapshot-every-bytes=N]
// (a huge --snapshot-every-bytes runs the same load without snapshots, to tell their stalls from the rest)
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { JournalLedger } from '../../dist/ledger/index.js';
import { fmt, fmtBytes } from '../lib/stats.mjs';

const PERIOD = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1)).toISOString();
const BATCH = 512;
const STALL_LOG = process.argv.includes('--stall-log');
const SENDERS = 8;
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

export async function benchLedgerStalls(cfg, log = console.log) {
  const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-bench-stalls-'));
  const journal = cfg.snapshotEveryBytes ? { snapshotEveryBytes: cfg.snapshotEveryBytes } : {};
  try {
    // A month of calls for every user (the state a snapshot and a restart carry).
    log(`ledger stalls: prefilling ${cfg.calls.toLocaleString('en-US')} calls for ${cfg.users.toLocaleString('en-US')} users`);
    let ledger = await JournalLedger.open(dir, {}, journal);
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

    // Sustained ingest for cfg.seconds: every commit's latency and the longest stall, snapshots happening.
    log(`ledger stalls: sustained ingest for ${cfg.seconds} s`);
    const snapsBefore = new Set(snapshotFiles(dir).map((s) => s.name));
    let snapshotsStarted = 0;
    let lastBytes = ledger.journalBytesSinceSnapshot;
    const poll = setInterval(() => {
      const b = ledger.journalBytesSinceSnapshot;
      if (b < lastBytes) snapshotsStarted++;
      lastBytes = b;
    }, 1);
    if (STALL_LOG) process.stderr.write(`phase sustained from ${performance.now().toFixed(0)} ms\n`);
    const run = await watchLoop(() => ingest(ledger, cfg.calls, Number.MAX_SAFE_INTEGER, cfg.users, performance.now() + cfg.seconds * 1000));
    clearInterval(poll);
    if (STALL_LOG) process.stderr.write(`phase sustained to ${performance.now().toFixed(0)} ms\n`);
    // Wait for a snapshot still being written (it is part of the run's load, not of close below).
    const settle = await watchLoop(() => ledger.checkpoint());
    const sustainedCalls = run.value.next - cfg.calls;
    const lat = [...run.value.latencies].sort((a, b) => a - b);
    const snapshotsWritten = snapshotFiles(dir).filter((s) => !snapsBefore.has(s.name)).length;

    // close() with commits queued behind it: the stall it causes (it writes a snapshot).
    await ingest(ledger, run.value.next, run.value.next + SENDERS * BATCH, cfg.users);
    const closing = await watchLoop(async () => {
      const c0 = performance.now();
      await ledger.close();
      return performance.now() - c0;
    });
    const callsInLedger = run.value.next + SENDERS * BATCH;

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
      sustainedCallsPerSecond: sustainedCalls / cfg.seconds,
      commits: lat.length,
      latencyMillis: { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1] },
      longestStallMillis: Math.max(run.longestGapMillis, settle.longestGapMillis),
      longestStallCpuMillis: Math.max(run.longestCpuMillis, settle.longestCpuMillis),
      loopDelayMaxMillis: Math.max(run.delayMaxMillis, settle.delayMaxMillis),
      snapshotsStarted,
      snapshotsWritten,
      snapshotBytes: snapshotFiles(dir).map((s) => s.bytes),
      idleSnapshot: { millis: idle.value, longestStallMillis: idle.longestGapMillis, longestStallCpuMillis: idle.longestCpuMillis },
      loadAverage: os.loadavg(),
      close: { millis: closing.value, longestStallMillis: closing.longestGapMillis, longestStallCpuMillis: closing.longestCpuMillis },
      cleanRestartMillis,
      cleanRestartCpuMillis,
      cleanRestartConsistent: cleanRequests === callsInLedger,
      crash: { ...crash, restartMillis: crashRestartMillis, restartCpuMillis: crashRestartCpuMillis, requestsAfter: crashRequests, consistent: crashRequests >= crash.acknowledged && crashRequests <= crash.attempted },
      goals: {
        stall: Math.max(run.longestGapMillis, settle.longestGapMillis, closing.longestGapMillis) < 50,
        p99: percentile(lat, 99) < 100,
        crashRestart: crashRestartMillis < 5000,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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

export function stallsMarkdown(d) {
  const out = [];
  out.push(
    `The journal ledger in-process (no HTTP): ${d.config.calls.toLocaleString('en-US')} calls prefilled for ${d.config.users.toLocaleString('en-US')} users, then ` +
      `${d.config.seconds} s of sustained ingest (${SENDERS} concurrent callers committing batches of ${BATCH}, closed loop) while snapshots are written; ` +
      `"request latency" is one commit's latency (queue + journal write + fdatasync + totals). Stalls: the longest gap between 1 ms timer ticks, and that gap counted in the CPU time the process used during it ` +
      `(every thread of it: an upper bound on the event loop's own work; the rest of a gap is waiting for a core).`,
    '',
    '| figure | value |',
    '| --- | --- |',
    `| one snapshot of the whole state, ledger idle | ${fmt(d.idleSnapshot.millis)} ms to write, longest stall during it **${fmt(d.idleSnapshot.longestStallMillis)} ms** (in CPU time ≤ ${fmt(d.idleSnapshot.longestStallCpuMillis)} ms) |`,
    `| sustained ingest | ${fmt(d.sustainedCallsPerSecond)} calls/s (${d.commits.toLocaleString('en-US')} commits) |`,
    `| snapshots during it | ${d.snapshotsStarted} begun, ${d.snapshotsWritten} written (${d.snapshotBytes.map(fmtBytes).join(', ')} on disk at the end) |`,
    `| longest event-loop stall (ingest + snapshots) | **${fmt(d.longestStallMillis)} ms** (in CPU time ≤ ${fmt(d.longestStallCpuMillis)} ms; event-loop delay histogram max ${fmt(d.loopDelayMaxMillis)} ms) |`,
    `| commit latency p50 / p99 / max | ${fmt(d.latencyMillis.p50)} / **${fmt(d.latencyMillis.p99)}** / ${fmt(d.latencyMillis.max)} ms |`,
    `| close() (writes a snapshot) | ${fmt(d.close.millis)} ms, longest stall during it ${fmt(d.close.longestStallMillis)} ms (in CPU time ≤ ${fmt(d.close.longestStallCpuMillis)} ms) |`,
    `| restart after a clean close | ${fmt(d.cleanRestartMillis)} ms, ${fmt(d.cleanRestartCpuMillis)} ms of CPU time (${d.cleanRestartConsistent ? 'every call reloaded' : '**MISMATCH**'}) |`,
    `| restart after kill -9 (${fmtBytes(d.crash.journalBytesToReplay)} of journal to replay) | **${fmt(d.crash.restartMillis)} ms**, ${fmt(d.crash.restartCpuMillis)} ms of CPU time (${d.crash.consistent ? 'every acknowledged call reloaded' : '**MISMATCH**'}) |`,
    `| machine load average (1, 5, 15 min) at the end | ${d.loadAverage.map((v) => fmt(v)).join(', ')} (the machine's core count: ${os.cpus().length}) |`,
    '',
    `- Goal "longest stall < 50 ms under sustained ingest with snapshots, and during close()": **${d.goals.stall ? 'met' : 'NOT met'}**.`,
    `- Goal "p99 request latency < 100 ms": **${d.goals.p99 ? 'met' : 'NOT met'}** (${fmt(d.latencyMillis.p99)} ms).`,
    `- Goal "restart after a crash (kill -9) < 5 s": **${d.goals.crashRestart ? 'met' : 'NOT met'}** (${fmt(d.crash.restartMillis)} ms).`,
    '',
  );
  return out.join('\n');
}

if (process.argv[2] === '--child') {
  const [dir, from, users, journal] = process.argv.slice(3);
  await childMain(dir, Number(from), Number(users), JSON.parse(journal));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, users: { type: 'string' }, calls: { type: 'string' }, seconds: { type: 'string' }, 'snapshot-every-bytes': { type: 'string' }, json: { type: 'boolean', default: false }, 'stall-log': { type: 'boolean', default: false } } });
  const cfg = {
    users: Number(values.users ?? (values.quick ? 2_000 : 100_000)),
    calls: Number(values.calls ?? (values.quick ? 40_000 : 1_000_000)),
    seconds: Number(values.seconds ?? (values.quick ? 3 : 15)),
    snapshotEveryBytes: values['snapshot-every-bytes'] ? Number(values['snapshot-every-bytes']) : values.quick ? 2 * 1024 * 1024 : undefined,
  };
  const d = await benchLedgerStalls(cfg, (m) => process.stderr.write(`${m}\n`));
  process.stdout.write(values.json ? `${JSON.stringify(d, null, 2)}\n` : stallsMarkdown(d));
}
