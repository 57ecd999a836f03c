/**
 * `tokenmeter ledger verify | dump | export | backup`: the embedded ledger's directory checked, read, moved to
 * PostgreSQL and copied while the exporter runs. See docs/ledger-tools.md.
 */
import { once } from 'node:events';
import { normaliseFilter, scanJournalSegments, type LedgerCall, type NormalisedFilter } from '../ledger/call-scan.js';
import { LedgerError, LedgerInUseError } from '../ledger/errors.js';
import { backupJournalDirectory, journalAdjustments, listJournalDirectory, verifyJournalDirectory } from '../ledger/journal-inspect.js';
import { isPostgresStorage, openLedger } from '../ledger/ledger.js';
import { checkPostgresUrl, exportJournalToPostgres, redact } from '../ledger/sql-export.js';
import { CliError } from './cli-error.js';
import { parseFlags } from './parse-flags.js';

const HELP = `Usage: tokenmeter ledger <verify|dump|export|backup> ...

  tokenmeter ledger verify DIR
      Checks an embedded ledger directory without changing it: every journal entry's checksum, every snapshot's,
      the call counts the snapshot lists, and the snapshot's totals against the totals recomputed from the calls.
      Exit 0 when it verifies, 1 when something is wrong (each problem names the file and what to do), 2 for bad
      arguments. Run it on a stopped exporter's directory or on a copy made by \`ledger backup\`.

  tokenmeter ledger dump DIR|postgres://... [--period P] [--user U] [--from T] [--to T] [--format jsonl|csv]
      Prints one line per committed call (JSON lines by default, or CSV with a header). --period: the billing
      period's start instant (e.g. 2030-07-01T00:00:00Z); --from/--to: the call's end time, from inclusive, to
      exclusive. Reads the directory without locking it: works while the exporter runs (the call being written
      at that moment is left out). In CSV, a text field starting with = + - @ or a tab gets a leading ' so a
      spreadsheet does not run it as a formula.

  tokenmeter ledger export DIR postgres://... [--resume]
      Moves an embedded ledger to PostgreSQL: every call the journal holds, and every period's totals as the
      journal holds them (totals keep counting calls deleted by retention). Then compares the two ledgers'
      answers and exits 1 if they differ. Stop the exporter first (or export a copy made by \`ledger backup\`),
      export into a new, empty database, then start the exporter with storage set to that URL. --resume finishes
      an interrupted export into the same database.

  tokenmeter ledger backup DIR DEST
      Copies the ledger to the new directory DEST consistently while the exporter keeps running: the newest
      snapshot and the journal up to its last complete entry at one moment, each file fsynced. Serve or verify
      the copy like the original.
`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  try {
    switch (sub) {
      case 'verify':
        return verify(rest);
      case 'dump':
        return await dump(rest);
      case 'export':
        return await exportCommand(rest);
      case 'backup':
        return backup(rest);
      default:
        throw new CliError(`unknown ledger command '${sub}' (verify, dump, export or backup; see tokenmeter ledger --help)`);
    }
  } catch (err) {
    if (err instanceof LedgerInUseError) {
      throw new CliError(`${err.message}. Stop the exporter first, or work on a copy made with \`tokenmeter ledger backup ${err.directory} COPY\` while it runs`, 2);
    }
    if (err instanceof LedgerError) throw new CliError(err.message, 1);
    throw err;
  }
}

function positionals(argv: string[], names: string[], flags: Parameters<typeof parseFlags>[1] = {}) {
  const parsed = parseFlags(argv, { help: { type: 'boolean', short: 'h' }, ...flags });
  if (parsed.values.help) {
    process.stdout.write(HELP);
    return undefined;
  }
  const p = parsed.positionals;
  if (p.length < names.length) throw new CliError(`missing ${names.slice(p.length).join(' and ')} (see tokenmeter ledger --help)`);
  if (p.length > names.length) throw new CliError(`unexpected argument '${p[names.length]}'`);
  for (const [k, v] of p.entries()) if (v.trim() === '') throw new CliError(`${names[k]} must not be empty`);
  return { args: p, values: parsed.values };
}

