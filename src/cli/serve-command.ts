import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CliError } from './cli-error.js';
import { describePortHolder } from './port-holder.js';
import { ConfigError, loadConfig, redactStorage, type TokenmeterConfig } from '../config/index.js';
import type { LedgerError, LedgerInUseError } from '../ledger/index.js';

const HELP = `Usage: tokenmeter serve [options]

Runs the exporter: OTLP/HTTP receiver (POST /v1/traces, /v1/metrics) and the operations server (/metrics,
/healthz, /readyz, /api/v1/usage, the status page). Stops gracefully on SIGTERM or SIGINT.
On SIGHUP it re-reads the prices (the configuration file's pricing.overrides and pricing.catalog_file): new
prices that do not validate are refused with the error on stderr and the prices in use stay.

Options (each overrides its TOKENMETER_* environment variable, which overrides the file):
  --config <file>     Configuration file (default: $TOKENMETER_CONFIG, else ./tokenmeter.yaml if present)
  --storage <dir|url> Ledger: a directory or a postgres:// URL          ($TOKENMETER_STORAGE)
  --host <address>    Listen address                                    ($TOKENMETER_HOST)
  --otlp-port <n>     OTLP/HTTP port, 0 = any free port                 ($TOKENMETER_OTLP_PORT)
  --http-port <n>     Operations port, 0 = any free port                ($TOKENMETER_HTTP_PORT)
  --max-users <n>     Per-user series bound                             ($TOKENMETER_MAX_USERS)
  --ingest-worker-threads <n>
                      Threads decoding and pricing OTLP requests, 0 = none ($TOKENMETER_INGEST_WORKER_THREADS)
  -h, --help          Show this help

Exit codes: 0 stopped by SIGTERM/SIGINT; 2 bad flags or configuration, a port in use, the ledger held by another
exporter; 1 anything else. In a service or container run this command itself (\`node dist/cli/main.js serve\` or
node_modules/.bin/tokenmeter), not through npx, so that SIGTERM reaches the exporter.
`;

/** The ledger as printed: an embedded directory as an absolute path, a URL with its secrets redacted. */
export function describeStorage(storage: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(storage)) return redactStorage(storage);
  const pglite = /^pglite:/i.exec(storage);
  if (pglite) return `pglite:${resolve(storage.slice(pglite[0].length))}`;
  return resolve(storage);
}

function isLoopback(address: string): boolean {
  return address === '::1' || address === 'localhost' || /^127\./.test(address) || /^::ffff:127\./i.test(address);
}

function isAllInterfaces(address: string): boolean {
  return address === '0.0.0.0' || address === '::' || address === '';
}

/** "0.0.0.0:4318 (all interfaces)", "127.0.0.1:4318", "[::1]:4318". */
export function describeAddress(a: Pick<AddressInfo, 'address' | 'port'>): string {
  const host = a.address.includes(':') ? `[${a.address}]` : a.address;
  return `${host}:${a.port}${isAllInterfaces(a.address) ? ' (all interfaces)' : ''}`;
}

/**
 * A warning when the servers are reachable from other machines and a bearer token is missing: anyone who can reach
 * the port could then send usage, or read every user's usage. Undefined when there is nothing to warn about.
 */
export function exposureWarning(address: string, auth: { ingest_token?: string | undefined; api_token?: string | undefined }): string | undefined {
  if (isLoopback(address)) return undefined;
  const missing = [
    ...(auth.ingest_token === undefined ? ['auth.ingest_token (TOKENMETER_INGEST_TOKEN): anyone who can connect can send usage'] : []),
    ...(auth.api_token === undefined ? ['auth.api_token (TOKENMETER_API_TOKEN): anyone who can connect can read every user\'s usage'] : []),
  ];
  if (missing.length === 0) return undefined;
  const where = isAllInterfaces(address) ? 'all interfaces' : address;
  return `warning: listening on ${where} without ${missing.join('; without ')}. Set the token(s), or listen on this machine only with --host 127.0.0.1.`;
}

