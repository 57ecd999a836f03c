/**
 * `tokenmeter report --period 2026-11 [--user U] [--by ...] [--format ...]`: a billing report of one period read
 * from the ledger (the embedded directory or PostgreSQL), streamed to stdout.
 */
import { once } from 'node:events';
import { CliError } from './cli-error.js';
import { parseCommandFlags } from './parse-flags.js';
import { loadCommandConfig, openCommandLedger } from './command-ledger.js';
import { userIdProblem } from '../usage/record-text.js';

const HELP = `Usage: tokenmeter report [--period YYYY-MM] [--user U] [--by B] [--format F] [options]

A billing report of one period from the ledger: per line the tokens by type, requests and the exact cost in USD
(and in display.currency when configured); the lines add up exactly to the TOTAL line. Streams: large reports are
never built in memory. A closed period (its end + ingest.late_arrival_window has passed) gives the same output
every time.

Options:
  --period YYYY-MM    the period starting in that month (billing calendar: period.anchor_day, period.timezone);
                      default: the current period
  --user U            only this user's usage
  --by B              user (default; one line per user and plan), plan, feature, model, provider, day
  --format F          table (default), csv, json
  --config <file>     configuration file (default: $TOKENMETER_CONFIG, else ./tokenmeter.yaml if present)
  --storage <dir|url> the ledger (default: storage in the configuration)   ($TOKENMETER_STORAGE)
  -h, --help          this help

The embedded ledger (a directory) is held by a running exporter: stop it first, or read the same report from it
with GET /api/v1/report?period=YYYY-MM&by=B&format=F on its operations port. PostgreSQL can always be read.
`;

const OPTIONS = {
  period: { type: 'string' },
  user: { type: 'string' },
  by: { type: 'string' },
  format: { type: 'string' },
  config: { type: 'string' },
  storage: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const flags = parseCommandFlags(argv, OPTIONS, HELP);
  if (flags === undefined) return 0;
  const { str } = flags;
  const report = await import('../report/index.js');
  const by = str('by') ?? 'user';
  if (!(report.REPORT_BREAKDOWNS as readonly string[]).includes(by)) {
    throw new CliError(`--by must be one of ${report.REPORT_BREAKDOWNS.join(', ')}, got ${JSON.stringify(by.slice(0, 40))}`);
  }
  const format = str('format') ?? 'table';
  if (!(report.REPORT_FORMATS as readonly string[]).includes(format)) {
    throw new CliError(`--format must be one of ${report.REPORT_FORMATS.join(', ')}, got ${JSON.stringify(format.slice(0, 40))}`);
  }
  const user = str('user');
  if (user !== undefined) {
    const problem = userIdProblem(user);
    if (problem !== undefined) throw new CliError(`--user: the user id ${problem}`);
  }
  const config = loadCommandConfig({ ...(str('config') !== undefined ? { configPath: str('config')! } : {}), flags: { storage: str('storage') } });
  const calendar = report.calendarOf(config.period);
  const now = new Date();
  let period;
  try {
    period = str('period') === undefined ? calendar.periodFor(now) : report.resolvePeriod(str('period')!, calendar, now, '--period');
  } catch (err) {
    if (err instanceof report.PeriodLabelError) throw new CliError(err.message);
    throw err;
  }
  let display;
  try {
    display = report.displayRate(config.display);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }

  const ledger = await openCommandLedger(config, {
    snapshotOnClose: false,
    inUseHint: () =>
      `read the report from it with GET /api/v1/report?period=${report.periodLabel(period, calendar.timeZone)}&by=${by}&format=${format} ` +
      'on its operations port, or stop it first',
  });
  try {
    const status = report.periodStatus(period, now, config.ingest.late_arrival_window);
    const audits = await ledger.repriceAudits(period.start);
    const header = {
      repricings: audits,
      label: report.periodLabel(period, calendar.timeZone),
      period,
      ...status,
      by: by as (typeof report.REPORT_BREAKDOWNS)[number],
      ...(user !== undefined ? { user } : {}),
      ...(display ? { display } : {}),
    };
    const out = process.stdout;
    const sink = async (chunk: string) => {
      if (!out.write(chunk)) await once(out, 'drain');
    };
    const lines = report.reportLines(ledger, { period, by: header.by, audits, ...(user !== undefined ? { user } : {}), timeZone: calendar.timeZone });
    try {
      await report.writeReport(lines, header, format as (typeof report.REPORT_FORMATS)[number], sink);
    } catch (err) {
      if (err instanceof report.ReportError) throw new CliError(err.message);
      throw err;
    }
  } finally {
    await ledger.close();
  }
  return 0;
}
