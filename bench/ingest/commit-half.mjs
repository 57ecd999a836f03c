// The main thread's commit-and-metrics half of ingest alone (issue 15): what stays on the event loop once decode,
// extraction and pricing run elsewhere. Ledger records of 512 calls each (users drawn from `--users`, the bench's
// payload users and plans), 8 callers at a time through the exporter's GroupCommitter (liveTotals, as
// src/exporter/adapters.ts sets it) into a journal ledger preloaded with every user, then
// ExporterMetrics.recordCommit, as the pipeline does after each commit. Prints the process's CPU µs per record
// over the measured requests (after 40 warm-up requests). A build without liveTotals ignores the option, so the
// same script compares two checkouts: run each checkout's copy in turns.
//   node bench/ingest/commit-half.mjs [--users=100000] [--requests=500] [--profile=DIR]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { planOf, userId } from '../lib/payloads.mjs';
import { preload } from './run.mjs';

const { values } = parseArgs({ options: { users: { type: 'string', default: '100000' }, requests: { type: 'string', default: '500' }, profile: { type: 'string' } } });
const users = Number(values.users);
const requests = Number(values.requests);
const WARMUP = 40;
const SENDERS = 8;
if (!(requests > WARMUP)) throw new RangeError(`--requests must be more than ${WARMUP}`);
const { JournalLedger, GroupCommitter } = await import('../../dist/ledger/index.js');
const { ExporterMetrics } = await import('../../dist/exporter/metrics.js');

/** gpt-4o-mini list prices (0.15 / 0.60 USD per million tokens) as exact decimal strings. */
function usd(microMicros) {
  return `0.${microMicros.toString().padStart(8, '0')}`.replace(/\.?0+$/, '') || '0';
}

const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-commit-half-'));
try {
  await preload(dir, users, users);
  const ledger = await JournalLedger.open(dir, {}, { snapshotOnClose: false });
  const committer = new GroupCommitter(ledger, { commitOptions: { liveTotals: true } });
  const now = new Date();
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
  const metrics = new ExporterMetrics({ maxUsers: 1_000_000, limitsFor: () => ({}) });
  metrics.setPeriod({ start, end }, ['free', 'pro', 'team', 'enterprise']);
  metrics.loadRollups(await ledger.loadPeriodRollups(start));
  let seq = 1;
  let seed = 7;
  const rand = (n) => {
    seed = Number((BigInt(seed) * 48271n) % 2147483647n);
    return seed % n;
  };
  const record = () => {
    const k = seq++;
    const u = rand(users);
    const input = 100 + (k % 997);
    const output = 10 + (k % 89);
    return {
      traceId: `cc${k.toString(16).padStart(30, '0')}`,
      spanId: k.toString(16).padStart(16, '0'),
      endTimeMillis: start.getTime() + 1000,
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
      periodStart: start.toISOString(),
      priced: true,
      priceId: 'openai/gpt-4o-mini',
      costUsd: { input: usd(BigInt(input) * 15n), cache_read: '0', cache_write: '0', output: usd(BigInt(output) * 60n), reasoning: '0' },
      totalCostUsd: usd(BigInt(input) * 15n + BigInt(output) * 60n),
    };
  };
  const batches = Array.from({ length: requests }, () => Array.from({ length: 512 }, record));
  const one = async (records) => metrics.recordCommit(await committer.commitTrusted(records, () => {}));
  for (let i = 0; i < WARMUP; i += SENDERS) await Promise.all(batches.slice(i, i + SENDERS).map(one));
  let session;
  if (values.profile) {
    const { Session } = await import('node:inspector/promises');
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = WARMUP; i < requests; i += SENDERS) await Promise.all(batches.slice(i, i + SENDERS).map(one));
  const cpu = process.cpuUsage(c0);
  const wallMillis = performance.now() - t0;
  const measured = (requests - WARMUP) * 512;
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    mkdirSync(values.profile, { recursive: true });
    writeFileSync(join(values.profile, 'commit-half.cpuprofile'), JSON.stringify(profile));
  }
  console.log(`${measured.toLocaleString('en-US')} records, ${users.toLocaleString('en-US')} users: ${((cpu.user + cpu.system) / measured).toFixed(2)} µs CPU per record (${((wallMillis * 1000) / measured).toFixed(2)} µs wall)`);
  await ledger.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
