/**
 * `tokenmeter demo`: the exporter on an embedded ledger, a mock provider, and a simulated app (a child process
 * started with `--import tokenmeter/register`, calling the mock through the real SDKs) — one process tree.
 * The live view reads every figure from the exporter's usage API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_HTTP_PORT, DEFAULT_OTLP_PORT } from '../contract/names.js';
import { describePortHolder } from '../cli/port-holder.js';
import { attributeSentUsage, type MockSentRecord } from './mock-record.js';
import { firingAlerts, type FiringAlert } from './alerts.js';
import { renderLiveView, renderLogLine, newAlertLines } from './terminal-view.js';
import { UsageApiClient, type Snapshot } from './usage-api.js';
import { formatCost, formatInt } from './format.js';
import { startExporter, type RunningExporter } from '../exporter/exporter.js';

/** The mock provider's default port (shifted by --port-offset like the exporter's). */
export const DEMO_MOCK_PORT = 8787;
export const DEFAULT_DEMO_DIR = join('.tokenmeter', 'demo');
export const MOCK_RECORD_FILE = 'mock-sent-usage.json';

export interface DemoPorts {
  otlp: number;
  http: number;
  mock: number;
}

export interface DemoOptions {
  users: number;
  rate: number;
  durationSeconds?: number;
  seed: number;
  /** Ports to listen on; 0 = any free port. */
  ports: DemoPorts;
  dataDir: string;
  /** Live view (TTY) or plain log lines. */
  live: boolean;
  color: boolean;
  out: NodeJS.WritableStream & { columns?: number; rows?: number };
  err: NodeJS.WritableStream;
  /** Aborting stops the demo like Ctrl-C. */
  signal: AbortSignal;
  /** Seconds between plain log lines. Default 5. */
  logIntervalSeconds?: number;
}

export function demoPorts(offset: number | 'auto'): DemoPorts {
  if (offset === 'auto') return { otlp: 0, http: 0, mock: 0 };
  return { otlp: DEFAULT_OTLP_PORT + offset, http: DEFAULT_HTTP_PORT + offset, mock: DEMO_MOCK_PORT + offset };
}

/** A clear message for a port that is taken, naming the flags that avoid it. */
export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    what: string,
  ) {
    super(
      `port ${port} (${what}) is already in use${describePortHolder(port) || ' — is another tokenmeter running?'}; ` +
        `use --port-offset N to shift every demo port by N (e.g. --port-offset 100), or --ports auto to pick free ports.`,
    );
  }
}

function isAddrInUse(err: unknown): err is { code: string; port?: number } {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'EADDRINUSE';
}

/** The simulated app's entry module, and the package root it runs in. */
const WORKLOAD_MAIN = fileURLToPath(new URL('./workload-main.js', import.meta.url));
/**
 * `tokenmeter/register` by its file: the `tokenmeter` specifier resolves in the repository (the package's own
 * name) but not in the tokenmeter-exporter package, which carries the same build under another name.
 */
const REGISTER = pathToFileURL(fileURLToPath(new URL('../instrumentation/register.js', import.meta.url))).href;
const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface WorkloadProcessOptions {
  otlpUrl: string;
  providerUrl: string;
  users: number;
  rate: number;
  seed: number;
  durationSeconds?: number;
  /** Where the child's stdout/stderr go. */
  stdio: 'pipe' | 'inherit';
}

/**
 * Starts the simulated app as users start theirs: `node --import tokenmeter/register app.js`. It runs in its own
 * process group (a terminal's Ctrl-C reaches only the demo) and is stopped through its IPC channel, so it can finish
 * its calls in flight and flush their spans before exiting.
 */
export function startWorkloadProcess(o: WorkloadProcessOptions): ChildProcess {
  const args = ['--import', REGISTER, WORKLOAD_MAIN, '--provider-url', o.providerUrl, '--seed', String(o.seed), '--users', String(o.users), '--rate', String(o.rate)];
  if (o.durationSeconds !== undefined) args.push('--duration', String(o.durationSeconds));
  return spawn(process.execPath, args, {
    cwd: PACKAGE_ROOT,
    detached: true,
    stdio: ['ignore', o.stdio, o.stdio, 'ipc'],
    env: {
      ...process.env,
      OTEL_EXPORTER_OTLP_ENDPOINT: o.otlpUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: process.env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf',
      OTEL_SERVICE_NAME: process.env.OTEL_SERVICE_NAME ?? 'tokenmeter-demo-app',
      // Export spans every half second so the live view moves with the workload; the demo has no metrics reader.
      OTEL_BSP_SCHEDULE_DELAY: '500',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
    },
  });
}

/** Asks the app to stop (finish calls in flight, flush spans); SIGTERM, then SIGKILL, if it does not. */
/** Resolves to the exit code, -1 when it ended by a signal. */
export async function stopWorkloadProcess(child: ChildProcess, timeoutMillis = 15_000): Promise<number> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? -1;
  const exited = new Promise<number>((r) => child.once('exit', (code) => r(code ?? -1)));
  if (child.connected) child.send('stop', () => {});
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMillis);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

