#!/usr/bin/env node
// Issue 18, point 3: re-pricing a month. Commits N calls of November 2026 for 10,000 users (a third of them
// gpt-4o priced with an input price 10x too high) into the embedded journal ledger and PostgreSQL, then measures
// (wall and CPU of this process): planning the re-pricing (scan + price every call), applying it (one journal
// entry / one transaction), planning it again (nothing changes), and reopening the ledger (snapshot with the
// adjusted calls). PostgreSQL's own CPU is not in the CPU column.
//   node bench/report/reprice.mjs [--quick] [--calls=N] [--pg-calls=N] [--no-postgres]
// Needs dist/ (npm run build). Prints a Markdown table on stdout, progress on stderr.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { postgresAvailable, startPostgres } from '../lib/postgres.mjs';

const dist = new URL('../../dist/', import.meta.url);
const { openLedger } = await import(new URL('ledger/index.js', dist).href);
const { PriceBook } = await import(new URL('pricing/index.js', dist).href);
const { planReprice } = await import(new URL('report/index.js', dist).href);

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, calls: { type: 'string' }, 'pg-calls': { type: 'string' }, 'no-postgres': { type: 'boolean' } } });
const calls = Number(values.calls ?? (values.quick ? 20_000 : 300_000));
const pgCalls = Number(values['pg-calls'] ?? (values.quick ? 10_000 : 60_000));
const NOV = Date.parse('2026-11-01T00:00:00Z');
const WRONG = PriceBook.load({ overrides: [{ provider: 'openai', model: 'gpt-4o', prices_usd_per_mtok: { input: '25', output: '10' } }] });
const FIXED = PriceBook.load({ overrides: [{ provider: 'openai', model: 'gpt-4o', prices_usd_per_mtok: { input: '2.5', output: '10' } }] });
const MODELS = [['openai', 'gpt-4o-2024-08-06'], ['openai', 'gpt-4o-mini'], ['anthropic', 'claude-sonnet-4-5']];
const clock = { now: () => new Date('2026-12-10T00:00:00Z') };
const options = { clock, dedupWindowMillis: 90 * 86_400_000 };
const range = { from: new Date(NOV), to: new Date('2026-12-01T00:00:00Z') };

async function fill(ledger, n) {
  for (let i = 0; i < n; i += 5000) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + 5000); k++) {
      const [provider, raw] = MODELS[k % 3];
      const end = NOV + Math.floor((k / n) * 29 * 86_400_000);
      const usage = { input: 100 + (k % 5000), cache_read: 0, cache_write: 0, output: 10 + (k % 700), reasoning: 0 };
      const p = WRONG.priceStrings({ provider, model: raw, usage, at: new Date(end) });
      batch.push({
        traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), endTimeMillis: end, provider: p.provider, rawModel: raw,
        operation: 'chat', usage, estimated: false, userId: `user-${k % 10_000}`, outcome: 'success', source: 'tokenmeter', plan: 'free',
        periodStart: '2026-11-01T00:00:00.000Z', model: p.model, priced: true, priceId: p.priceId, costUsd: p.costUsd, totalCostUsd: p.totalUsd,
      });
    }
    await ledger.commit(batch);
  }
}

async function timed(fn) {
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  const result = await fn();
  const c = process.cpuUsage(c0);
  return { result, wall: (performance.now() - w0) / 1000, cpu: (c.user + c.system) / 1e6 };
}

const rows = [];
async function measure(name, storage, n) {
  process.stderr.write(`${name}: committing ${n} calls\n`);
  let ledger = await openLedger(storage, options);
  await fill(ledger, n);
  const plan = await timed(() => planReprice(ledger, FIXED, range));
  const changed = plan.result.adjustments.length;
  process.stderr.write(`${name}: applying ${changed} adjustments\n`);
  const apply = await timed(() => ledger.applyReprice({ by: 'bench', arguments: [], adjustments: plan.result.adjustments }));
  const again = await timed(() => planReprice(ledger, FIXED, range));
  if (again.result.adjustments.length !== 0) throw new Error('the second re-pricing changed calls');
  await ledger.close();
  const reopen = await timed(async () => (ledger = await openLedger(storage, options)));
  await ledger.close();
  const f = (t) => `${t.wall.toFixed(2)} (${t.cpu.toFixed(2)})`;
  rows.push(`| ${name} | ${n.toLocaleString('en')} | ${changed.toLocaleString('en')} | ${apply.result.deltaUsd} | ${f(plan)} | ${(plan.cpu / n * 1e6).toFixed(0)} | ${f(apply)} | ${f(again)} | ${f(reopen)} |`);
}

const dir = mkdtempSync(join(tmpdir(), 'tm-reprice-bench-'));
let pg;
try {
  await measure('embedded journal', join(dir, 'ledger'), calls);
  if (!values['no-postgres'] && postgresAvailable()) {
    pg = await startPostgres();
    await measure(`PostgreSQL (${pg.version.replace(/^postgres \(PostgreSQL\) /, '')})`, await pg.createDatabase(), pgCalls);
  }
} finally {
  await pg?.cleanup?.();
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(
  [
    '| ledger | calls | changed | difference USD | plan s (CPU s) | plan CPU µs/call | apply s (CPU s) | plan again s (CPU s) | reopen s (CPU s) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n') + '\n',
);
