import { parseArgs } from 'node:util';
import { CliError } from './cli-error.js';
import { ConfigError, loadConfig, renderConfigReference, renderEffectiveConfig } from '../config/index.js';

const HELP = `Usage: tokenmeter config check [--config tokenmeter.yaml]
       tokenmeter config reference

  check       Validates the configuration (file, then TOKENMETER_* environment variables) and prints the
              effective configuration with secrets redacted. Exit code 0 when valid, 1 when not.
  reference   Prints the Markdown reference of every setting.

Options:
  --config <file>   Configuration file (default: $TOKENMETER_CONFIG, else ./tokenmeter.yaml if present)
  -h, --help        Show this help
`;

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new CliError(`${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
  }
  const [sub, ...extra] = parsed.positionals;
  if (parsed.values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (extra.length > 0) throw new CliError(`unexpected argument '${extra[0]}'\n\n${HELP}`);
  if (sub === 'reference') {
    process.stdout.write(renderConfigReference());
    return 0;
  }
  if (sub !== 'check') throw new CliError(`${sub === undefined ? 'missing sub-command' : `unknown sub-command '${sub}'`}\n\n${HELP}`);
  try {
    const loaded = loadConfig(parsed.values.config !== undefined ? { configPath: parsed.values.config } : {});
    process.stdout.write(renderEffectiveConfig(loaded));
    process.stderr.write(`tokenmeter config check: ${loaded.file ?? 'defaults'}: OK\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tokenmeter config check: invalid configuration\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`);
      return 1;
    }
    throw err;
  }
}
