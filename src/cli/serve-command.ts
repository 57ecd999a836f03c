import { parseArgs } from 'node:util';
import { CliError } from './cli-error.js';
import { ConfigError, loadConfig, redactStorage } from '../config/index.js';

const HELP = `Usage: tokenmeter serve [options]

Runs the exporter: OTLP/HTTP receiver (POST /v1/traces, /v1/metrics) and the operations server (/metrics,
/healthz, /readyz, /api/v1/usage, the status page). Stops gracefully on SIGTERM or SIGINT.

Options (each overrides its TOKENMETER_* environment variable, which overrides the file):
  --config <file>     Configuration file (default: $TOKENMETER_CONFIG, else ./tokenmeter.yaml if present)
  --storage <dir|url> Ledger: a directory or a postgres:// URL          ($TOKENMETER_STORAGE)
  --host <address>    Listen address                                    ($TOKENMETER_HOST)
  --otlp-port <n>     OTLP/HTTP port, 0 = any free port                 ($TOKENMETER_OTLP_PORT)
  --http-port <n>     Operations port, 0 = any free port                ($TOKENMETER_HTTP_PORT)
  --max-users <n>     Per-user series bound                             ($TOKENMETER_MAX_USERS)
  -h, --help          Show this help
`;

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        storage: { type: 'string' },
        host: { type: 'string' },
        'otlp-port': { type: 'string' },
        'http-port': { type: 'string' },
        'max-users': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (err) {
    throw new CliError(`${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  let loaded;
  try {
    loaded = loadConfig({
      ...(values.config !== undefined ? { configPath: values.config } : {}),
      flags: { storage: values.storage, host: values.host, 'otlp-port': values['otlp-port'], 'http-port': values['http-port'], 'max-users': values['max-users'] },
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`invalid configuration\n${err.problems.map((p) => `  ${p}`).join('\n')}`, 2);
    throw err;
  }
  const { startExporter } = await import('../exporter/index.js');
  const exporter = await startExporter({ resolvedConfig: loaded.config });
  // Machine-readable first line (tests and scripts read the ports chosen for port 0).
  process.stdout.write(`${JSON.stringify({ event: 'listening', otlpUrl: exporter.otlpUrl, httpUrl: exporter.httpUrl })}\n`);
  process.stderr.write(
    `tokenmeter: OTLP/HTTP on ${exporter.otlpUrl}, operations on ${exporter.httpUrl}, ledger ${redactStorage(loaded.config.storage)}` +
      `${loaded.file ? `, config ${loaded.file}` : ''}\n`,
  );

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`tokenmeter: ${signal}: finishing requests in flight\n`);
      exporter.close().then(
        () => {
          process.stderr.write('tokenmeter: stopped\n');
          resolve(0);
        },
        (err: unknown) => {
          process.stderr.write(`tokenmeter: error while stopping: ${err instanceof Error ? err.message : String(err)}\n`);
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
