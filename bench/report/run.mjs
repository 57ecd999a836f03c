#!/usr/bin/env node
// Issue 18: a billing report of one closed period (2026-11) over a ledger of N calls for U users, on the embedded
// journal ledger and on PostgreSQL. Each measurement runs in its own child process so that its peak memory
// (maxRSS) is its own: "open" opens the ledger and closes it (the baseline: the journal ledger holds the period
// totals in memory anyway), "user" adds a --by user report (from the rollups), "day" a --by day report (one pass
// over every call of the period). The report is written as CSV to a counting sink.
//   node bench/report/run.mjs [--quick] [--calls=N] [--users=N] [--pg-calls=N] [--no-postgres]
// Needs dist/ (npm run build). Prints a Markdown table on stdout, progress on stderr.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { postgresAvailable, startPostgres } from '../lib/postgres.mjs';

const SELF = fileURLToPath(import.meta.url);
const NOV = Date.parse('2026-11-01T00:00:00Z');
const DAY = 86_400_000;
const MODELS = [
  ['openai', 'gpt-4o-mini', '0.00000015', '0.0000006'],
  ['openai', 'gpt-4o', '0.0000025', '0.00001'],
  ['anthropic', 'claude-sonnet-4-5', '0.000003', '0.000015'],
];

/** Exact product of an integer token count and a per-token decimal rate, as a decimal string. */
function times(tokens, rate) {
  const [i, f = ''] = rate.split('.');
  const digits = (BigInt(tokens) * BigInt(i + f)).toString().padStart(f.length + 1, '0');
  const out = f.length ? `${digits.slice(0, -f.length)}.${digits.slice(-f.length)}` : digits;
  return out.includes('.') ? out.replace(/0+$/, '').replace(/\.$/, '') || '0' : out;
}
function add(a, b) {
  const s = Math.max((a.split('.')[1] ?? '').length, (b.split('.')[1] ?? '').length);
  const big = (v) => BigInt(v.split('.')[0] + (v.split('.')[1] ?? '').padEnd(s, '0'));
  const d = (big(a) + big(b)).toString().padStart(s + 1, '0');
  return s ? `${d.slice(0, -s)}.${d.slice(-s)}`.replace(/0+$/, '').replace(/\.$/, '') : d;
}

function record(k, users, calls) {
  const [provider, model, inRate, outRate] = MODELS[k % MODELS.length];
  const input = 200 + ((k * 7919) % 4000);
  const output = (k * 104729) % 900;
  const costIn = times(input, inRate);
  const costOut = times(output, outRate);
  const user = (k * 7919) % users;
  return {
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    endTimeMillis: NOV + Math.floor((k / calls) * 30 * DAY),
    provider,
    rawModel: model,
    model,
    operation: 'chat',
    usage: { input, cache_read: 0, cache_write: 0, output, reasoning: 0 },
    estimated: false,
    userId: `user-${user}`,
    feature: ['chat', 'search', 'summarise'][k % 3],
    outcome: 'success',
    source: 'bench',
    plan: ['free', 'pro', 'team'][user % 3],
    periodStart: new Date(NOV).toISOString(),
    priced: true,
    priceId: `${provider}/${model}`,
    costUsd: { input: costIn, cache_read: '0', cache_write: '0', output: costOut, reasoning: '0' },
    totalCostUsd: add(costIn, costOut),
  };
}

async function fill(storage, calls, users, log) {
  const { openLedger } = await import('../../dist/ledger/index.js');
  const ledger = await openLedger(storage, { clock: { now: () => new Date('2026-12-03T12:00:00Z') } });
  const t0 = performance.now();
  const batch = 2000;
  for (let k = 0; k < calls; k += batch) {
    const recs = [];
    for (let j = k; j < Math.min(calls, k + batch); j++) recs.push(record(j, users, calls));
    await ledger.commit(recs);
    if ((k / batch) % 50 === 0) log(`  ${k + recs.length} calls committed`);
  }
  await ledger.close();
  return (performance.now() - t0) / 1000;
}

