/**
 * `tokenmeter export-meter --period 2026-11 [--per period|call] (--to-file F | --url U)`: a period's usage as
 * Stripe-style meter events with stable idempotency keys (src/report/meter-export.ts), to a JSON-lines file or
 * posted to a URL with retries.
 */
import { once } from 'node:events';
import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { CliError } from './cli-error.js';
import { parseCommandFlags } from './parse-flags.js';
import { loadCommandConfig, openCommandLedger } from './command-ledger.js';

const HELP = `Usage: tokenmeter export-meter --period YYYY-MM [--per period|call] (--to-file F | --url U) [options]

A period's usage as Stripe-style meter events: {"event_name":"tokenmeter_usage","identifier":KEY,"timestamp":S,
"payload":{"stripe_customer_id":USER,"value":COST_USD,...tokens, requests, unpriced_requests}}. The identifier is an
idempotency key that is the same on every run (per period: the period, user and plan; per call: its trace and span
id), so a receiver that deduplicates by it counts each line once however often the export is repeated.

Options:
  --period YYYY-MM    the period starting in that month (required); per period only once it is closed
  --per P             period (default: one event per user and plan) or call (one per call)
  --to-file F         write the events as JSON lines to F (written whole, then renamed into place; - for stdout)
  --url U             POST each event to U (JSON, Idempotency-Key header; bearer token from $TOKENMETER_METER_TOKEN),
                      retrying network errors, 408, 429 and 5xx with backoff
  --attempts N        attempts per event with --url (default 5, at most 20)
  --config <file>     configuration file (default: $TOKENMETER_CONFIG, else ./tokenmeter.yaml if present)
  --storage <dir|url> the ledger (default: storage in the configuration)   ($TOKENMETER_STORAGE)
  -h, --help          this help

Requests that had no price at the time are in the events' token counts, not in "value" (said on stderr).
`;

const OPTIONS = {
  period: { type: 'string' },
  per: { type: 'string' },
  'to-file': { type: 'string' },
  url: { type: 'string' },
  attempts: { type: 'string' },
  config: { type: 'string' },
  storage: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const flags = parseCommandFlags(argv, OPTIONS, HELP, ['attempts']);
  if (flags === undefined) return 0;
  const { str } = flags;
  const meter = await import('../report/meter-export.js');
  const report = await import('../report/index.js');
  if (str('period') === undefined) throw new CliError('--period is required (YYYY-MM)');
  const per = str('per') ?? 'period';
  if (!(meter.METER_GRANULARITIES as readonly string[]).includes(per)) throw new CliError(`--per must be period or call, got ${JSON.stringify(per.slice(0, 40))}`);
  const file = str('to-file');
  const url = str('url');
  if ((file === undefined) === (url === undefined)) throw new CliError('give exactly one of --to-file F and --url U');
  if (file !== undefined && (file.length === 0 || file.length > 4096)) throw new CliError('--to-file needs a file name (or - for stdout)');
  if (url !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = url.length <= 2048 ? new URL(url) : undefined;
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) throw new CliError('--url must be an http:// or https:// URL of at most 2048 characters');
    if (parsed.username || parsed.password) throw new CliError('--url must not carry credentials: put the token in $TOKENMETER_METER_TOKEN');
  }
  let attempts = 5;
  if (str('attempts') !== undefined) {
    if (url === undefined) throw new CliError('--attempts goes with --url');
    if (!/^\d{1,2}$/.test(str('attempts')!) || Number(str('attempts')) < 1 || Number(str('attempts')) > 20) throw new CliError('--attempts must be an integer from 1 to 20');
    attempts = Number(str('attempts'));
  }
  const token = process.env.TOKENMETER_METER_TOKEN;
  if (token !== undefined && (token.length === 0 || token.length > 4096 || /[\r\n]/.test(token))) throw new CliError('$TOKENMETER_METER_TOKEN must be one line of at most 4096 characters');

  const config = loadCommandConfig({ ...(str('config') !== undefined ? { configPath: str('config')! } : {}), flags: { storage: str('storage') } });
  const calendar = report.calendarOf(config.period);
  const now = new Date();
  let period;
  try {
    period = report.resolvePeriod(str('period')!, calendar, now, '--period');
  } catch (err) {
    if (err instanceof report.PeriodLabelError) throw new CliError(err.message);
    throw err;
  }
  const label = report.periodLabel(period, calendar.timeZone);
  if (per === 'period' && report.periodStatus(period, now, config.ingest.late_arrival_window).status === 'open') {
    throw new CliError(`the period ${label} is still open (calls may still arrive): export it per period once it is closed, or per call (--per call)`);
  }
  const ledger = await openCommandLedger(config, {
    snapshotOnClose: false,
    inUseHint: () => 'stop it first (or keep the ledger in PostgreSQL, which can always be read)',
  });
  const stats = { events: 0, unpricedRequests: 0 };
  try {
    const events = meter.meterEvents(ledger, period, label, per as 'period' | 'call', stats);
    if (url !== undefined) {
      try {
        await meter.postEvents(url, events, { attempts, ...(token !== undefined ? { token } : {}) });
      } catch (err) {
        if (err instanceof meter.MeterPostError) throw new CliError(`${err.message} (${stats.events} event(s) read so far)`, 1);
        throw err;
      }
    } else if (file === '-') {
      for await (const e of events) if (!process.stdout.write(`${JSON.stringify(e)}\n`)) await once(process.stdout, 'drain');
    } else {
      // Written whole, then renamed: a reader never sees half an export.
      const tmp = `${file}.tmp-${process.pid}`;
      const out = createWriteStream(tmp, { flags: 'wx' });
      try {
        for await (const e of events) if (!out.write(`${JSON.stringify(e)}\n`)) await once(out, 'drain');
        out.end();
        await once(out, 'finish');
        renameSync(tmp, file!);
      } catch (err) {
        out.destroy();
        rmSync(tmp, { force: true });
        throw new CliError(`cannot write ${file}: ${(err as Error).message}`, 1);
      }
    }
  } finally {
    await ledger.close();
  }
  process.stderr.write(`tokenmeter export-meter: ${stats.events} event(s) for ${label} ${url !== undefined ? 'delivered' : 'written'}\n`);
  if (stats.unpricedRequests > 0) {
    process.stderr.write(`tokenmeter export-meter: ${stats.unpricedRequests} request(s) had no price at the time: their tokens are in the events, their cost is not in "value" (re-price them: tokenmeter reprice)\n`);
  }
  return 0;
}