interface ListenError {
  code: string;
  port?: number;
  address?: string;
}

function listenError(err: unknown): ListenError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; syscall?: unknown; port?: unknown; address?: unknown; hostname?: unknown };
  if (typeof e.code !== 'string') return undefined;
  if (e.syscall !== 'listen' && e.syscall !== 'bind' && e.syscall !== 'getaddrinfo') return undefined;
  return {
    code: e.code,
    ...(typeof e.port === 'number' ? { port: e.port } : {}),
    ...(typeof e.address === 'string' ? { address: e.address } : typeof e.hostname === 'string' ? { address: e.hostname } : {}),
  };
}

/** The one-line message for an error starting the exporter, or undefined for an unexpected one (a bug: stack). */
export function startErrorMessage(
  err: unknown,
  config: TokenmeterConfig,
  // Passed in: the ledger module is loaded only once `serve` runs (the CLI's other commands do not need it).
  ledgerErrors: { LedgerError: typeof LedgerError; LedgerInUseError: typeof LedgerInUseError },
): CliError | undefined {
  const { host, otlp_port: otlpPort } = config.server;
  const l = listenError(err);
  if (l) {
    const port = l.port ?? (l.code === 'EADDRINUSE' ? otlpPort : undefined);
    const isOtlp = port === otlpPort;
    const what = isOtlp ? 'OTLP/HTTP receiver' : 'operations: metrics, usage API, status page';
    const change = isOtlp ? '--otlp-port <n> or TOKENMETER_OTLP_PORT (server.otlp_port)' : '--http-port <n> or TOKENMETER_HTTP_PORT (server.http_port)';
    switch (l.code) {
      case 'EADDRINUSE':
        return new CliError(
          `port ${port} (${what}; host ${host}) is already in use${port === undefined ? '' : describePortHolder(port)}; ` +
            `choose another with ${change}, 0 picks a free port`,
          2,
        );
      case 'EACCES':
        return new CliError(`not allowed to listen on port ${port} (${what}; host ${host}): ports below 1024 need privileges; choose another with ${change}`, 2);
      case 'EADDRNOTAVAIL':
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
        return new CliError(`cannot listen on host ${JSON.stringify(host)}: it is not an address of this machine; set --host or TOKENMETER_HOST (server.host), e.g. 127.0.0.1 or 0.0.0.0`, 2);
      default:
        return undefined;
    }
  }
  if (err instanceof ledgerErrors.LedgerInUseError) {
    const e = err;
    const holder = e.ownerPid === process.pid ? '' : describeProcess(e.ownerPid);
    return new CliError(
      `the ledger ${e.directory} is already in use by another exporter (process ${e.ownerPid}${holder}); ` +
        `stop it, or give this one its own ledger with --storage <dir> or TOKENMETER_STORAGE ` +
        `(replicas share one ledger through a postgres:// URL; if process ${e.ownerPid} is not a tokenmeter, delete ${e.lockPath})`,
      2,
    );
  }
  if (err instanceof ledgerErrors.LedgerError) return new CliError(`cannot open the ledger: ${err.message}`, 1);
  return undefined;
}

function describeProcess(pid: number): string {
  try {
    // eslint-disable-next-line no-control-regex -- a hostile command line must not carry escapes into the terminal
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
    return command ? `: ${command.length > 120 ? `${command.slice(0, 119)}…` : command}` : '';
  } catch {
    return '';
  }
}

