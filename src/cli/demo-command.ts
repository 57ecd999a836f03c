/**
 * `tokenmeter demo`: see src/demo/demo.ts. Also `--workload-only` (just the simulated app, against an exporter and a
 * provider running elsewhere, e.g. in docker compose) and `--mock-only` (just the mock provider).
 */
import { parseArgs } from 'node:util';
import { CliError } from './cli-error.js';

const HELP = `Usage: tokenmeter demo [options]

Runs tokenmeter end to end on this machine: the exporter on an embedded ledger, a mock LLM provider, and a
simulated app whose users call it through the real OpenAI and Anthropic SDKs with the one-import instrumentation.

Options:
  --users N            simulated users, spread over the free, pro and team plans (default 12)
  --rate R             LLM calls per second across all users (default 4)
  --duration S         stop after S seconds (default: run until Ctrl-C)
  --seed N             the same seed gives the same users and calls (default 1)
  --port-offset N      shift every port the demo opens (4318, 9464, 8787) by N (default 0)
  --ports auto         let the operating system pick free ports (printed at start)
  --data-dir DIR       where the ledger and the mock provider's record go (default ./.tokenmeter/demo;
                       the ledger there is cleared when a demo starts)
  --plain              plain log lines even on a terminal
  --workload-only      run only the simulated app; needs --otlp-endpoint and --provider-url
  --otlp-endpoint URL  where the app sends OTLP (with --workload-only)
  --provider-url URL   the mock provider's base URL (with --workload-only)
  --mock-only          run only the mock provider (port 8787 + offset; --mock-host to bind elsewhere)
  --mock-host HOST     address the mock provider listens on with --mock-only (default 127.0.0.1)
  -h, --help           this help
`;

function intFlag(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new CliError(`--${name} must be an integer from ${min} to ${max}, got '${raw}'`);
  }
  return n;
}

function numberFlag(name: string, raw: string | undefined, fallback: number | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new CliError(`--${name} must be a number from ${min} to ${max}, got '${raw}'`);
  }
  return n;
}

function urlFlag(name: string, raw: string | undefined): string {
  if (!raw) throw new CliError(`--workload-only needs --${name} URL`);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new CliError(`--${name} must be an http(s) URL, got '${raw}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CliError(`--${name} must be an http(s) URL, got '${raw}'`);
  return u.href.replace(/\/+$/, '');
}

/** Resolves on SIGINT / SIGTERM (and stops listening then). */
function onStopSignal(controller: AbortController): () => void {
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  };
}

export async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        users: { type: 'string' },
        rate: { type: 'string' },
        duration: { type: 'string' },
        seed: { type: 'string' },
        'port-offset': { type: 'string' },
        ports: { type: 'string' },
        'data-dir': { type: 'string' },
        plain: { type: 'boolean' },
        'workload-only': { type: 'boolean' },
        'otlp-endpoint': { type: 'string' },
        'provider-url': { type: 'string' },
        'mock-only': { type: 'boolean' },
        'mock-host': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new CliError(`${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const users = intFlag('users', v.users, 12, 1, 10_000);
  const rate = numberFlag('rate', v.rate, 4, 0.01, 1000)!;
  const durationSeconds = numberFlag('duration', v.duration, undefined, 0.1, 365 * 86400);
  const seed = intFlag('seed', v.seed, 1, 0, 2 ** 31 - 1);
  if (v.ports !== undefined && v.ports !== 'auto') throw new CliError(`--ports accepts only 'auto', got '${v.ports}'`);
  if (v.ports === 'auto' && v['port-offset'] !== undefined) throw new CliError('use either --ports auto or --port-offset, not both');
  // The highest default port is 9464: keep every shifted port within 1..65535.
  const offset = v.ports === 'auto' ? 'auto' : intFlag('port-offset', v['port-offset'], 0, -4317, 65535 - 9464);
  const modes = [v['workload-only'], v['mock-only']].filter(Boolean).length;
  if (modes > 1) throw new CliError('use either --workload-only or --mock-only, not both');

  const { demoPorts, runDemo, DEFAULT_DEMO_DIR, PortInUseError, MissingSdkError, missingSdks } = await import('../demo/demo.js');
  const ports = demoPorts(offset);
  const stop = new AbortController();
  const release = onStopSignal(stop);
  try {
    if (v['workload-only']) {
      const missing = missingSdks();
      if (missing.length) throw new MissingSdkError(missing);
      return await runWorkloadOnly({
        otlpEndpoint: urlFlag('otlp-endpoint', v['otlp-endpoint']),
        providerUrl: urlFlag('provider-url', v['provider-url']),
        users,
        rate,
        seed,
        durationSeconds,
      }, stop.signal);
    }
    if (v['mock-only']) {
      const { startMockProvider } = await import('../mock-provider/index.js');
      let mock;
      try {
        mock = await startMockProvider({ seed, port: ports.mock, host: v['mock-host'] ?? '127.0.0.1', responseWords: 40 });
      } catch (err) {
        if ((err as { code?: string }).code === 'EADDRINUSE') throw new PortInUseError(ports.mock, 'the mock provider');
        throw err;
      }
      process.stderr.write(`tokenmeter demo: mock provider on ${mock.url} (OpenAI base URL ${mock.openaiBaseURL})\n`);
      await new Promise<void>((r) => stop.signal.addEventListener('abort', () => r(), { once: true }));
      await mock.close();
      return 0;
    }
    return await runDemo({
      users,
      rate,
      durationSeconds,
      seed,
      ports,
      dataDir: v['data-dir'] ?? DEFAULT_DEMO_DIR,
      live: !v.plain && process.stdout.isTTY === true,
      color: process.env.NO_COLOR === undefined || process.env.NO_COLOR === '',
      out: process.stdout,
      err: process.stderr,
      signal: stop.signal,
    });
  } catch (err) {
    if (err instanceof PortInUseError || err instanceof MissingSdkError) throw new CliError(err.message, 1);
    throw err;
  } finally {
    release();
  }
}

/** The simulated app alone, as its own process with the instrumentation, until it finishes or is stopped. */
async function runWorkloadOnly(
  o: { otlpEndpoint: string; providerUrl: string; users: number; rate: number; seed: number; durationSeconds?: number },
  signal: AbortSignal,
): Promise<number> {
  const { startWorkloadProcess, stopWorkloadProcess } = await import('../demo/demo.js');
  const child = startWorkloadProcess({ otlpUrl: o.otlpEndpoint, ...o, stdio: 'inherit' });
  const exited = new Promise<number>((r) => child.once('exit', (code) => r(code ?? -1)));
  const stop = () => void stopWorkloadProcess(child);
  signal.addEventListener('abort', stop, { once: true });
  const code = await exited;
  signal.removeEventListener('abort', stop);
  return code;
}
