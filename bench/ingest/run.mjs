// Section 2 (and the ingest half of 5): acknowledged, ledger-committed, priced spans/s of the real exporter against
// the limit, a bare node:http receiver that only decodes the same OTLP/protobuf batches with the exporter's own
// decoder (the walker). Issue 15's goal: the exporter's ingest ≥ 0.5× that server with 1 and 8 senders, each request
// acknowledged only after the journal's fdatasync, with the ledger holding `users` users (so the state a snapshot
// writes is that large, and snapshots happen during the run). Both receivers (and the in-memory-ledger diagnostic)
// run side by side, each in its own process, and are driven in alternating rounds within one run with the same
// batches: the ratio is taken per round, and its median and range are reported. The machine's load moves every
// receiver alike within a round, not one of them over the whole run.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeBatches, planOf, userId, withFreshTraceIds } from '../lib/payloads.mjs';
import { postgresAvailable, startPostgres } from '../lib/postgres.mjs';
import { fmt, summary } from '../lib/stats.mjs';
import { drive, startServer, sumMetric } from './drive.mjs';

const BATCH = 512;
const GOAL = 0.5;

async function one(kind, storage, bodies, concurrency, cfg) {
  const server = await startServer(kind, storage);
  try {
    const r = await drive(server.url, bodies, { concurrency, warmup: cfg.warmupBatches, spansPerBody: BATCH });
    const stats = await server.stop();
    const sent = r.spans + r.warmupSpans;
    const out = { kind, concurrency, ...r, rate: summary(r.segmentRates), sentSpans: sent };
    if (stats.metricsText) {
      out.priced = sumMetric(stats.metricsText, 'tokenmeter_ingested_spans_total', { outcome: 'priced' });
      out.rejected = sumMetric(stats.metricsText, 'tokenmeter_ingested_spans_total', { outcome: 'rejected' });
      out.duplicates = sumMetric(stats.metricsText, 'tokenmeter_ingested_spans_total', { outcome: 'duplicate' });
      // The ledger's own count (period gauges re-read from the ledger at stop): every acknowledged span committed.
      out.ledgerRequests = sumMetric(stats.metricsText, 'tokenmeter_period_requests');
      out.unpriced = sumMetric(stats.metricsText, 'tokenmeter_unpriced_tokens_total') ?? 0;
      out.logs = stats.logs;
      out.consistent = out.priced === sent && out.ledgerRequests === sent && r.partialResponses === 0;
    } else {
      out.decodedSpans = stats.spans;
      out.consistent = stats.spans === sent;
    }
    return out;
  } catch (err) {
    await server.stop().catch(() => {});
    throw err;
  }
}

function tempDir() {
  return mkdtempSync(join(tmpdir(), 'tokenmeter-bench-ledger-'));
}

/** Calls for the preloaded ledger: call k goes to user k mod users (every user has one), in the current period. */
function preloadRecord(k, users) {
  const u = k % users;
  const period = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1));
  const input = 100 + (k % 997);
  const output = 10 + (k % 89);
  // gpt-4o-mini list prices (0.15 / 0.60 USD per million tokens) in exact decimal strings.
  const inCost = (BigInt(input) * 15n).toString().padStart(8, '0');
  const outCost = (BigInt(output) * 60n).toString().padStart(8, '0');
  const total = (BigInt(input) * 15n + BigInt(output) * 60n).toString().padStart(8, '0');
  const usd = (digits) => `0.${digits}`.replace(/\.?0+$/, '') || '0';
  return {
    traceId: `ee${k.toString(16).padStart(30, '0')}`,
    spanId: (k + 1).toString(16).padStart(16, '0'),
    endTimeMillis: period.getTime() + (k % 3_600_000),
    provider: 'openai',
    rawModel: 'gpt-4o-mini',
    model: 'gpt-4o-mini',
    operation: 'chat',
    usage: { input, cache_read: 0, cache_write: 0, output, reasoning: 0 },
    estimated: false,
    userId: userId(u),
    outcome: 'success',
    source: 'tokenmeter',
    plan: planOf(u),
    planFromSpan: planOf(u),
    periodStart: period.toISOString(),
    priced: true,
    priceId: 'openai/gpt-4o-mini',
    costUsd: { input: usd(inCost), cache_read: '0', cache_write: '0', output: usd(outCost), reasoning: '0' },
    totalCostUsd: usd(total),
  };
}

/**
 * Fills `dir` with `calls` calls of `users` users through the built journal ledger, without a snapshot at close:
 * the exporter then replays them at start, and its first snapshot comes after 64 MiB of journal (the default)
 * less what the preload wrote, i.e. during the measured rounds when they write enough.
 */