/** Top-level settings other than the reloadable prices whose values differ (they take effect at the next start). */
export function restartOnlyChanges(running: TokenmeterConfig, reread: TokenmeterConfig): string[] {
  const strip = (c: TokenmeterConfig) => ({ ...c, pricing: { ...c.pricing, overrides: undefined, catalog_file: undefined } });
  const a = strip(running) as Record<string, unknown>;
  const b = strip(reread) as Record<string, unknown>;
  const changed: string[] = [];
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[key];
    const y = b[key];
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    if (x && y && typeof x === 'object' && typeof y === 'object') {
      for (const sub of new Set([...Object.keys(x), ...Object.keys(y)])) {
        if (JSON.stringify((x as Record<string, unknown>)[sub]) !== JSON.stringify((y as Record<string, unknown>)[sub])) changed.push(`${key}.${sub}`);
      }
    } else changed.push(key);
  }
  return changed;
}

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
        'ingest-worker-threads': { type: 'string' },
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
      flags: { storage: values.storage, host: values.host, 'otlp-port': values['otlp-port'], 'http-port': values['http-port'], 'max-users': values['max-users'], 'ingest-worker-threads': values['ingest-worker-threads'] },
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(`invalid configuration\n${err.problems.map((p) => `  ${p}`).join('\n')}`, 2);
    throw err;
  }
  const config = loaded.config;
  const { otlp_port: otlpPort, http_port: httpPort } = config.server;
  if (otlpPort !== 0 && otlpPort === httpPort) {
    throw new CliError(`server.otlp_port and server.http_port are both ${otlpPort}: the two servers need different ports (--otlp-port, --http-port)`, 2);
  }
  const [{ startExporter, loadPricing }, ledgerErrors, { PriceCatalogError }] = await Promise.all([
    import('../exporter/index.js'),
    import('../ledger/index.js'),
    import('../pricing/index.js'),
  ]);
  const loadOptions = {
    ...(values.config !== undefined ? { configPath: values.config } : {}),
    flags: { storage: values.storage, host: values.host, 'otlp-port': values['otlp-port'], 'http-port': values['http-port'], 'max-users': values['max-users'], 'ingest-worker-threads': values['ingest-worker-threads'] },
  };
  // SIGHUP: the file named at start is read again (same flags and environment); only the prices are applied.
  const reloadSource = () => {
    const again = loadConfig(loadOptions);
    const changed = restartOnlyChanges(config, again.config);
    if (changed.length > 0) {
      process.stderr.write(`tokenmeter: configuration changes that apply only after a restart were not applied: ${changed.join(', ')}\n`);
    }
    return loadPricing(again.config.pricing);
  };
  let exporter;
  try {
    exporter = await startExporter({ resolvedConfig: config, loadPricing: reloadSource });
  } catch (err) {
    if (err instanceof PriceCatalogError) throw new CliError(`invalid prices: ${err.message}`, 2);
    throw startErrorMessage(err, config, ledgerErrors) ?? err;
  }
  const ledger = describeStorage(config.storage);
  // Machine-readable first line (tests and scripts read the ports chosen for port 0).
  process.stdout.write(
    `${JSON.stringify({
      event: 'listening',
      otlpUrl: exporter.otlpUrl,
      httpUrl: exporter.httpUrl,
      otlpAddress: describeAddress(exporter.otlpAddress).replace(/ .*/, ''),
      httpAddress: describeAddress(exporter.httpAddress).replace(/ .*/, ''),
      ledger,
    })}\n`,
  );
  process.stderr.write(
    `tokenmeter: OTLP/HTTP receiver on ${describeAddress(exporter.otlpAddress)}: POST ${exporter.otlpUrl}/v1/traces\n` +
      `tokenmeter: operations on ${describeAddress(exporter.httpAddress)}: status page ${exporter.httpUrl}/, metrics ${exporter.httpUrl}/metrics\n` +
      `tokenmeter: ledger ${ledger}${loaded.file ? `, config ${resolve(loaded.file)}` : ''}\n`,
  );
  const warning = exposureWarning(exporter.httpAddress.address, config.auth);
  if (warning) process.stderr.write(`tokenmeter: ${warning}\n`);

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
    const onHangup = () => {
      if (!stopping) exporter.reloadPrices('SIGHUP');
    };
    process.on('SIGHUP', onHangup);
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
