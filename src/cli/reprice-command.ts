/**
 * `tokenmeter reprice --from DATE [--to DATE] [--model M] [--dry-run] [--yes]`: recomputes the calls of a range
 * from their stored token counts with the current catalog + overrides, shows the difference per user and in total,
 * and on confirmation applies it to the ledger in one transaction with an audit record (issue 18).
 */
import { once } from 'node:events';
import { userInfo } from 'node:os';
import { createInterface } from 'node:readline/promises';
import { CliError } from './cli-error.js';
import { parseCommandFlags } from './parse-flags.js';
import { loadCommandConfig, openCommandLedger } from './command-ledger.js';

const HELP = `Usage: tokenmeter reprice --from DATE [--to DATE] [--model M] [--dry-run] [--yes] [options]

Re-prices the calls whose span ended in [--from, --to] from their stored token counts with the prices configured
now (the catalog or pricing.catalog_file, plus pricing.overrides), at the instant each call was charged to: a
corrected price, or a price for calls that had none (unpriced tokens). Shows the difference per user and in total
(exact USD), then asks before applying it; applied, every changed call, the totals, the usage API and reports carry
the new cost, and an audit record keeps who, when, the old and new price ids and the amounts. Running it again
changes nothing.

Options:
  --from DATE         first day (YYYY-MM-DD, UTC) or instant (2026-11-03T12:00:00Z) of the calls to re-price
  --to DATE           last day (inclusive) or instant (exclusive); default: up to now
  --model M           only calls of this model (catalog name or the name as reported)
  --dry-run           show the difference, write nothing
  --yes               apply without asking (scripts); without it a terminal is asked, anything else refused
  --by NAME           who applies it, for the audit record (default: the OS user)
  --format F          table (default) or json
  --config <file>     configuration file (default: $TOKENMETER_CONFIG, else ./tokenmeter.yaml if present)
  --storage <dir|url> the ledger (default: storage in the configuration)   ($TOKENMETER_STORAGE)
  -h, --help          this help

An embedded ledger (a directory) held by a running exporter cannot be opened here: re-price through that exporter
with POST /api/v1/reprice on its operations port (a dry run unless "apply": true; applying needs auth.api_token).
PostgreSQL can always be re-priced from here.
`;

const OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  model: { type: 'string' },
  'dry-run': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  by: { type: 'string' },
  format: { type: 'string' },
  config: { type: 'string' },
  storage: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** An id as printed on a terminal: control characters replaced, long ids cut. */
