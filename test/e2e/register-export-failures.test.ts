/**
 * "Never silent" when the exporter cannot take what `tokenmeter/register` exports, with child processes and real
 * local servers (port 0): a closed port, an exporter answering 401, 500 or 503, one that never answers. Each kind
 * of failure is one warning line per signal however many batches fail, naming the endpoint and the fix; the
 * app's own output and exit code are unchanged; and an app whose exporter is down exits within the exit flush
 * bound instead of waiting out the exporter's retries (about 9 s more before the bound existed).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runApp, useE2eServers, type AppRun } from './fixtures/run-app.js';

const e2e = useE2eServers(17);
const WARNING = 'tokenmeter: warning: ';

interface Exporter {
  url: string;
  /** Requests received, by path. */
  hits: Map<string, number>;
  close(): Promise<void>;
}

const open: Exporter[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/**
 * An OTLP endpoint that answers every request with `status` (or never answers, with `status` undefined); with
 * `failFirst`, only the first `failFirst` requests of each path, and 200 after them.
 */
async function failingExporter(status: number | undefined, failFirst = Number.POSITIVE_INFINITY): Promise<Exporter> {
  const hits = new Map<string, number>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const n = (hits.get(req.url ?? '') ?? 0) + 1;
    hits.set(req.url ?? '', n);
    req.resume();
    if (status === undefined) return; // hangs: accepted, never answered
    req.on('end', () => {
      res.writeHead(n <= failFirst ? status : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `answered ${status}` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const exporter: Exporter = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  open.push(exporter);
  return exporter;
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** Many small batches while the app runs: one span per export, metrics every 200 ms, no retry within 300 ms. */
const MANY_BATCHES = {
  CALLS: '6',
  PAUSE_MILLIS: '150',
  OTEL_BSP_SCHEDULE_DELAY: '20',
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1',
  OTEL_METRIC_EXPORT_INTERVAL: '200',
  OTEL_METRIC_EXPORT_TIMEOUT: '200',
  OTEL_EXPORTER_OTLP_TIMEOUT: '300',
};

function env(endpoint: string, extra: Record<string, string> = {}): Record<string, string> {
  // http/json: the test receiver decodes JSON; the failure paths are the same for both protocols.
  return {
    MOCK_URL: e2e.mock.url,
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_SERVICE_NAME: 'e2e-export-failures',
    APP_EXIT_CODE: '3',
    ...extra,
  };
}

/** Runs the app; `exitMillis` is the time from its last output (it is done: its event loop empties) to its exit. */
async function timedRun(environment: Record<string, string>, file = 'export-app.mjs'): Promise<AppRun & { exitMillis: number }> {
  let doneAt = Number.NaN;
  const run = await runApp({
    nodeArgs: ['--import', 'tokenmeter/register'],
    file,
    env: environment,
    onOutput: { text: 'app done', then: () => (doneAt = Date.now()) },
  });
  return { ...run, exitMillis: Date.now() - doneAt };
}

/** The app's output with the mock's response ids (numbered across the file's runs) made comparable. */
const appOutput = (stdout: string): string => stdout.replace(/chatcmpl-mock-\d+/g, '<id>');

function warningLines(stderr: string): string[] {
  const lines = stderr.split('\n').filter((l) => l !== '');
  // Nothing but tokenmeter's warnings, and none of them twice.
  for (const line of lines) expect(line.startsWith(WARNING), line).toBe(true);
  expect(new Set(lines).size).toBe(lines.length);
  return lines;
}

function only(lines: string[], pattern: RegExp): string {
  const found = lines.filter((l) => pattern.test(l));
  expect(found, `${pattern} in:\n${lines.join('\n')}`).toHaveLength(1);
  return found[0];
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('tokenmeter/register when spans and metrics cannot be exported', () => {
  // What the app prints and how it exits with a working exporter: the failing runs must print exactly this.
  let appStdout = '';
  beforeAll(async () => {
    const run = await timedRun(env(e2e.receiver.url, MANY_BATCHES));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/^app done (\S+ ){5}\S+\n$/);
    appStdout = appOutput(run.stdout);
    // The receiver took one span per batch.
    expect(e2e.receiver.requests.filter((r) => r.path === '/v1/traces').length).toBeGreaterThanOrEqual(2);
  });

  it.each(['http/protobuf', 'http/json'])('connection refused (%s): one warning per signal naming the endpoint and the fix, however many batches fail', async (protocol) => {
    const endpoint = await closedPort();
    const run = await timedRun(env(endpoint, { ...MANY_BATCHES, OTEL_EXPORTER_OTLP_PROTOCOL: protocol }));
    expect(run.code).toBe(3);
    expect(appOutput(run.stdout)).toBe(appStdout);
    const lines = warningLines(run.stderr);
    for (const [signal, noun] of [['traces', 'spans'], ['metrics', 'metrics']] as const) {
      const line = only(lines, new RegExp(`cannot export ${noun} to ${escape(endpoint)}/v1/${signal}: connection refused`));
      expect(line).toContain('Is the tokenmeter exporter');
      expect(line).toContain('set OTEL_EXPORTER_OTLP_ENDPOINT');
    }
    // Six calls, each span exported on its own, and metrics every 100 ms: far more batches than lines.
    expect(lines.length).toBeLessThanOrEqual(3);
  });

  it.each([
    [401, /it requires the ingest token: set OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer <token>/],
    [403, /it requires the ingest token: set OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer <token>/],
    [500, /the exporter failed on the request: check its log/],
    [503, /kept answering so after the SDK's retries \(OTEL_EXPORTER_OTLP_TIMEOUT, 300 ms\).*check its \/readyz/],
    [404, /nothing receives OTLP at that path: set OTEL_EXPORTER_OTLP_ENDPOINT to the exporter's base URL/],
  ])('HTTP %i: one warning per signal with the status and what to do, the app unchanged', async (status, fix) => {
    const exporter = await failingExporter(status);
    const run = await timedRun(env(exporter.url, MANY_BATCHES));
    expect(run.code).toBe(3);
    expect(appOutput(run.stdout)).toBe(appStdout);
    expect(exporter.hits.get('/v1/traces') ?? 0).toBeGreaterThanOrEqual(3);
    expect(exporter.hits.get('/v1/metrics') ?? 0).toBeGreaterThanOrEqual(3);
    const lines = warningLines(run.stderr);
    for (const [signal, noun] of [['traces', 'spans'], ['metrics', 'metrics']] as const) {
      const line = only(lines, new RegExp(`the exporter at ${escape(exporter.url)}/v1/${signal} rejected ${noun} with HTTP ${status}`));
      expect(line).toMatch(fix);
    }
  });

  it('an exporter that fails, then accepts again: the failure once, then once that it works again', async () => {
    const exporter = await failingExporter(500, 2);
    const run = await timedRun(env(exporter.url, MANY_BATCHES));
    expect(run.code).toBe(3);
    expect(appOutput(run.stdout)).toBe(appStdout);
    const lines = warningLines(run.stderr);
    for (const [signal, noun] of [['traces', 'spans'], ['metrics', 'metrics']] as const) {
      const url = `${exporter.url}/v1/${signal}`;
      const failed = lines.indexOf(only(lines, new RegExp(`the exporter at ${escape(url)} rejected ${noun} with HTTP 500`)));
      const again = lines.indexOf(only(lines, new RegExp(`exporting ${noun} to ${escape(url)} works again \\(what failed before it was not exported\\)\\.$`)));
      expect(again).toBeGreaterThan(failed);
    }
    expect(lines).toHaveLength(4);
  });

  it('another exporter configuration stays NodeSDK\'s own (OTEL_TRACES_EXPORTER=console, OTEL_METRICS_EXPORTER=none)', async () => {
    const endpoint = await closedPort();
    const run = await timedRun(env(endpoint, { OTEL_TRACES_EXPORTER: 'console', OTEL_METRICS_EXPORTER: 'none' }));
    expect(run.code).toBe(3);
    expect(run.stderr).toBe('');
    // The console exporter printed the span; nothing went to the (closed) OTLP endpoint, so nothing to warn about.
    expect(run.stdout).toMatch(/^app done \S+$/m);
    expect(run.stdout).toContain("'gen_ai.usage.input_tokens'");
  });

  it('OTEL_LOG_LEVEL=error: OTel\'s own per-batch export errors are not printed on top of the warning', async () => {
    const endpoint = await closedPort();
    const run = await timedRun(env(endpoint, { ...MANY_BATCHES, OTEL_LOG_LEVEL: 'error' }));
    expect(run.code).toBe(3);
    expect(appOutput(run.stdout)).toBe(appStdout);
    const lines = run.stderr.split('\n').filter((l) => l !== '');
    only(lines, /cannot export spans to .*: connection refused/);
    only(lines, /cannot export metrics to .*: connection refused/);
    // Without the routing, every failed batch added an OTel error line naming ECONNREFUSED.
    expect(lines.filter((l) => /ECONNREFUSED|export failed/.test(l)), run.stderr).toEqual([]);
  });

  it('OTEL_LOG_LEVEL=warn: each warning line is printed once, not again by the diag console logger', async () => {
    const exporter = await failingExporter(401);
    const run = await timedRun(env(exporter.url, { ...MANY_BATCHES, OTEL_LOG_LEVEL: 'warn' }));
    expect(run.code).toBe(3);
    const lines = run.stderr.split('\n').filter((l) => l !== '');
    only(lines, /rejected spans with HTTP 401/);
    only(lines, /rejected metrics with HTTP 401/);
    expect(lines.filter((l) => /401|Unauthorized|export failed/.test(l) && !l.startsWith(WARNING)), run.stderr).toEqual([]);
  });
});

describe('the flush at exit is bounded', () => {
  // Measured before the bound: an app whose exporter refused connections took about 9 s longer to exit than one
  // whose exporter was up (the OTLP exporter retries until OTEL_EXPORTER_OTLP_TIMEOUT, 10 s by default).
  // The assertions below allow 3 s over the bound: a correctness check on a busy machine, not a benchmark.
  const SLACK_MILLIS = 3_000;

  it('exporter down (connection refused): the app exits within the default 2 s bound and says what was not exported', async () => {
    const endpoint = await closedPort();
    const run = await timedRun(env(endpoint, { CALLS: '2' }));
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/^app done \S+ \S+\n$/);
    expect(run.exitMillis).toBeLessThan(2_000 + SLACK_MILLIS);
    const lines = warningLines(run.stderr);
    // The exporter was still retrying when the bound ran out: its last attempt says why.
    only(lines, new RegExp(`cannot export spans to ${escape(endpoint)}/v1/traces: connection refused`));
    const cut = only(lines, /before the final export finished/);
    expect(cut).toContain('the process exits 2000 ms after it began to end');
    expect(cut).toContain(`2 spans to ${endpoint}/v1/traces`);
    expect(cut).toContain('set TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS');
  });

  it('an exporter that never answers: TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS=500 bounds the wait', async () => {
    const exporter = await failingExporter(undefined);
    const run = await timedRun(env(exporter.url, { TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS: '500' }));
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/^app done \S+\n$/);
    expect(run.exitMillis).toBeLessThan(500 + SLACK_MILLIS);
    expect(exporter.hits.get('/v1/traces')).toBe(1);
    const lines = warningLines(run.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('the process exits 500 ms after it began to end');
    expect(lines[0]).toContain(`1 span to ${exporter.url}/v1/traces (no answer from there yet)`);
  });

  it('SIGTERM with the exporter down: the process still ends by the signal, within the bound', async () => {
    const endpoint = await closedPort();
    let killedAt = 0;
    const run = await runApp({
      nodeArgs: ['--require', 'tokenmeter/register'],
      file: 'signal-app.cjs',
      env: env(endpoint, { TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS: '1000' }),
      onOutput: {
        text: 'ready',
        then: (child) => {
          killedAt = Date.now();
          child.kill('SIGTERM');
        },
      },
    });
    const afterSignalMillis = Date.now() - killedAt;
    expect(run.signal).toBe('SIGTERM');
    expect(run.stdout).toMatch(/^ready \S+\n$/);
    expect(afterSignalMillis).toBeLessThan(1_000 + SLACK_MILLIS);
    const lines = warningLines(run.stderr);
    only(lines, /the process exits 1000 ms after it began to end, before the final export finished: 1 span to /);
  });

  it('an app that handles SIGTERM and calls process.exit(7): exits with 7 within the bound, exporter down', async () => {
    e2e.mock.setChunkDelay(30);
    const endpoint = await closedPort();
    let killedAt = 0;
    const run = await runApp({
      nodeArgs: ['--import', 'tokenmeter/register'],
      file: 'drain-app.mjs',
      env: env(endpoint, { EXIT_MODE: 'exit', TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS: '1000' }),
      onOutput: {
        text: 'ready',
        then: (child) => {
          killedAt = Date.now();
          child.kill('SIGTERM');
        },
      },
    });
    const afterSignalMillis = Date.now() - killedAt;
    expect(run.signal).toBeNull();
    expect(run.code).toBe(7);
    expect(run.stdout).toMatch(/^ready\ndraining\ndone \S+\n$/);
    expect(afterSignalMillis).toBeLessThan(1_000 + SLACK_MILLIS);
    const lines = warningLines(run.stderr);
    only(lines, /the process exits 1000 ms after it began to end, before the final export finished: 1 span to /);
  });

  it('exporter up: nothing is printed, and no waiting', async () => {
    const run = await timedRun(env(e2e.receiver.url, { CALLS: '2', TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS: '100000' }));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(3);
    expect(e2e.receiver.spans()).toHaveLength(2);
  });

  it.each(['soon', '-1', '2.5', '600001', '1e3', ' ', '9'.repeat(500)])(
    'TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS=%j: one warning naming the variable, the default applies',
    async (value) => {
      const run = await timedRun(env(e2e.receiver.url, { TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS: value }));
      expect(run.code).toBe(3);
      expect(run.stdout).toMatch(/^app done \S+\n$/);
      expect(e2e.receiver.spans()).toHaveLength(1);
      if (value.trim() === '') {
        expect(run.stderr).toBe(''); // unset
        return;
      }
      const lines = warningLines(run.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^tokenmeter: warning: TOKENMETER_EXIT_FLUSH_TIMEOUT_MILLIS=".{1,40}" is not a whole number of milliseconds from 0 to 600000; using the default, 2000 ms\.$/);
    },
  );
});