/** In a child: open the ledger, optionally write a report, print timings and peak memory as JSON. */
async function child(storage, by) {
  const { openLedger } = await import('../../dist/ledger/index.js');
  const { reportLines, writeReport, calendarOf, periodStatus } = await import('../../dist/report/index.js');
  const t0 = performance.now();
  const ledger = await openLedger(storage, { clock: { now: () => new Date('2026-12-03T12:00:00Z') } });
  const openSeconds = (performance.now() - t0) / 1000;
  const heapAfterOpen = process.memoryUsage().heapUsed;
  let reportSeconds = 0;
  let bytes = 0;
  let lines = 0;
  let total;
  let cpu0;
  let reportCpuSeconds = 0;
  if (by !== 'open') {
    const period = calendarOf({ timezone: 'UTC', anchor_day: 1 }).periodNamed(2026, 11);
    const header = { label: '2026-11', period, ...periodStatus(period, new Date('2026-12-03T12:00:00Z'), 6 * 3_600_000), by };
    const t1 = performance.now();
    cpu0 = process.cpuUsage();
    total = await writeReport(reportLines(ledger, { period, by }), header, 'csv', (c) => {
      bytes += c.length;
      lines++;
    });
    reportSeconds = (performance.now() - t1) / 1000;
    const cpu = process.cpuUsage(cpu0);
    reportCpuSeconds = (cpu.user + cpu.system) / 1e6;
  }
  await ledger.close();
  process.stdout.write(
    JSON.stringify({ by, openSeconds, reportSeconds, reportCpuSeconds, bytes, lines: lines - 2, requests: total?.requests, costUsd: total?.costUsd, maxRssBytes: process.resourceUsage().maxRSS * 1024, heapAfterOpen }),
  );
}

const run = promisify(execFile);
async function measure(storage, by) {
  const { stdout } = await run(process.execPath, [SELF, '--child', `--storage=${storage}`, `--by=${by}`], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout);
}

const mib = (b) => `${(b / 1048576).toFixed(0)} MiB`;

async function main() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      child: { type: 'boolean' },
      storage: { type: 'string' },
      by: { type: 'string' },
      calls: { type: 'string' },
      users: { type: 'string' },
      'pg-calls': { type: 'string' },
      'no-postgres': { type: 'boolean' },
    },
  });
  if (values.child) return child(values.storage, values.by);
  const log = (m) => process.stderr.write(`${m}\n`);
  const calls = Number(values.calls ?? (values.quick ? 5000 : 1_000_000));
  const users = Number(values.users ?? (values.quick ? 100 : 10_000));
  const pgCalls = Number(values['pg-calls'] ?? calls);
  const rows = [];
  const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-bench-report-'));
  let pg;
  try {
    const backends = [{ name: 'embedded journal', storage: join(dir, 'ledger'), calls }];
    if (!values['no-postgres'] && postgresAvailable()) {
      pg = await startPostgres();
      backends.push({ name: `PostgreSQL (${pg.version.replace(/^postgres \(PostgreSQL\) /, '')})`, storage: await pg.createDatabase(), calls: pgCalls });
    }
    for (const b of backends) {
      log(`${b.name}: committing ${b.calls} calls for ${users} users`);
      const fillSeconds = await fill(b.storage, b.calls, users, log);
      for (const by of ['open', 'user', 'day']) {
        const m = await measure(b.storage, by);
        log(`  ${by}: ${JSON.stringify(m)}`);
        rows.push({ backend: b.name, calls: b.calls, users, fillSeconds, ...m });
      }
    }
  } finally {
    await pg?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
  const out = [
    '| ledger | calls | users | report | lines | open s | report s (CPU s) | peak RSS | total |',
    '| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |',
    ...rows.map(
      (r) =>
        `| ${r.backend} | ${r.calls.toLocaleString('en-US')} | ${r.users.toLocaleString('en-US')} | ${r.by === 'open' ? 'none (open + close)' : `--by ${r.by}`} | ${r.by === 'open' ? '' : r.lines} | ${r.openSeconds.toFixed(2)} | ${r.by === 'open' ? '' : `${r.reportSeconds.toFixed(2)} (${r.reportCpuSeconds.toFixed(2)})`} | ${mib(r.maxRssBytes)} | ${r.by === 'open' ? '' : `${r.requests} requests, $${r.costUsd}`} |`,
    ),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