const HIDE_CURSOR = '\u001b[?25l';
const SHOW_CURSOR = '\u001b[?25h';
// The live view runs on the terminal's alternate screen: its frames never reach the scrollback, and leaving it
// gives back the screen as it was. Each frame goes to the top left and clears what is left of every line and below
// (no full clear: no flicker), and never ends with a newline (which would scroll the header off a full screen).
const ENTER_ALT_SCREEN = '\u001b[?1049h';
const LEAVE_ALT_SCREEN = '\u001b[?1049l';
export const FRAME_START = '\u001b[H';
const CLEAR_LINE_END = '\u001b[K';
const CLEAR_BELOW = '\u001b[J';

/** One live frame: cursor home, each line cleared to its end, the rest of the screen cleared. */
export function frame(view: string): string {
  return FRAME_START + view.split('\n').join(`${CLEAR_LINE_END}\n`) + CLEAR_LINE_END + CLEAR_BELOW;
}

/** The bin as a command that runs from here: `node dist/cli/main.js` in a clone, an absolute path otherwise. */
export function binCommand(cwd: string = process.cwd()): string {
  const main = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const rel = relative(cwd, main);
  return `node ${shellQuote(rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : main)}`;
}

/** Quotes a path for a POSIX shell when it needs it. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The demo drives the real SDKs, optional peers of tokenmeter: say how to get them when they are missing. */
export function missingSdks(resolveFrom: string = import.meta.url): string[] {
  const req = createRequire(resolveFrom);
  return ['openai', '@anthropic-ai/sdk'].filter((name) => {
    try {
      req.resolve(name);
      return false;
    } catch {
      return true;
    }
  });
}

export class MissingSdkError extends Error {
  constructor(names: string[]) {
    super(`the demo calls the real provider SDKs, and ${names.join(' and ')} ${names.length > 1 ? 'are' : 'is'} not installed: npm install ${names.join(' ')}`);
  }
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const missing = missingSdks();
  if (missing.length) throw new MissingSdkError(missing);
  const dataDir = resolve(o.dataDir);
  const ledgerDir = join(dataDir, 'ledger');
  const recordPath = join(dataDir, MOCK_RECORD_FILE);
  // Each demo starts from an empty ledger so its figures are this run's; the directory is the demo's own.
  rmSync(ledgerDir, { recursive: true, force: true });
  rmSync(recordPath, { force: true });
  mkdirSync(dataDir, { recursive: true });

  const { startMockProvider } = await import('../mock-provider/index.js');
  let mock: Awaited<ReturnType<typeof startMockProvider>>;
  try {
    mock = await startMockProvider({ seed: o.seed, port: o.ports.mock, responseWords: 40 });
  } catch (err) {
    if (isAddrInUse(err)) throw new PortInUseError(o.ports.mock, 'the mock provider');
    throw err;
  }
  let exporter: RunningExporter;
  // The exporter's own log lines would tear the live view: there they are kept and shown when the demo stops.
  const exporterLog: string[] = [];
  const log = (line: string) => {
    if (o.live) exporterLog.push(line);
    else o.err.write(`tokenmeter: ${line}\n`);
  };
  try {
    exporter = await startExporter({ storage: ledgerDir, host: '127.0.0.1', otlpPort: o.ports.otlp, httpPort: o.ports.http, log });
  } catch (err) {
    await mock.close();
    if (isAddrInUse(err)) {
      const port = err.port ?? -1;
      throw new PortInUseError(port, port === o.ports.otlp ? 'the exporter\'s OTLP receiver' : 'the exporter\'s metrics, usage API and status page');
    }
    throw err;
  }

  const api = new UsageApiClient(exporter.httpUrl);
  o.err.write(
    [
      `tokenmeter demo: ${o.users} users, ${o.rate} calls/s, seed ${o.seed}${o.durationSeconds === undefined ? ', until Ctrl-C' : `, ${o.durationSeconds}s`}`,
      `  status page  ${exporter.httpUrl}/`,
      `  usage API    ${exporter.httpUrl}/api/v1/usage   metrics ${exporter.httpUrl}/metrics`,
      `  OTLP         ${exporter.otlpUrl}   mock provider ${mock.url}`,
      `  ledger       ${ledgerDir}`,
      '',
    ].join('\n'),
  );