export async function preload(dir, users, calls) {
  const { JournalLedger } = await import('../../dist/ledger/index.js');
  const ledger = await JournalLedger.open(dir, {}, { snapshotOnClose: false });
  try {
    for (let k = 0; k < calls; k += 2000) {
      const batch = [];
      for (let i = k; i < Math.min(calls, k + 2000); i++) batch.push(preloadRecord(i, users));
      await ledger.commit(batch);
    }
    return ledger.journalBytesSinceSnapshot;
  } finally {
    await ledger.close();
  }
}

function snapshotNames(dir) {
  return readdirSync(dir).filter((n) => n.startsWith('snapshot-') && !n.endsWith('.tmp'));
}

const cpuMicros = (a, b) => b.user + b.system - (a.user + a.system);

/**
 * Issue 15's comparison: the walker decode-only server, the exporter with the embedded journal ledger (preloaded
 * with `cfg.users` users) and, as a diagnostic, the exporter with an in-memory ledger, each started once and driven
 * in alternating rounds (the order rotates every round) with the same batches (fresh trace ids each round, so the
 * exporter never deduplicates). Per round: each receiver's spans/s and CPU time per span; ratio = exporter / walker.
 */
async function alternatingRounds(cfg, log) {
  log(`ingest: building a pool of ${cfg.poolBatches} batches of ${BATCH} spans (${cfg.users.toLocaleString('en-US')} users)`);
  const pool = makeBatches({ batches: cfg.poolBatches, batchSize: BATCH, users: cfg.users, seed: 7 });
  const dir = tempDir();
  // Diagnostics: the exporter with other ingest.worker_threads than its default, each on its own preloaded ledger.
  const variants = (cfg.workerVariants ?? []).map((n) => ({ kind: `tokenmeter-embedded-w${n}`, workers: n, dir: tempDir() }));
  const receivers = [];
  try {
    const preloadCalls = cfg.preloadCalls ?? cfg.users;
    log(`ingest: preloading the journal ledger with ${preloadCalls.toLocaleString('en-US')} calls of ${cfg.users.toLocaleString('en-US')} users`);
    const p0 = performance.now();
    const preloadBytes = await preload(dir, cfg.users, preloadCalls);
    const preloadSeconds = (performance.now() - p0) / 1000;
    for (const v of variants) await preload(v.dir, cfg.users, preloadCalls);
    const kinds = ['decode-walker', 'tokenmeter-embedded', ...variants.map((v) => v.kind), ...(cfg.diagnostic ? ['tokenmeter-noledger'] : [])];
    for (const kind of kinds) {
      const v = variants.find((x) => x.kind === kind);
      const server = v
        ? await startServer('tokenmeter', v.dir, { option: `workers=${v.workers}` })
        : await startServer(kind === 'tokenmeter-embedded' ? 'tokenmeter' : kind, kind === 'tokenmeter-embedded' ? dir : undefined);
      receivers.push({ kind, server });
    }
    const embedded = receivers.find((r) => r.kind === 'tokenmeter-embedded');
    const startMillis = embedded.server.startMillis;
    const usersAtStart = sumMetric(embedded.server.initialMetricsText, 'tokenmeter_user_series');
    const requestsAtStart = sumMetric(embedded.server.initialMetricsText, 'tokenmeter_period_requests');
    const snapshotsBefore = new Set(snapshotNames(dir));
    let variant = 0;
    let nextBody = 0;
    // A new variant for every copy (a round may hold more batches than the pool): no span is ever sent twice to
    // the same receiver; every receiver of a round gets the same copies.
    const roundBodies = (n) => {
      const out = [];
      for (let i = 0; i < n; i++) {
        const b = nextBody++ % pool.bodies.length;
        out.push(withFreshTraceIds(pool.bodies[b], pool.traceIdOffsets[b], ++variant));
      }
      return out;
    };
    const sent = Object.fromEntries(kinds.map((k) => [k, 0]));
    const levels = [];
    for (const c of cfg.concurrency) {
      const rounds = [];
      for (let r = -cfg.warmupRounds; r < cfg.rounds; r++) {
        const bodies = roundBodies(r < 0 ? cfg.warmupBatches : cfg.roundBatches);
        const order = kinds.map((_, i) => kinds[(i + Math.max(0, r)) % kinds.length]);
        const round = { order, receivers: {} };
        for (const kind of order) {
          const { server } = receivers.find((x) => x.kind === kind);
          const cpu0 = await server.cpu();
          const d = await drive(server.url, bodies, { concurrency: c, warmup: 0, spansPerBody: BATCH });
          const cpu1 = await server.cpu();
          sent[kind] += d.spans;
          if (d.partialResponses > 0) throw new Error(`${kind}: ${d.partialResponses} partial-success responses (rejected spans) in a round`);
          round.receivers[kind] = {
            spansPerSecond: d.spansPerSecond,
            cpuMicrosPerSpan: cpuMicros(cpu0, cpu1) / d.spans,
            // The main thread's own (the event loop's): what bounds the exporter when worker threads take the rest.
            mainCpuMicrosPerSpan: cpu0.main !== undefined && cpu1.main !== undefined ? (cpu1.main - cpu0.main) / d.spans : undefined,
            seconds: d.seconds,
          };
        }
        if (r < 0) continue;
        const w = round.receivers['decode-walker'];
        round.ratio = round.receivers['tokenmeter-embedded'].spansPerSecond / w.spansPerSecond;
        round.cpuRatio = w.cpuMicrosPerSpan / round.receivers['tokenmeter-embedded'].cpuMicrosPerSpan;
        rounds.push(round);
        log(`ingest: ${c} sender(s), round ${r + 1}/${cfg.rounds}: ${kinds.map((k) => `${k} ${fmt(round.receivers[k].spansPerSecond)} spans/s`).join(', ')}; ratio ${fmt(round.ratio, 2)}`);
      }
      const ratio = summary(rounds.map((x) => x.ratio));
      levels.push({
        concurrency: c,
        rounds,
        ratio,
        cpuRatio: summary(rounds.map((x) => x.cpuRatio)),
        receivers: Object.fromEntries(
          kinds.map((k) => [
            k,
            {
              spansPerSecond: summary(rounds.map((x) => x.receivers[k].spansPerSecond)),
              cpuMicrosPerSpan: summary(rounds.map((x) => x.receivers[k].cpuMicrosPerSpan)),
              ...(rounds.every((x) => x.receivers[k].mainCpuMicrosPerSpan !== undefined) ? { mainCpuMicrosPerSpan: summary(rounds.map((x) => x.receivers[k].mainCpuMicrosPerSpan)) } : {}),
            },
          ]),
        ),
        goalMet: ratio.median >= GOAL,
      });
    }
    const snapshotsDuringRun = snapshotNames(dir).filter((n) => !snapshotsBefore.has(n)).length;
    const stops = {};
    for (const { kind, server } of receivers.splice(0)) stops[kind] = await server.stop();
    const text = stops['tokenmeter-embedded'].metricsText;
    const check = {
      acked: sent['tokenmeter-embedded'],
      priced: sumMetric(text, 'tokenmeter_ingested_spans_total', { outcome: 'priced' }),
      duplicates: sumMetric(text, 'tokenmeter_ingested_spans_total', { outcome: 'duplicate' }) ?? 0,
      rejected: sumMetric(text, 'tokenmeter_ingested_spans_total', { outcome: 'rejected' }) ?? 0,
      // The ledger's own count (period gauges re-read from the ledger at stop): the preload plus every acked span.
      ledgerRequests: sumMetric(text, 'tokenmeter_period_requests'),
      preloadCalls,
      walkerDecoded: stops['decode-walker'].spans,
      walkerSent: sent['decode-walker'],
    };
    check.consistent = check.priced === check.acked && check.ledgerRequests === check.acked + preloadCalls && check.walkerDecoded === check.walkerSent;
    for (const v of variants) {
      const t = stops[v.kind].metricsText;
      const ok = sumMetric(t, 'tokenmeter_ingested_spans_total', { outcome: 'priced' }) === sent[v.kind] && sumMetric(t, 'tokenmeter_period_requests') === sent[v.kind] + preloadCalls;
      check.variants = { ...check.variants, [v.kind]: ok };
      if (!ok) check.consistent = false;
    }
    return {
      payload: { spansPerBatch: BATCH, poolBatches: cfg.poolBatches, bytesPerBatch: pool.bytes / cfg.poolBatches, users: cfg.users },
      preload: { calls: preloadCalls, users: cfg.users, journalBytes: preloadBytes, seconds: preloadSeconds, exporterStartMillis: startMillis, usersAtStart, requestsAtStart },
      snapshotsDuringRun,
      levels,
      check,
      logs: stops['tokenmeter-embedded'].logs,
    };
  } finally {
    for (const { server } of receivers) await server.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    for (const v of variants) rmSync(v.dir, { recursive: true, force: true });
  }
}

