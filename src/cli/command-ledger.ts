// What the commands that read the ledger directly (report, reprice, export-meter) share: loading the configuration
// and opening the ledger, with one wording for each failure. Each command says in `inUseHint` how to do its work
// through a running exporter instead.
import { existsSync } from 'node:fs';
import { CliError } from './cli-error.js';
import { ConfigError, loadConfig, type LoadConfigOptions, type TokenmeterConfig } from '../config/index.js';
import type { Ledger, LedgerInUseError } from '../ledger/index.js';

/** loadConfig, with an invalid configuration as a CliError (exit 2) listing every problem. */
export function loadCommandConfig(options: LoadConfigOptions): TokenmeterConfig {
  try {
    return loadConfig(options).config;
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`invalid configuration\n${err.problems.map((p) => `  ${p}`).join('\n')}`, 2);
    throw err;
  }
}

export interface CommandLedgerOptions {
  /** False for commands that only read: the exporter writes its own snapshot when it next runs. */
  snapshotOnClose: boolean;
  /** The rest of the sentence after "held by a running exporter (process N): ". */
  inUseHint: (err: LedgerInUseError) => string;
}

/** Opens the configured ledger for a command, or throws a CliError saying what to do. */
export async function openCommandLedger(config: TokenmeterConfig, options: CommandLedgerOptions): Promise<Ledger> {
  const ledgerModule = await import('../ledger/index.js');
  const storage = config.storage;
  if (!ledgerModule.isPostgresStorage(storage) && !existsSync(storage.replace(/^pglite:/i, ''))) {
    throw new CliError(`no ledger at ${storage}: set --storage or TOKENMETER_STORAGE (storage in the configuration) to the exporter's ledger`, 2);
  }
  try {
    return await ledgerModule.openLedger(storage, {
      dedupWindowMillis: config.ledger.dedup_window,
      ...(options.snapshotOnClose ? {} : { journal: { snapshotOnClose: false } }),
    });
  } catch (err) {
    if (err instanceof ledgerModule.LedgerInUseError) {
      throw new CliError(`the ledger ${err.directory} is held by a running exporter (process ${err.ownerPid}): ${options.inUseHint(err)}`, 2);
    }
    if (err instanceof ledgerModule.LedgerError) throw new CliError(`cannot open the ledger: ${err.message}`, 1);
    throw err;
  }
}
