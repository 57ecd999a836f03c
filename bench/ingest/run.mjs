// Section 2 (and the ingest half of 5): acknowledged, ledger-committed, priced spans/s of the real exporter against
// bare node:http receivers that only decode the same OTLP/protobuf batches.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBatches } from '../lib/payloads.mjs';
import { postgresAvailable, startPostgres } from '../lib/postgres.mjs';
import { fmt, summary } from '../lib/stats.mjs';
import { drive, startServer, sumMetric } from './drive.mjs';

const BATCH = 512;

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

export async function benchIngest(cfg, log) {
  log(`ingest: building ${cfg.batches} batches of ${BATCH} spans (${cfg.users} users)`);
  const pool = makeBatches({ batches: cfg.batches, batchSize: BATCH, users: cfg.users, seed: 7 });
  const runs = [];
  const notes = [];
  for (const c of cfg.concurrency) {
    for (const kind of ['decode-protobufjs', 'decode-walker']) {
      log(`ingest: ${kind}, ${c} sender(s)`);
      runs.push({ receiver: kind, ...(await one(kind, undefined, pool.bodies, c, cfg)) });
    }
    log(`ingest: tokenmeter without a ledger (diagnostic), ${c} sender(s)`);
    runs.push({ receiver: 'tokenmeter-noledger', ...(await one('tokenmeter-noledger', undefined, pool.bodies, c, cfg)) });
    log(`ingest: tokenmeter + embedded ledger (journal), ${c} sender(s)`);
    const dir = tempDir();
    try {
      runs.push({ receiver: 'tokenmeter-embedded', users: cfg.users, ...(await one('tokenmeter', dir, pool.bodies, c, cfg)) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  let pgVersion;
  if (!cfg.postgres) notes.push('PostgreSQL runs skipped by configuration.');
  else if (!postgresAvailable()) notes.push('PostgreSQL runs skipped: /usr/lib/postgresql/15/bin/pg_ctl is not installed.');
  else {
    const pg = await startPostgres();
    pgVersion = pg.version;
    try {
      for (const c of cfg.concurrency) {
        log(`ingest: tokenmeter + PostgreSQL, ${c} sender(s)`);
        runs.push({ receiver: 'tokenmeter-postgres', users: cfg.users, ...(await one('tokenmeter', await pg.createDatabase(), pool.bodies, c, cfg)) });
      }
    } finally {
      await pg.cleanup();
    }
  }
  // Growth with users: same number of calls, more distinct users.
  const growth = [];
  const gc = Math.max(...cfg.concurrency);
  for (const users of cfg.growthUsers) {
    const same = runs.find((r) => r.receiver === 'tokenmeter-embedded' && r.concurrency === gc && users === cfg.users);
    if (same) {
      growth.push({ ...same, users });
      continue;
    }
    const bodies = makeBatches({ batches: cfg.batches, batchSize: BATCH, users, seed: 11 }).bodies;
    log(`ingest growth: tokenmeter + embedded ledger, ${users} users, ${gc} senders`);
    const dir = tempDir();
    try {
      growth.push({ receiver: 'tokenmeter-embedded', users, ...(await one('tokenmeter', dir, bodies, gc, cfg)) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const ratios = {};
  for (const c of cfg.concurrency) {
    const limit = runs.find((r) => r.receiver === 'decode-protobufjs' && r.concurrency === c);
    const walker = runs.find((r) => r.receiver === 'decode-walker' && r.concurrency === c);
    for (const r of runs.filter((x) => x.receiver.startsWith('tokenmeter') && x.receiver !== 'tokenmeter-noledger' && x.concurrency === c)) {
      ratios[`${r.receiver}/${c}`] = { vsProtobufjs: r.spansPerSecond / limit.spansPerSecond, vsWalker: r.spansPerSecond / walker.spansPerSecond };
    }
  }
  return { config: cfg, payload: { spansPerBatch: BATCH, batches: cfg.batches, bytesPerBatch: pool.bytes / cfg.batches, users: cfg.users }, postgresVersion: pgVersion, runs, growth, ratios, notes };
}

const LABEL = {
  'decode-protobufjs': 'bare node:http, protobufjs decode only (the limit)',
  'decode-walker': "bare node:http, tokenmeter's walker decode only",
  'tokenmeter-noledger': 'diagnostic: tokenmeter with an in-memory ledger (every other stage real)',
  'tokenmeter-embedded': 'tokenmeter, embedded ledger (journal)',
  'tokenmeter-postgres': 'tokenmeter, PostgreSQL 15',
};

function check(r) {
  if (r.priced === undefined) return `${r.decodedSpans} decoded`;
  if (r.receiver === 'tokenmeter-noledger') return `${r.consistent ? 'ok' : '**MISMATCH**'}: ${r.sentSpans} acked, ${r.priced} priced (not durable)`;
  return `${r.consistent ? 'ok' : '**MISMATCH**'}: ${r.sentSpans} acked, ${r.priced} priced, ${r.ledgerRequests} in ledger`;
}

export function ingestMarkdown(d) {
  const out = [];
  out.push(
    `OTLP/HTTP protobuf batches of ${d.payload.spansPerBatch} GenAI spans (${fmt(d.payload.bytesPerBatch / 1024)} KiB each), made by the OTel JS SDK and ` +
      `its ProtobufTraceSerializer, tokenmeter-style attributes, ${d.payload.users} users, 7 catalog models; ${d.payload.batches} batches per run ` +
      `(${d.config.warmupBatches} of them warm-up), every span unique. Receiver in its own process, senders in another; a sender waits for the ` +
      `acknowledgement before sending its next batch. Rate = spans of the timed batches / time; range = the slowest and fastest fifth of the run (the whole run's rate when it is too short to split).`,
    '',
  );
  out.push('| receiver | senders | spans/s | range | check |');
  out.push('| --- | --- | --- | --- | --- |');
  for (const r of d.runs) out.push(`| ${LABEL[r.receiver]} | ${r.concurrency} | **${fmt(r.spansPerSecond)}** | ${fmt(r.rate.min)}–${fmt(r.rate.max)} | ${check(r)} |`);
  out.push('');
  for (const [k, v] of Object.entries(d.ratios)) {
    const [recv, c] = k.split('/');
    const goal = recv === 'tokenmeter-embedded' ? ` — goal ≥ 0.5: **${v.vsProtobufjs >= 0.5 ? 'met' : 'NOT met'}**` : '';
    out.push(`- ${LABEL[recv]}, ${c} sender(s): **${fmt(v.vsProtobufjs, 2)}×** the protobufjs decode-only limit (${fmt(v.vsWalker, 2)}× the walker decode-only server)${goal}.`);
  }
  for (const c of d.config.concurrency) {
    const nl = d.runs.find((r) => r.receiver === 'tokenmeter-noledger' && r.concurrency === c);
    const em = d.runs.find((r) => r.receiver === 'tokenmeter-embedded' && r.concurrency === c);
    const lim = d.runs.find((r) => r.receiver === 'decode-protobufjs' && r.concurrency === c);
    if (nl && em && lim) {
      // Per-span time differences between receivers of the same run (each receiver is one event loop).
      const perSpan = (r) => 1e6 / r.spansPerSecond;
      out.push(
        `- What limits it, ${c} sender(s): without the ledger the same exporter reaches ${fmt(nl.spansPerSecond)} spans/s (${fmt((100 * nl.spansPerSecond) / lim.spansPerSecond, 0)}% of the limit), ` +
          `so the stages before the ledger cost about ${fmt(perSpan(nl) - perSpan(lim))} µs per span above decoding and the embedded (journal) ledger about ` +
          `${fmt(perSpan(em) - perSpan(nl))} µs per span.`,
      );
    }
  }
  if (d.postgresVersion) out.push(`- PostgreSQL: ${d.postgresVersion}, default settings (fsync on), started in a temp directory on loopback.`);
  for (const n of d.notes) out.push(`- ${n}`);
  out.push('');
  return out.join('\n');
}

export function ingestGrowthMarkdown(d) {
  const out = ['| distinct users | calls | spans/s (8 senders, embedded journal ledger) | range | check |', '| --- | --- | --- | --- | --- |'];
  for (const g of d.growth) out.push(`| ${g.users.toLocaleString('en-US')} | ${g.sentSpans.toLocaleString('en-US')} | ${fmt(g.spansPerSecond)} | ${fmt(g.rate.min)}–${fmt(g.rate.max)} | ${check(g)} |`);
  return out.join('\n');
}
