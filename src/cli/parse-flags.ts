import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './cli-error.js';

export type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

export interface ParsedFlags {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/**
 * Wraps node:util parseArgs (strict, positionals allowed) so every bad flag becomes a CliError naming the flag
 * (exit 2). `integerFlags` (names without dashes) take non-negative integers: a negative number given to one is
 * reported as such rather than as a missing value.
 */
export function parseFlags(argv: string[], options: ParseArgsOptionsConfig, integerFlags: readonly string[] = []): ParsedFlags {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: values as ParsedFlags['values'], positionals };
  } catch (err) {
    const e = err as Error & { code?: string };
    const m = /'(-{1,2}[^' <]+)/.exec(e.message);
    const flag = m?.[1];
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new CliError(`unknown option ${flag ?? ''}`.trim());
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag) {
      const i = argv.indexOf(flag);
      const next = i >= 0 ? argv[i + 1] : undefined;
      if (next !== undefined && next.startsWith('-')) {
        if (integerFlags.includes(flag.slice(2))) {
          throw new CliError(`${flag} must be a non-negative integer, got '${next}'`);
        }
        throw new CliError(`${flag} needs a value, got '${next}' (write ${flag}=${next} for a value starting with '-')`);
      }
      throw new CliError(`${flag} needs a value`);
    }
    throw new CliError(e.message);
  }
}

/**
 * parseFlags for a command that takes no positional arguments and has --help: undefined when it printed the help
 * (the command returns 0), otherwise the values and a reader of string flags.
 */
export function parseCommandFlags(
  argv: string[],
  options: ParseArgsOptionsConfig,
  help: string,
  integerFlags: readonly string[] = [],
): { values: ParsedFlags['values']; str: (name: string) => string | undefined } | undefined {
  const { values, positionals } = parseFlags(argv, options, integerFlags);
  if (values.help) {
    process.stdout.write(help);
    return undefined;
  }
  if (positionals.length > 0) throw new CliError(`unexpected argument ${JSON.stringify(positionals[0]!.slice(0, 40))}\n\n${help}`);
  return { values, str: (name) => values[name] as string | undefined };
}
