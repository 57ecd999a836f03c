#!/usr/bin/env node
/**
 * The `tokenmeter` command. Each sub-command lives in its own module, loaded only when used so that
 * `tokenmeter price` does not pay for the exporter's start-up.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CliError, type CommandModule } from './cli-error.js';

interface CommandEntry {
  summary: string;
  load: () => Promise<CommandModule>;
}

const COMMANDS: Record<string, CommandEntry> = {
  serve: { summary: 'run the exporter: OTLP/HTTP receiver, /metrics, usage API (--config tokenmeter.yaml)', load: () => import('./serve-command.js') },
  config: { summary: 'validate a configuration and print the effective settings (config check)', load: () => import('./config-command.js') },
  report: { summary: 'a billing report of one period from the ledger (--period 2026-11 --by user|plan|feature|model|provider|day)', load: () => import('./report-command.js') },
  reprice: { summary: 're-price past calls with the current prices, with an audit record (--from 2026-11-01 [--to] [--model] [--dry-run])', load: () => import('./reprice-command.js') },
  'export-meter': { summary: "a period's usage as Stripe-style meter events with idempotency keys (--period 2026-11 --to-file F | --url U)", load: () => import('./export-meter-command.js') },
  price: { summary: 'price one call from the catalog (per-type breakdown, exact USD)', load: () => import('./price-command.js') },
  models: { summary: 'list the price catalog', load: () => import('./models-command.js') },
  ledger: { summary: 'check, dump, back up or export an embedded ledger directory (verify, dump, backup, export)', load: () => import('./ledger-command.js') },
  demo: { summary: 'run tokenmeter end to end: exporter, mock provider and a simulated app (live view)', load: () => import('./demo-command.js') },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length), 8);
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: tokenmeter <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `tokenmeter <command> --help` for the options of a command.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(version() + '\n');
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`tokenmeter: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  try {
    const mod = await entry.load();
    return await mod.run(rest);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`tokenmeter ${name}: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

const invokedDirectly = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === realpathSync(process.argv[1]);
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`tokenmeter: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