export async function benchIngest(cfg, log) {
  const notes = [];
  const goal = await alternatingRounds(cfg, log);
  const runs = [];
  let pgVersion;
  if (!cfg.postgres) notes.push('PostgreSQL runs skipped by configuration.');
  else if (!postgresAvailable()) notes.push('PostgreSQL runs skipped: /usr/lib/postgresql/15/bin/pg_ctl is not installed.');
  else {
    const bodies = makeBatches({ batches: cfg.batches, batchSize: BATCH, users: cfg.growthUsers[0], seed: 7 }).bodies;
    const pg = await startPostgres();
    pgVersion = pg.version;
    try {
      for (const c of cfg.concurrency) {
        log(`ingest: tokenmeter + PostgreSQL, ${c} sender(s)`);
        runs.push({ receiver: 'tokenmeter-postgres', users: cfg.growthUsers[0], ...(await one('tokenmeter', await pg.createDatabase(), bodies, c, cfg)) });
      }
    } finally {
      await pg.cleanup();
    }
  }
  // Growth with users: same number of calls, more distinct users (a fresh ledger each).
  const growth = [];
  const gc = Math.max(...cfg.concurrency);
  for (const users of cfg.growthUsers) {
    const bodies = makeBatches({ batches: cfg.batches, batchSize: BATCH, users, seed: 11 }).bodies;
    log(`ingest growth: tokenmeter + embedded ledger, ${users} users, ${gc} senders`);
    const dir = tempDir();
    try {
      growth.push({ receiver: 'tokenmeter-embedded', users, ...(await one('tokenmeter', dir, bodies, gc, cfg)) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { config: cfg, goal, postgresVersion: pgVersion, runs, growth, notes };
}

const LABEL = new Proxy({
  'decode-walker': "bare node:http, tokenmeter's walker decode only (the limit)",
  'tokenmeter-noledger': 'diagnostic: tokenmeter with an in-memory ledger (every other stage real)',
  'tokenmeter-embedded': 'tokenmeter, embedded ledger (journal, ack after fdatasync)',
  'tokenmeter-postgres': 'tokenmeter, PostgreSQL 15',
}, {
  get: (t, k) => t[k] ?? (/^tokenmeter-embedded-w\d+$/.test(k) ? `diagnostic: tokenmeter, embedded ledger, ingest.worker_threads = ${k.slice(21)}` : k),
});

function check(r) {
  if (r.priced === undefined) return `${r.decodedSpans} decoded`;
  return `${r.consistent ? 'ok' : '**MISMATCH**'}: ${r.sentSpans} acked, ${r.priced} priced, ${r.ledgerRequests} in ledger`;
}

/** The goal's verdict per sender count, e.g. for the goals table: `{ concurrency, ratio, goalMet }`. */
export function ingestGoalRows(d) {
  return d.goal.levels.map((l) => ({ concurrency: l.concurrency, ratio: l.ratio, cpuRatio: l.cpuRatio, goalMet: l.goalMet && d.goal.check.consistent, spansPerSecond: l.receivers['tokenmeter-embedded'].spansPerSecond.median }));
}

export function ingestMarkdown(d) {
  const g = d.goal;
  const c = d.config;
  const out = [];
  out.push(
    `OTLP/HTTP protobuf batches of ${g.payload.spansPerBatch} GenAI spans (${fmt(g.payload.bytesPerBatch / 1024)} KiB each), made by the OTel JS SDK and ` +
      `its ProtobufTraceSerializer, tokenmeter-style attributes, ${g.payload.users.toLocaleString('en-US')} users, 7 catalog models; a pool of ${g.payload.poolBatches} batches ` +
      `whose trace ids are rewritten for every round (every span unique). Each receiver in its own process, senders in this one; a sender waits for the ` +
      `acknowledgement before sending its next batch. The receivers are started once and driven in alternating rounds (order rotating), ` +
      `${c.rounds} rounds of ${c.roundBatches} batches per sender count after ${c.warmupRounds} warm-up round(s), every receiver with the same batches; ` +
      `ratio = tokenmeter's spans/s ÷ the walker decode-only server's in the same round. ` +
      `The journal ledger was preloaded with ${g.preload.calls.toLocaleString('en-US')} calls of ${g.preload.users.toLocaleString('en-US')} users ` +
      `(${fmt(g.preload.journalBytes / 1024 / 1024)} MiB of journal, replayed at start in ${fmt(g.preload.exporterStartMillis)} ms); ` +
      `snapshots written during the rounds: **${g.snapshotsDuringRun}**. Each request is acknowledged only after the journal's fdatasync.`,
    '',
  );
  out.push('| receiver | senders | spans/s, median (range) | CPU µs per span, median (range) | of it the main thread\'s |');
  out.push('| --- | --- | --- | --- | --- |');
  for (const l of g.levels) {
    for (const [k, v] of Object.entries(l.receivers)) {
      const main = v.mainCpuMicrosPerSpan ? `${fmt(v.mainCpuMicrosPerSpan.median, 2)} (${fmt(v.mainCpuMicrosPerSpan.min, 2)}–${fmt(v.mainCpuMicrosPerSpan.max, 2)})` : '–';
      out.push(`| ${LABEL[k]} | ${l.concurrency} | **${fmt(v.spansPerSecond.median)}** (${fmt(v.spansPerSecond.min)}–${fmt(v.spansPerSecond.max)}) | ${fmt(v.cpuMicrosPerSpan.median, 2)} (${fmt(v.cpuMicrosPerSpan.min, 2)}–${fmt(v.cpuMicrosPerSpan.max, 2)}) | ${main} |`);
    }
  }
  out.push('');
  for (const l of g.levels) {
    out.push(
      `- **${l.concurrency} sender(s): ${fmt(l.ratio.median, 2)}×** the walker decode-only server (range ${fmt(l.ratio.min, 2)}–${fmt(l.ratio.max, 2)} over ${l.ratio.n} rounds; ` +
        `by CPU time per span ${fmt(l.cpuRatio.median, 2)}×) — goal ≥ ${GOAL}: **${l.goalMet && g.check.consistent ? 'met' : 'NOT met'}**.`,
    );
  }
  const k = g.check;
  out.push(
    `- Check: ${k.consistent ? 'ok' : '**MISMATCH**'}: ${k.acked.toLocaleString('en-US')} spans acknowledged, ${k.priced?.toLocaleString('en-US')} priced, ` +
      `${k.ledgerRequests?.toLocaleString('en-US')} calls in the ledger (${k.preloadCalls.toLocaleString('en-US')} preloaded), ${k.duplicates} duplicates, ${k.rejected} rejected; walker ${k.walkerDecoded} of ${k.walkerSent} decoded.`,
  );
  if (g.snapshotsDuringRun === 0) out.push('- No snapshot was written during the rounds (too few calls: the journal snapshots every 64 MiB), so this run does not show their cost.');
  if (d.runs.length > 0) {
    out.push('', '| receiver | senders | spans/s | range | check |', '| --- | --- | --- | --- | --- |');
    for (const r of d.runs) out.push(`| ${LABEL[r.receiver]} (${r.users.toLocaleString('en-US')} users) | ${r.concurrency} | **${fmt(r.spansPerSecond)}** | ${fmt(r.rate.min)}–${fmt(r.rate.max)} | ${check(r)} |`);
    out.push('');
  }
  if (d.postgresVersion) out.push(`- PostgreSQL: ${d.postgresVersion}, default settings (fsync on), started in a temp directory on loopback; not part of the goal.`);
  for (const n of d.notes) out.push(`- ${n}`);
  out.push('');
  return out.join('\n');
}

export function ingestGrowthMarkdown(d) {
  const out = ['| distinct users | calls | spans/s (8 senders, embedded journal ledger) | range | check |', '| --- | --- | --- | --- | --- |'];
  for (const g of d.growth) out.push(`| ${g.users.toLocaleString('en-US')} | ${g.sentSpans.toLocaleString('en-US')} | ${fmt(g.spansPerSecond)} | ${fmt(g.rate.min)}–${fmt(g.rate.max)} | ${check(g)} |`);
  return out.join('\n');
}

// Directly: `node bench/ingest/run.mjs [--users=N] [--rounds=N] [--batches=N] [--senders=1,8] [--workers=0,2]`: only the
// goal's alternating rounds (no PostgreSQL, no growth), with exporters at other ingest.worker_threads as diagnostics.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({ options: { users: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' }, batches: { type: 'string', default: '30' }, senders: { type: 'string', default: '1,8' }, workers: { type: 'string', default: '0' }, diagnostic: { type: 'boolean', default: false } } });
  const cfg = {
    users: Number(values.users),
    poolBatches: 20,
    rounds: Number(values.rounds),
    roundBatches: Number(values.batches),
    warmupRounds: 1,
    warmupBatches: 10,
    diagnostic: values.diagnostic,
    concurrency: values.senders.split(',').map(Number),
    workerVariants: values.workers === '' ? [] : values.workers.split(',').map(Number),
  };
  const goal = await alternatingRounds(cfg, (line) => console.error(line));
  console.log(ingestMarkdown({ goal, config: cfg, runs: [], notes: [] }));
}
