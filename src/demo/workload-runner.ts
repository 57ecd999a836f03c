/**
 * Drives the demo workload through the real provider SDKs: each planned call is made inside `withUser`, the way an
 * app attributes its calls, so that tokenmeter's instrumentation (loaded with `--import tokenmeter/register`)
 * turns it into a span. Calls are paced at `rate` per second; the i-th call starts at i / rate seconds.
 */
import type OpenAI from 'openai';
import type Anthropic from '@anthropic-ai/sdk';
import type { PlannedCall, Workload } from './workload.js';

export interface WorkloadClients {
  openai: OpenAI;
  anthropic: Anthropic;
}

export type WithUser = <T>(user: { id?: string; plan?: string; feature?: string }, fn: () => T) => T;

export interface WorkloadRunOptions {
  workload: Workload;
  clients: WorkloadClients;
  withUser: WithUser;
  /** Calls per second across all users. */
  rate: number;
  /** Stop starting new calls after this many seconds; undefined = until `signal` aborts. */
  durationSeconds?: number;
  /** Most calls in flight at once. */
  concurrency: number;
  signal: AbortSignal;
  onError?: (err: unknown, call: PlannedCall) => void;
}

export interface WorkloadRunResult {
  started: number;
  failed: number;
}

/** Makes one call through the SDK, consuming a stream to its end as an app would. */
export async function makeCall(call: PlannedCall, clients: WorkloadClients): Promise<void> {
  if (call.provider === 'openai') {
    const params = {
      model: call.model,
      messages: [
        { role: 'system' as const, content: call.system },
        { role: 'user' as const, content: call.prompt },
      ],
      max_completion_tokens: call.maxTokens,
      user: call.user.id,
      ...(call.reasoningEffort ? { reasoning_effort: call.reasoningEffort } : {}),
    };
    if (call.stream) {
      const stream = await clients.openai.chat.completions.create({ ...params, stream: true });
      for await (const _chunk of stream) {
        // An app would render the text; the demo only needs the stream read to its end.
      }
    } else {
      await clients.openai.chat.completions.create(params);
    }
    return;
  }
  const params = {
    model: call.model,
    max_tokens: call.maxTokens,
    system: call.cacheSystem
      ? [{ type: 'text' as const, text: call.system, cache_control: { type: 'ephemeral' as const } }]
      : call.system,
    messages: [{ role: 'user' as const, content: call.prompt }],
    metadata: { user_id: call.user.id },
  };
  if (call.stream) {
    const stream = await clients.anthropic.messages.create({ ...params, stream: true });
    for await (const _event of stream) {
      // Read to the end, like an app rendering the text.
    }
  } else {
    await clients.anthropic.messages.create(params);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Runs the workload until the duration is over or the signal aborts, then waits for the calls in flight. */
export async function runWorkload(o: WorkloadRunOptions): Promise<WorkloadRunResult> {
  if (!(o.rate > 0)) throw new Error('rate must be a positive number of calls per second');
  const startMillis = Date.now();
  const endMillis = o.durationSeconds === undefined ? Infinity : startMillis + o.durationSeconds * 1000;
  const inFlight = new Set<Promise<void>>();
  let started = 0;
  let failed = 0;
  for (let i = 0; !o.signal.aborted; i++) {
    const due = startMillis + (i * 1000) / o.rate;
    if (due >= endMillis) break;
    await sleep(due - Date.now(), o.signal);
    if (o.signal.aborted) break;
    while (inFlight.size >= o.concurrency) await Promise.race(inFlight);
    const call = o.workload.next();
    started++;
    const p: Promise<void> = o
      .withUser({ id: call.user.id, plan: call.user.plan, feature: call.feature }, () => makeCall(call, o.clients))
      .catch((err: unknown) => {
        failed++;
        o.onError?.(err, call);
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  return { started, failed };
}
