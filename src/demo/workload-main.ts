/**
 * The demo's simulated app, run as its own process the way a user runs theirs:
 *
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
 *     node --import tokenmeter/register dist/demo/workload-main.js --provider-url http://127.0.0.1:8787 --seed 1
 *
 * It knows nothing about tokenmeter's numbers: it makes SDK calls, and the instrumentation reports them.
 * A "stop" message on the IPC channel (the demo), the channel closing, or SIGINT / SIGTERM stop new calls; the calls
 * in flight finish and the spans are flushed before it exits.
 */
import { parseArgs } from 'node:util';
import { createWorkload } from './workload.js';
import { runWorkload, type WithUser } from './workload-runner.js';

export const WORKLOAD_DEFAULTS = { users: 12, rate: 4, seed: 1, concurrency: 8 } as const;

function positiveNumber(name: string, raw: string | undefined, fallback: number, integer = false): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got '${raw}'`);
  }
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'provider-url': { type: 'string' },
      users: { type: 'string' },
      rate: { type: 'string' },
      seed: { type: 'string' },
      duration: { type: 'string' },
      concurrency: { type: 'string' },
    },
  });
  const providerUrl = values['provider-url'];
  if (!providerUrl) throw new Error('--provider-url is required');
  const seed = values.seed === undefined ? WORKLOAD_DEFAULTS.seed : Number(values.seed);
  if (!Number.isSafeInteger(seed)) throw new Error(`--seed must be an integer, got '${values.seed}'`);

  // The SDKs are loaded after the instrumentation (--import tokenmeter/register) so they are patched; the register
  // module imported here is the same instance --import loaded (same file), so its shutdown flushes that SDK.
  const [{ default: OpenAI }, { default: Anthropic }, instrumentation, register] = await Promise.all([
    import('openai'),
    import('@anthropic-ai/sdk'),
    import('../instrumentation/index.js'),
    import('../instrumentation/register.js'),
  ]);
  const withUser = instrumentation.withUser as WithUser;
  const base = providerUrl.replace(/\/+$/, '');
  // maxRetries 0: a retried request would be a second call; the demo wants one call per planned call.
  const clients = {
    openai: new OpenAI({ apiKey: 'demo-key', baseURL: `${base}/v1`, maxRetries: 0 }),
    anthropic: new Anthropic({ apiKey: 'demo-key', baseURL: base, maxRetries: 0 }),
  };

  const stop = new AbortController();
  const onStop = () => stop.abort();
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  if (process.send) {
    // Started by the demo: it says when to stop; if the demo dies, the channel closes and the app stops too.
    process.on('message', (m) => m === 'stop' && onStop());
    process.on('disconnect', onStop);
  }

  let lastError = '';
  const result = await runWorkload({
    workload: createWorkload({ seed, users: positiveNumber('users', values.users, WORKLOAD_DEFAULTS.users, true) }),
    clients,
    withUser,
    rate: positiveNumber('rate', values.rate, WORKLOAD_DEFAULTS.rate),
    durationSeconds: values.duration === undefined ? undefined : positiveNumber('duration', values.duration, 0),
    concurrency: positiveNumber('concurrency', values.concurrency, WORKLOAD_DEFAULTS.concurrency, true),
    signal: stop.signal,
    onError: (err, call) => {
      const msg = err instanceof Error ? err.message : String(err);
      if (msg !== lastError) process.stderr.write(`workload: call ${call.seq} (${call.provider} ${call.model}) failed: ${msg}\n`);
      lastError = msg;
    },
  });
  // Deliver every span before exiting: the exporter acknowledges only what it has committed.
  await register.shutdownTokenmeter();
  process.stdout.write(`${JSON.stringify({ event: 'workload-done', ...result })}\n`);
  if (process.connected) process.disconnect();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`workload: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