/** A bad directory is bad input (exit 2), not a verification failure. */
function checkDirectory(dir: string): void {
  try {
    listJournalDirectory(dir);
  } catch (err) {
    if (err instanceof LedgerError) throw new CliError(err.message, 2);
    throw err;
  }
}

function verify(argv: string[]): number {
  const p = positionals(argv, ['DIR']);
  if (!p) return 0;
  checkDirectory(p.args[0]);
  const r = verifyJournalDirectory(p.args[0]);
  const out = process.stdout;
  out.write(`ledger ${r.dir}\n`);
  out.write(`  segments: ${r.segments.length} on disk, ${r.calls} calls${r.prunedSegments.length > 0 ? `, ${r.prunedSegments.length} pruned` : ''}\n`);
  if (r.snapshot) {
    out.write(`  snapshot: covers segments below ${r.snapshot.seq}, ${r.snapshot.periods} periods, ${r.snapshot.rows} totals\n`);
    out.write(`  totals: ${r.rowsMatching} equal to the calls${r.rowsWithPrunedCalls > 0 ? `, ${r.rowsWithPrunedCalls} count pruned calls too` : ''}\n`);
  }
  for (const n of r.notes) out.write(`  note: ${n}\n`);
  for (const p of r.problems) process.stderr.write(`problem: ${p}\n`);
  out.write(r.problems.length === 0 ? 'OK\n' : `FAILED: ${r.problems.length} problem(s)\n`);
  return r.problems.length === 0 ? 0 : 1;
}

const CSV_HEADER = [
  'trace_id', 'span_id', 'received_at', 'end_time', 'period_start', 'user_id', 'plan', 'feature', 'provider', 'raw_model', 'model',
  'operation', 'outcome', 'source', 'estimated', 'service_tier', 'priced', 'price_id', 'input_tokens', 'cache_read_tokens',
  'cache_write_tokens', 'cache_write_1h_tokens', 'output_tokens', 'reasoning_tokens', 'input_cost_usd', 'cache_read_cost_usd',
  'cache_write_cost_usd', 'output_cost_usd', 'reasoning_cost_usd', 'gross_cost_usd', 'discount_usd', 'cost_usd',
];