function printable(s: string): string {
  // eslint-disable-next-line no-control-regex -- ids come from spans: no escape sequence reaches a terminal
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 63)}…` : clean;
}

function osUser(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(question);
    return /^(y|yes)$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export async function run(argv: string[]): Promise<number> {
  const flags = parseCommandFlags(argv, OPTIONS, HELP);
  if (flags === undefined) return 0;
  const { values, str } = flags;
  const reprice = await import('../report/reprice.js');
  let q;
  try {
    q = reprice.repriceQuery({ from: str('from'), to: str('to'), model: str('model') });
  } catch (err) {
    if (err instanceof reprice.RepriceInputError) throw new CliError(err.message);
    throw err;
  }
  const format = str('format') ?? 'table';
  if (format !== 'table' && format !== 'json') throw new CliError(`--format must be table or json, got ${JSON.stringify(format.slice(0, 40))}`);
  const dryRun = values['dry-run'] === true;
  if (dryRun && values.yes === true) throw new CliError('--dry-run and --yes contradict each other: a dry run never writes');
  const by = str('by') ?? osUser();
  // eslint-disable-next-line no-control-regex -- who applied it goes into the audit record and reports
  if (by.length === 0 || by.length > 256 || /[\u0000-\u001f\u007f]/.test(by)) throw new CliError('--by must be 1 to 256 printable characters');

  const config = loadCommandConfig({ ...(str('config') !== undefined ? { configPath: str('config')! } : {}), flags: { storage: str('storage') } });
  const { loadPricing } = await import('../exporter/price-reload.js');
  let pricing;
  try {
    pricing = loadPricing(config.pricing).pricing;
  } catch (err) {
    throw new CliError(`cannot load the prices: ${(err as Error).message}`, 2);
  }
  const ledger = await openCommandLedger(config, {
    snapshotOnClose: true,
    inUseHint: () => {
      const body = JSON.stringify({ from: str('from'), ...(str('to') !== undefined ? { to: str('to') } : {}), ...(q.model !== undefined ? { model: q.model } : {}) });
      return `re-price through it with POST /api/v1/reprice on its operations port, body ${body} (a dry run; add "apply": true to apply, which needs auth.api_token), or stop it first`;
    },
  });
  const out = async (chunk: string) => {
    if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
  };
  try {
    let plan;
    try {
      plan = await reprice.planReprice(ledger, pricing, q, { lateArrivalMillis: config.ingest.late_arrival_window, clockSkewMillis: config.ingest.clock_skew });
    } catch (err) {
      if (err instanceof reprice.RepriceTooLargeError) throw new CliError(err.message);
      throw err;
    }
    if (format === 'table') {
      await out(`re-pricing calls that ended from ${q.from.toISOString()} to ${q.to?.toISOString() ?? 'now'}${q.model !== undefined ? `, model ${q.model}` : ''}\n`);
      await out(`${plan.scanned} call(s) read; ${plan.adjustments.length} change (${plan.newlyPriced} priced for the first time); ${plan.stillUnpriced} still without a price\n`);
      if (plan.noPriceNow > 0) await out(`${plan.noPriceNow} priced call(s) have no price now (an override removed?): left as they are\n`);
      if (plan.premiumKept > 0) await out(`${plan.premiumKept} call(s) cost exactly the current price with a premium (fast mode or regional processing): billed with it, left as they are\n`);
      if (plan.premiumPossible > 0) {
        await out(
          `warning: ${plan.premiumPossible} changing call(s) are of models with a fast-mode or regional premium, which the ledger does not record: ` +
            'one billed with a premium gets the plain price here. Narrow --model/--from/--to to the calls whose price was wrong, or check them with `tokenmeter ledger dump`\n',
        );
      }
      if (plan.adjustments.length > 0) {
        await out(`\n${'period'.padEnd(24)}  ${'user'.padEnd(24)}  ${'plan'.padEnd(12)}  ${'calls'.padStart(8)}  difference_usd\n`);
        for (const u of plan.users) await out(`${u.periodStart.padEnd(24)}  ${printable(u.userId).padEnd(24)}  ${printable(u.plan).padEnd(12)}  ${String(u.calls).padStart(8)}  ${u.deltaUsd}\n`);
        await out(`${'TOTAL'.padEnd(24)}  ${''.padEnd(24)}  ${''.padEnd(12)}  ${String(plan.adjustments.length).padStart(8)}  ${plan.deltaUsd}\n`);
      }
    }
    let audit;
    if (plan.adjustments.length > 0 && !dryRun) {
      let go = values.yes === true;
      if (!go) {
        if (!process.stdin.isTTY) throw new CliError('not applied: confirm with --yes (stdin is not a terminal), or look first with --dry-run');
        go = await confirm(`apply this re-pricing of ${plan.adjustments.length} call(s), ${plan.deltaUsd} USD in total? [y/N] `);
      }
      if (!go) {
        process.stderr.write('tokenmeter reprice: not applied\n');
        return 1;
      }
      try {
        audit = await ledger.applyReprice({ by, arguments: argv.slice(0, 64), adjustments: plan.adjustments });
      } catch (err) {
        if (err instanceof (await import('../ledger/index.js')).LedgerError) throw new CliError(`not applied: ${(err as Error).message}`);
        throw err;
      }
    }
    if (format === 'json') await out(`${JSON.stringify(reprice.repricePlanJson(q, plan, audit))}\n`);
    else if (audit) await out(`applied: audit id ${audit.id}, by ${audit.by}, at ${audit.at}\n`);
    else if (plan.adjustments.length === 0) await out('nothing to re-price: every call in the range already has its current price\n');
    else await out('dry run: nothing written\n');
  } finally {
    await ledger.close();
  }
  return 0;
}