  const child = startWorkloadProcess({
    otlpUrl: exporter.otlpUrl,
    providerUrl: mock.url,
    users: o.users,
    rate: o.rate,
    seed: o.seed,
    durationSeconds: o.durationSeconds,
    stdio: 'pipe',
  });
  let childStderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    childStderr = (childStderr + d).slice(-4000);
    if (!o.live) o.err.write(d);
  });
  child.stdout?.resume();
  const childExited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

  const startedMillis = Date.now();
  let last: Snapshot | undefined;
  let alerts: FiringAlert[] = [];
  let lastLog = 0;
  // Give the terminal back even if the demo dies without reaching its end.
  let onAltScreen = false;
  const restoreTerminal = () => {
    if (!onAltScreen) return;
    onAltScreen = false;
    o.out.write(LEAVE_ALT_SCREEN + SHOW_CURSOR);
  };
  if (o.live) {
    o.out.write(ENTER_ALT_SCREEN + HIDE_CURSOR);
    onAltScreen = true;
    process.once('exit', restoreTerminal);
  }

  const tick = async (final = false) => {
    try {
      const snap = await api.snapshot();
      const elapsed = Math.round((Date.now() - startedMillis) / 1000);
      if (o.live) {
        const status = `${final ? 'stopped' : 'running'} ${elapsed}s`;
        const view = (rows: number | undefined) =>
          renderLiveView(snap, last, { color: o.color, columns: o.out.columns || 80, ...(rows ? { rows } : {}), nowMillis: Date.now(), status, final });
        if (final) {
          // The last figures stay on the normal screen, once, whole, above the summary.
          restoreTerminal();
          o.out.write(view(undefined) + '\n');
        } else {
          o.out.write(frame(view(o.out.rows || 24)));
        }
      } else {
        const now = firingAlerts(snap.usage.users);
        for (const line of newAlertLines(now, alerts)) o.out.write(line + '\n');
        alerts = now;
        if (final || Date.now() - lastLog >= (o.logIntervalSeconds ?? 5) * 1000) {
          o.out.write(renderLogLine(snap, last, elapsed) + '\n');
          lastLog = Date.now();
        }
      }
      last = snap;
    } catch (err) {
      o.err.write(`demo: cannot read the usage API: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  };

  // Refresh until the workload finishes (--duration) or the demo is stopped (Ctrl-C / abort).
  const stopped = new Promise<void>((r) => (o.signal.aborted ? r() : o.signal.addEventListener('abort', () => r(), { once: true })));
  const refreshMillis = 1000;
  let running = true;
  const loop = (async () => {
    while (running) {
      await tick();
      await Promise.race([new Promise((r) => setTimeout(r, refreshMillis)), stopped, childExited]);
    }
  })();
  await Promise.race([stopped, childExited]);
  running = false;
  await loop;

  // Stop the app first and let it deliver its last spans; the exporter acknowledges only committed usage.
  const childCode = await stopWorkloadProcess(child);
  await tick(true);
  restoreTerminal();
  process.off('exit', restoreTerminal);

  let record: MockSentRecord | undefined;
  try {
    record = attributeSentUsage(mock.requests, mock.usageSent);
    writeFileSync(recordPath, JSON.stringify(record, null, 2) + '\n');
  } catch (err) {
    o.err.write(`demo: could not write the mock provider's record: ${err instanceof Error ? err.message : String(err)}\n`);
  }
  await mock.close();
  await exporter.close();
  if (exporterLog.length) o.err.write(exporterLog.slice(-20).map((l) => `tokenmeter: ${l}\n`).join(''));

  o.out.write(summary(last, { ledgerDir, recordPath: record ? recordPath : undefined, httpUrl: exporter.httpUrl }) + '\n');
  if (childCode !== 0) {
    o.err.write(`demo: the workload exited with code ${childCode}\n${childStderr.trim()}\n`);
    return 1;
  }
  return 0;
}

function summary(snap: Snapshot | undefined, where: { ledgerDir: string; recordPath?: string; httpUrl: string }): string {
  const lines = ['', 'tokenmeter demo stopped.'];
  if (snap) {
    const t = snap.summary.totals;
    const over = snap.usage.users.filter((u) => (u.max_ratio ?? 0) >= 1);
    lines.push(
      `  this period: ${formatInt(snap.usage.total ?? snap.usage.users.length)} users, ${formatInt(t.requests)} requests, ${formatInt(t.tokens.total)} tokens, ` +
        `${formatCost(t.cost_usd, t.unpriced_requests)}${t.cost_usd === null ? '' : ` (exact: ${t.cost_usd} USD)`}`,
      `  over a limit: ${over.length ? over.map((u) => `${u.user} (${u.plan})`).join(', ') : 'nobody'}`,
    );
  }
  lines.push(
    `  ledger: ${where.ledgerDir} — look again with: ${binCommand()} serve --storage ${shellQuote(where.ledgerDir)} --host 127.0.0.1`,
    `  metrics and status page were at ${where.httpUrl}/metrics and ${where.httpUrl}/ (stopped with the demo)`,
  );
  if (where.recordPath) lines.push(`  usage the mock provider sent, per user: ${where.recordPath}`);
  return lines.join('\n');
}