/** RFC 4180 quoting, and formula-looking text defused (see the help). */
function csvText(v: string | undefined): string {
  if (v === undefined) return '';
  const s = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvLine(c: LedgerCall): string {
  const u = c.usage;
  return [
    c.traceId, c.spanId, new Date(c.receivedAtMillis).toISOString(), new Date(c.endTimeMillis).toISOString(), c.periodStart,
    csvText(c.userId), csvText(c.plan), csvText(c.feature), csvText(c.provider), csvText(c.rawModel), csvText(c.model),
    csvText(c.operation), c.outcome, csvText(c.source), String(c.estimated), csvText(c.serviceTier), String(c.priced), csvText(c.priceId),
    u.input, u.cache_read, u.cache_write, u.cache_write_1h ?? 0, u.output, u.reasoning,
    c.costUsd.input, c.costUsd.cache_read, c.costUsd.cache_write, c.costUsd.output, c.costUsd.reasoning,
    c.grossCostUsd ?? c.totalCostUsd, c.discountUsd ?? '0', c.totalCostUsd,
  ].join(',') + '\n';
}

async function dump(argv: string[]): Promise<number> {
  const p = positionals(argv, ['DIR'], {
    period: { type: 'string' },
    user: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    format: { type: 'string' },
  });
  if (!p) return 0;
  const v = p.values as { period?: string; user?: string; from?: string; to?: string; format?: string };
  const format = v.format ?? 'jsonl';
  if (format !== 'jsonl' && format !== 'csv') throw new CliError(`--format must be jsonl or csv, got '${format}'`);
  let filter: NormalisedFilter;
  try {
    filter = normaliseFilter({ periodStart: v.period, userId: v.user, from: v.from, to: v.to });
  } catch (err) {
    throw new CliError((err as Error).message.replace(/^scanCalls: (\w+)/, (_m, f: string) => `--${f === 'periodStart' ? 'period' : f}`));
  }
  const source = p.args[0];
  let calls: AsyncIterable<LedgerCall>;
  let close = async () => {};
  if (isPostgresStorage(source)) {
    try {
      checkPostgresUrl(source);
    } catch (err) {
      throw new CliError((err as Error).message);
    }
    const ledger = await openLedger(source, { postgres: { maxConnections: 1 } });
    close = () => ledger.close();
    calls = ledger.scanCalls({ periodStart: v.period, userId: v.user, from: v.from, to: v.to });
  } else {
    checkDirectory(source);
    const listing = listJournalDirectory(source);
    const newest = listing.segments[listing.segments.length - 1];
    // Re-priced calls are dumped with the costs they carry now (and `repricedBy`), as the ledger's own scan gives them.
    calls = scanJournalSegments(listing.dir, listing.segments.map((seq) => ({ seq, mayHaveTornTail: seq === newest })), filter, journalAdjustments(listing));
  }
  const out = process.stdout;
  let closedPipe = false;
  const onError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') closedPipe = true;
  };
  out.on('error', onError);
  try {
    let chunk = format === 'csv' ? CSV_HEADER.join(',') + '\n' : '';
    for await (const c of calls) {
      chunk += format === 'csv' ? csvLine(c) : JSON.stringify(c) + '\n';
      if (chunk.length >= 64 * 1024) {
        if (closedPipe) break;
        if (!out.write(chunk)) await Promise.race([once(out, 'drain'), once(out, 'error')]);
        chunk = '';
      }
    }
    if (chunk.length > 0 && !closedPipe) out.write(chunk);
  } finally {
    out.off('error', onError);
    await close();
  }
  return 0;
}

async function exportCommand(argv: string[]): Promise<number> {
  const p = positionals(argv, ['DIR', 'postgres://URL'], { resume: { type: 'boolean' } });
  if (!p) return 0;
  const [dir, url] = p.args;
  checkDirectory(dir);
  try {
    checkPostgresUrl(url);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  let last = 0;
  const r = await exportJournalToPostgres(dir, url, {
    resume: (p.values as { resume?: boolean }).resume === true,
    onProgress: (n) => {
      if (n - last >= 100_000) {
        last = n;
        process.stderr.write(`  ${n} calls copied\n`);
      }
    },
  });
  process.stdout.write(
    `exported ${r.calls} calls${r.callsAlreadyThere > 0 ? ` (${r.callsAlreadyThere} were already there)` : ''} and the totals of ${r.periods} periods (${r.rollupRows} rows) to ${redact(url)}\n`,
  );
  if (r.differences.length > 0) {
    for (const d of r.differences) process.stderr.write(`difference: ${d}\n`);
    process.stderr.write('FAILED: the PostgreSQL ledger does not answer like the journal; keep serving the directory and report this\n');
    return 1;
  }
  process.stdout.write(`the PostgreSQL ledger gives the same totals; start the exporter with storage set to ${redact(url)}\n`);
  return 0;
}

function backup(argv: string[]): number {
  const p = positionals(argv, ['DIR', 'DEST']);
  if (!p) return 0;
  checkDirectory(p.args[0]);
  const r = backupJournalDirectory(p.args[0], p.args[1]);
  process.stdout.write(
    `copied ${r.segments} segments${r.snapshot !== undefined ? ' and the newest snapshot' : ''} (${r.bytes} bytes) to ${r.dest}` +
      `${r.restarts > 0 ? ` (started over ${r.restarts} times: the exporter replaced a snapshot or pruned meanwhile)` : ''}\n`,
  );
  return 0;
}
