import { context, diag, ROOT_CONTEXT, type Span } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { ATTR_RESERVATION_ID, ATTR_RESERVATION_REFUSED, ATTR_RESERVATION_UNAVAILABLE, ATTR_RESERVATION_WARNED, DEFAULT_HTTP_PORT } from '../contract/names.js';
import { EstimateUnavailableError, loadEstimator } from '../usage/index.js';
import type { CallAdapter, GenAiCall } from './call.js';
import { UsageLimitError, type UsageLimitName } from './usage-limit-error.js';
import { warnOnce } from './warn.js';

/*
 * Admission control, app side (issue 16). With `enforce: 'block'` an LLM call first asks the exporter for a
 * reservation (POST /api/v1/reservations on the operations port) holding its estimate against the user's remaining
 * allowance; a refused call rejects with UsageLimitError and is never sent. The decision is the exporter's, so every
 * replica of the app shares it. Never a hang (a timeout, default 250 ms), never an unhandled rejection, and the SDK
 * method still returns the SDK's own promise (patch.ts holds the request back inside the SDK, see `gateRequest`).
 */

export type EnforceMode = 'block' | 'warn' | 'off';
export type FailMode = 'open' | 'closed';

export interface EnforcementOptions {
  /** Default for calls whose `withUser` does not say (env TOKENMETER_ENFORCE; default `off`). */
  enforce?: EnforceMode;
  /** The exporter's operations URL (env TOKENMETER_URL; default http://127.0.0.1:9464). */
  url?: string;
  /** `auth.api_token` of the exporter (env TOKENMETER_API_TOKEN). */
  apiToken?: string;
  /** How long a call waits for the exporter's answer (env TOKENMETER_ENFORCE_TIMEOUT_MS; default 250). */
  timeoutMillis?: number;
  /** What happens when the exporter does not answer in time: `open` sends the call (default), `closed` refuses it. */
  fail?: FailMode;
  /**
   * Ask over one long-lived connection (the reservations stream) instead of an HTTP request per reservation (env
   * TOKENMETER_ENFORCE_STREAM; default true). Off: every reservation goes as an HTTP request (e.g. behind a proxy
   * that does not pass `Upgrade`).
   */
  stream?: boolean;
}

interface Settings {
  enforce: EnforceMode;
  url: URL;
  apiToken: string | undefined;
  timeoutMillis: number;
  fail: FailMode;
  stream: boolean;
}

export const DEFAULT_ENFORCE_TIMEOUT_MILLIS = 250;
const MODES: readonly string[] = ['block', 'warn', 'off'];

let overrides: EnforcementOptions = {};
let cached: Settings | undefined;

/** Sets enforcement options in code (they win over the environment). Call with `{}` to go back to the environment. */
export function configureEnforcement(options: EnforcementOptions): void {
  overrides = { ...options };
  cached = undefined;
  closeReservationStream();
}

function envMode(raw: string | undefined): EnforceMode | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const v = raw.trim().toLowerCase();
  if (MODES.includes(v)) return v as EnforceMode;
  warnOnce('enforce-env', `TOKENMETER_ENFORCE=${JSON.stringify(raw.slice(0, 40))} is not one of block, warn, off: usage limits are not enforced (off).`);
  return undefined;
}

/** The effective settings (code > environment > defaults), read once. */
export function enforcementSettings(envArg?: NodeJS.ProcessEnv): Settings {
  // Asked on every call: the cached settings come back without reading process.env.
  if (cached !== undefined) return cached;
  const env = envArg ?? process.env;
  const o = overrides;
  let enforce: EnforceMode = o.enforce ?? envMode(env.TOKENMETER_ENFORCE) ?? 'off';
  if (!MODES.includes(enforce)) enforce = 'off';
  let url: URL;
  const rawUrl = o.url ?? env.TOKENMETER_URL ?? `http://127.0.0.1:${DEFAULT_HTTP_PORT}`;
  try {
    url = new URL('/api/v1/reservations', rawUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
  } catch {
    warnOnce('enforce-url', `the tokenmeter URL ${JSON.stringify(String(rawUrl).slice(0, 100))} is not an http(s) URL: usage limits cannot be checked (calls go through).`);
    url = new URL(`http://127.0.0.1:${DEFAULT_HTTP_PORT}/api/v1/reservations`);
  }
  let timeoutMillis = o.timeoutMillis ?? Number(env.TOKENMETER_ENFORCE_TIMEOUT_MS ?? DEFAULT_ENFORCE_TIMEOUT_MILLIS);
  if (!(Number.isFinite(timeoutMillis) && timeoutMillis > 0 && timeoutMillis <= 60_000)) timeoutMillis = DEFAULT_ENFORCE_TIMEOUT_MILLIS;
  const rawFail = (o.fail ?? env.TOKENMETER_ENFORCE_FAIL ?? 'open').toString().trim().toLowerCase();
  const fail: FailMode = rawFail === 'closed' ? 'closed' : 'open';
  const rawStream = (o.stream ?? env.TOKENMETER_ENFORCE_STREAM ?? 'true').toString().trim().toLowerCase();
  const stream = !['false', '0', 'no', 'off'].includes(rawStream);
  cached = { enforce, url, apiToken: o.apiToken ?? env.TOKENMETER_API_TOKEN, timeoutMillis, fail, stream };
  return cached;
}

// One keep-alive pool per process: a reservation is a small request on a warm loopback connection.
const httpAgent = new Agent({ keepAlive: true, maxSockets: 64 });
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 64 });

/** The exporter's answer (src/exporter/reservations.ts). */
export type ReservationAnswer =
  | { granted: true; id: string; warned?: { limit: UsageLimitName } }
  | { granted: false; user: string; plan: string; limit: UsageLimitName; used: number | string; limit_value: number | string; retry_after: string };

/** One HTTP request to the exporter's API, bounded by `timeoutMillis`. Rejects on any failure; never hangs. */
export function exporterRequest(
  method: 'GET' | 'POST',
  url: URL,
  body: string | undefined,
  s: Pick<Settings, 'apiToken' | 'timeoutMillis'>,
  maxAnswerBytes = 65_536,
): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err: Error | undefined, value?: { status: number; json: unknown }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value!);
    };
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    if (s.apiToken !== undefined) headers.authorization = `Bearer ${s.apiToken}`;
    const https = url.protocol === 'https:';
    // No span for tokenmeter's own request (an app's http instrumentation would make one per reservation).
    const req = context.with(suppressTracing(context.active()), () => (https ? httpsRequest : httpRequest)(url, { method, headers, agent: https ? httpsAgent : httpAgent }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxAnswerBytes) {
          req.destroy();
          finish(new Error(`the exporter answered more than ${Math.round(maxAnswerBytes / 1024)} KiB`));
        } else chunks.push(c);
      });
      res.on('error', (e) => finish(e));
      res.on('end', () => {
        try {
          finish(undefined, { status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        } catch {
          finish(new Error(`the exporter answered HTTP ${res.statusCode} without JSON`));
        }
      });
    }));
    const timer = setTimeout(() => {
      finish(new Error(`no answer within ${s.timeoutMillis} ms`));
      req.destroy();
    }, s.timeoutMillis);
    req.on('error', (e) => finish(e));
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Batching

/*
 * Every call in `block`/`warn` mode needs the exporter's answer before it is sent. One HTTP request per call costs
 * more CPU on both sides (80-280 µs in the exporter alone, BENCHMARKS.md) than the decision (15-30 µs), so the
 * reservations asked for in the same tick go out as one request (a JSON array; the exporter answers an array in
 * the same order). Nothing waits on a timer: the queue is flushed by `process.nextTick`, i.e. once the callback that
 * started the calls and its promise chains have run (not `setImmediate`, which would also wait for every other I/O
 * callback of the loop's turn: 6-7 ms a call in the bench's busy app), at once when it holds MAX_BATCH_ITEMS, and
 * when a request in flight returns. Each call keeps its own timeout, so a batch that is slow fails each of its calls
 * open or closed as if it were alone.
 */

/**
 * Most reservations in one request (the exporter takes up to 256, MAX_RESERVATION_BATCH_ITEMS). A burst of calls
 * goes out in requests of 16 as the calls are prepared, so the exporter decides the first ones while the app is
 * still preparing the rest (100 calls at once, loaded machine: 41 ms → 21 ms median added going from 64 to 16), at
 * about 5 µs of exporter CPU per reservation for the request itself (about 80 µs a request).
 */
export const MAX_BATCH_ITEMS = 16;
/** Requests in flight at once: more waiting calls go out together in the next one. */
const MAX_IN_FLIGHT = 4;

interface Waiting {
  body: Record<string, unknown>;
  done: boolean;
  timer: NodeJS.Timeout;
  /** Its id on the reservations stream, when it went that way, and when it was written there. */
  streamId?: number;
  sentAt?: number;
  resolve(value: { status: number; json: unknown }): void;
  reject(err: Error): void;
}

let queue: Waiting[] = [];
let queueSettings: Settings | undefined;
let flushScheduled = false;
let inFlight = 0;

/** Asks the exporter for one reservation, in a batch with the others asked for in the same turn. */
export function requestReservation(body: Record<string, unknown>, s: Settings): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const w: Waiting = {
      body,
      done: false,
      resolve,
      reject,
      timer: setTimeout(() => {
        if (w.done) return;
        w.done = true;
        if (w.streamId !== undefined) streamTimedOut(w);
        reject(new Error(`no answer within ${s.timeoutMillis} ms`));
      }, s.timeoutMillis),
    };
    const st = s.stream ? openStream(s) : undefined;
    if (st?.socket !== undefined) {
      sendOnStream(st, w);
      return;
    }
    // The stream is being opened: sent on it once open, or in the HTTP form if it cannot be.
    if (st?.connecting === true) {
      st.waiting.push(w);
      return;
    }
    enqueueHttp(w, s);
  });
}

/** Into the HTTP form's queue (batched per tick). */
function enqueueHttp(w: Waiting, s: Settings): void {
  if (queueSettings !== undefined && queueSettings !== s) sendQueue();
  queue.push(w);
  queueSettings = s;
  if (queue.length >= MAX_BATCH_ITEMS) sendQueue();
  else if (!flushScheduled) {
    flushScheduled = true;
    process.nextTick(flush);
  }
}

function flush(): void {
  flushScheduled = false;
  if (inFlight < MAX_IN_FLIGHT) sendQueue();
}

function settle(w: Waiting, value: { status: number; json: unknown } | Error): void {
  if (w.done) return;
  w.done = true;
  clearTimeout(w.timer);
  if (value instanceof Error) w.reject(value);
  else w.resolve(value);
}

function sendQueue(): void {
  const s = queueSettings;
  // Calls that timed out while waiting are not asked for any more.
  const batch: Waiting[] = [];
  let i = 0;
  for (; i < queue.length && batch.length < MAX_BATCH_ITEMS; i++) if (!queue[i]!.done) batch.push(queue[i]!);
  queue = i < queue.length ? queue.slice(i) : [];
  if (queue.length === 0) queueSettings = undefined;
  else if (!flushScheduled) {
    flushScheduled = true;
    process.nextTick(flush);
  }
  if (s === undefined || batch.length === 0) return;
  // An exporter that predates batches (it answered one with 400): each call in the single form, as before.
  if (batch.length > 1 && singleFormOnly.has(s.url.href)) {
    for (const w of batch) sendBatch([w], s);
    return;
  }
  sendBatch(batch, s);
}

/** Exporters (by reservations URL) that answered a batch with 400: they only know the single form. */
const singleFormOnly = new Set<string>();

function sendBatch(batch: Waiting[], s: Settings): void {
  // One call alone goes in the single form (also understood by exporters that predate batches).
  const single = batch.length === 1;
  const body = JSON.stringify(single ? batch[0]!.body : batch.map((w) => w.body));
  inFlight++;
  exporterRequest('POST', s.url, body, s, single ? 65_536 : 4096 * batch.length + 65_536)
    .then(
      (res) => {
        if (single) return settle(batch[0]!, res);
        const items = res.json;
        // Refused as a whole with 400: an array is not a reservation to this exporter (tokenmeter's own batches
        // are well-formed). Its calls are asked for again one by one, within their own timeouts.
        if (res.status === 400 && !Array.isArray(items)) {
          singleFormOnly.add(s.url.href);
          for (const w of batch) if (!w.done) sendBatch([w], s);
          return;
        }
        if (res.status !== 200 || !Array.isArray(items) || items.length !== batch.length) {
          const msg = (items as { error?: unknown } | null)?.error;
          const err = new Error(
            res.status !== 200 ? `HTTP ${res.status}${typeof msg === 'string' ? `: ${msg.slice(0, 160)}` : ''}` : `the exporter answered a batch of ${batch.length} without ${batch.length} answers`,
          );
          for (const w of batch) settle(w, err);
          return;
        }
        batch.forEach((w, i) => {
          const item = items[i] as { status?: unknown } | null;
          // An item the exporter could not decide carries its own status (400, 503); an answer is a 200.
          const status = item !== null && typeof item === 'object' && 'error' in item && typeof item.status === 'number' ? item.status : 200;
          settle(w, { status, json: item });
        });
      },
      (err: unknown) => {
        for (const w of batch) settle(w, err instanceof Error ? err : new Error(String(err)));
      },
    )
    .finally(() => {
      inFlight--;
      if (queue.length > 0 && !flushScheduled) {
        flushScheduled = true;
        process.nextTick(flush);
      }
    });
}

// ---------------------------------------------------------------------------------------------------------------
// The reservations stream

/*
 * One long-lived connection per process to the exporter (`GET /api/v1/reservations/stream`, `Upgrade:
 * tokenmeter-reservations/1`; src/exporter/reservation-stream.ts): a reservation is one JSON line out and one back,
 * matched by id. An HTTP request per reservation cost the app 120-280 µs of CPU, a line 20-45 µs (BENCHMARKS.md,
 * issue 16, session 5). The reservations of one tick go out in one write (the socket is corked until
 * `process.nextTick`). The stream is opened on the first reservation; reservations asked for while it opens wait
 * for it. If it cannot be opened (within the call timeout), after it closed (reconnected with backoff) and with an
 * exporter that does not offer it (404: asked again after STREAM_UNSUPPORTED_RETRY_MILLIS), reservations take the
 * HTTP form above. Each call keeps its own timeout and fail mode; a call on a stream that closes under it fails like
 * a call whose request failed (not asked again: the exporter may have granted it).
 */
export const RESERVATION_STREAM_PROTOCOL = 'tokenmeter-reservations/1';
const STREAM_BACKOFF_MIN_MILLIS = 100;
const STREAM_BACKOFF_MAX_MILLIS = 30_000;
const STREAM_UNSUPPORTED_RETRY_MILLIS = 5 * 60_000;
/** Longest answer line accepted from the exporter (an answer is a few hundred bytes). */
const MAX_STREAM_ANSWER_BYTES = 64 * 1024;

interface Stream {
  key: string;
  socket: Socket | undefined;
  connecting: boolean;
  /** Not before this (Date.now()) is another connection tried. */
  retryAt: number;
  backoffMillis: number;
  pending: Map<number, Waiting>;
  /** Asked for while the stream was being opened. */
  waiting: Waiting[];
  /** The settings it was opened with (the HTTP form for `waiting` if it cannot be). */
  settings: Settings;
  nextId: number;
  corked: boolean;
  buf: string;
  lastDataAt: number;
}

let stream: Stream | undefined;

/** The stream for these settings (opened when it is not and a new attempt is due): open, opening, or neither. */
function openStream(s: Settings): Stream {
  const key = `${s.url.href}\n${s.apiToken ?? ''}`;
  if (stream !== undefined && stream.key !== key) {
    stream.socket?.destroy();
    stream = undefined;
  }
  stream ??= { key, socket: undefined, connecting: false, retryAt: 0, backoffMillis: STREAM_BACKOFF_MIN_MILLIS, pending: new Map(), waiting: [], settings: s, nextId: 1, corked: false, buf: '', lastDataAt: 0 };
  const st = stream;
  st.settings = s;
  if (st.socket === undefined && !st.connecting && Date.now() >= st.retryAt) connectStream(st, s);
  return st;
}

function streamFailed(st: Stream, retryAfterMillis?: number): void {
  st.connecting = false;
  // What waited for the stream goes in the HTTP form, within each call's own timeout.
  for (const w of st.waiting.splice(0)) if (!w.done) enqueueHttp(w, st.settings);
  st.retryAt = Date.now() + (retryAfterMillis ?? st.backoffMillis);
  if (retryAfterMillis === undefined) st.backoffMillis = Math.min(STREAM_BACKOFF_MAX_MILLIS, st.backoffMillis * 2);
}

function connectStream(st: Stream, s: Settings): void {
  st.connecting = true;
  const url = new URL(`${s.url.pathname}/stream`, s.url);
  const headers: Record<string, string> = { connection: 'Upgrade', upgrade: RESERVATION_STREAM_PROTOCOL };
  if (s.apiToken !== undefined) headers.authorization = `Bearer ${s.apiToken}`;
  const https = url.protocol === 'https:';
  let settled = false;
  const give = (f: () => void) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    f();
  };
  // Opened outside the calling request's context (it outlives the call) and without a span of its own.
  const req = context.with(suppressTracing(ROOT_CONTEXT), () => (https ? httpsRequest : httpRequest)(url, { method: 'GET', headers, agent: false }));
  // As long as a call waits for its answer: an exporter that does not take the stream in that time gets the HTTP form.
  const timer = setTimeout(() => give(() => (req.destroy(), streamFailed(st))), s.timeoutMillis);
  timer.unref();
  // Opening it does not keep the app running either (a call waiting for it has its own timer).
  req.on('socket', (socket: Socket) => socket.unref());
  req.on('upgrade', (_res: IncomingMessage, socket: Socket, head: Buffer) =>
    give(() => {
      if (stream !== st) {
        socket.destroy();
        return;
      }
      st.connecting = false;
      st.socket = socket;
      st.backoffMillis = STREAM_BACKOFF_MIN_MILLIS;
      st.buf = '';
      socket.setNoDelay(true);
      // An idle stream does not keep the app running (calls waiting for an answer have their own timers).
      socket.unref();
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => streamData(st, socket, chunk));
      socket.on('error', (err) => diag.debug('tokenmeter: reservations stream failed', err));
      socket.on('close', () => streamClosed(st, socket));
      if (head.length > 0) streamData(st, socket, head.toString('utf8'));
      for (const w of st.waiting.splice(0)) if (!w.done) sendOnStream(st, w);
    }),
  );
  req.on('response', (res: IncomingMessage) =>
    give(() => {
      res.resume();
      const status = res.statusCode ?? 0;
      // An exporter without the stream (older, or admission control off): the HTTP form, asked again later.
      if (status === 404 || status === 400 || status === 405 || status === 426 || status === 501) streamFailed(st, STREAM_UNSUPPORTED_RETRY_MILLIS);
      else streamFailed(st);
    }),
  );
  req.on('error', () => give(() => streamFailed(st)));
  req.on('close', () => give(() => streamFailed(st)));
  req.end();
}

function sendOnStream(st: Stream, w: Waiting): void {
  const socket = st.socket!;
  const id = st.nextId++;
  w.streamId = id;
  w.sentAt = Date.now();
  st.pending.set(id, w);
  if (!st.corked) {
    st.corked = true;
    socket.cork();
    process.nextTick(() => {
      st.corked = false;
      socket.uncork();
    });
  }
  socket.write(`${JSON.stringify({ id, reservation: w.body })}\n`);
}

function streamData(st: Stream, socket: Socket, chunk: string): void {
  st.lastDataAt = Date.now();
  let buf = st.buf + chunk;
  let nl: number;
  while ((nl = buf.indexOf('\n')) !== -1) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    streamLine(st, line);
  }
  if (buf.length > MAX_STREAM_ANSWER_BYTES) {
    // Not an exporter's answer: the stream is dropped, its calls fail as unanswered.
    socket.destroy();
    buf = '';
  }
  st.buf = buf;
}

function streamLine(st: Stream, line: string): void {
  let m: { id?: unknown; answer?: unknown; error?: unknown; status?: unknown };
  try {
    m = JSON.parse(line) as typeof m;
  } catch {
    diag.debug('tokenmeter: the reservations stream sent a line that is not JSON');
    return;
  }
  if (m === null || typeof m !== 'object') return;
  if (m.id === null && typeof m.error === 'string') {
    // The exporter closes the stream and says why (it should not happen with this client).
    diag.warn(`tokenmeter: the exporter closed the reservations stream: ${m.error.slice(0, 200)}`);
    return;
  }
  if (typeof m.id !== 'number') return;
  const w = st.pending.get(m.id);
  if (w === undefined) return;
  st.pending.delete(m.id);
  if (m.answer !== undefined) settle(w, { status: 200, json: m.answer });
  else settle(w, { status: typeof m.status === 'number' ? m.status : 502, json: { error: typeof m.error === 'string' ? m.error : 'no answer' } });
}

function streamClosed(st: Stream, socket: Socket): void {
  if (st.socket === socket) {
    st.socket = undefined;
    st.corked = false;
    // Reconnected on a later reservation; the first after a close waits a little (an exporter restarting).
    streamFailed(st);
  }
  const err = new Error('the reservations stream closed before the answer');
  for (const w of st.pending.values()) settle(w, err);
  st.pending.clear();
}

/** A call on the stream got no answer in time: when nothing at all came back since it was sent, the stream is dropped. */
function streamTimedOut(w: Waiting): void {
  const st = stream;
  if (st === undefined || w.streamId === undefined || st.pending.get(w.streamId) !== w) return;
  st.pending.delete(w.streamId);
  if (st.socket !== undefined && st.lastDataAt < (w.sentAt ?? 0)) st.socket.destroy();
}

/** Closes the stream (instrumentation disabled, settings changed). */
export function closeReservationStream(): void {
  const st = stream;
  stream = undefined;
  if (st === undefined) return;
  st.socket?.destroy();
  for (const w of st.waiting.splice(0)) if (!w.done) enqueueHttp(w, st.settings);
}

/** Whether reservations go over the stream now (tests). */
export function reservationStreamOpen(): boolean {
  return stream?.socket !== undefined;
}

const LIMITS: readonly string[] = ['requests', 'tokens', 'cost_usd'];
const figure = (v: unknown) => (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && /^\d{1,30}(\.\d{1,30})?$/.test(v));

/** A refusal only counts with the shape the exporter sends (a broken or hostile answer is "no answer"). */
function isRefusal(a: Record<string, unknown>): boolean {
  return LIMITS.includes(a.limit as string) && typeof a.plan === 'string' && a.plan.length <= 64 && figure(a.used) && figure(a.limit_value);
}

/** A whole, non-negative token count, or undefined (what a reservation request accepts). */
export function tokenCount(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 100_000_000 ? v : undefined;
}

/** The request's max output tokens, if the caller set one (the adapter's reading, else the OpenAI/Anthropic names). */
function maxOutputTokens(call: GenAiCall, adapter: CallAdapter): number | undefined {
  if (adapter.maxOutputTokens !== undefined) return tokenCount(adapter.maxOutputTokens(call));
  for (const k of ['max_completion_tokens', 'max_tokens', 'max_output_tokens']) {
    const v = tokenCount(call.params[k]);
    if (v !== undefined) return v;
  }
  return undefined;
}

/**
 * The request's input tokens, counted with the tokenizer (js-tiktoken). Without it: the UTF-8 size of the
 * request's JSON, an upper bound (no tokenizer makes a token of less than one byte) so a hold is never too small.
 */
async function inputTokens(call: GenAiCall, adapter: CallAdapter): Promise<{ tokens: number; counted: 'tokenizer' | 'bytes' }> {
  try {
    await loadEstimator(call.requestModel);
    return { tokens: adapter.estimateInput(call), counted: 'tokenizer' };
  } catch (err) {
    if (!(err instanceof EstimateUnavailableError)) diag.debug('tokenmeter: input token count for a reservation failed', err);
    let bytes: number;
    try {
      bytes = Buffer.byteLength(JSON.stringify(call.params) ?? '');
    } catch {
      bytes = 0;
    }
    return { tokens: bytes, counted: 'bytes' };
  }
}

function failOpenWarning(s: Settings, err: unknown): void {
  warnOnce(
    'reservations-unavailable',
    `usage limits could not be checked: the tokenmeter exporter at ${s.url.origin} did not answer a reservation within ${s.timeoutMillis} ms ` +
      `(${err instanceof Error ? err.message.slice(0, 120) : String(err)}). Calls go through unchecked (fail: 'open'; spans carry ` +
      `${ATTR_RESERVATION_UNAVAILABLE}=true) until it answers. Set TOKENMETER_URL to its operations port, or TOKENMETER_ENFORCE_FAIL=closed to refuse instead.`,
  );
}

/**
 * The admission check of one call, or undefined when it is not enforced (mode off, no user). The promise resolves
 * when the call may be sent and rejects with UsageLimitError when it must not; it never rejects otherwise.
 * `billed`: the span the exporter bills for this call when it is not the call's own (the AI SDK's own telemetry
 * span): the reservation is keyed by it and marked on it, so that span's commit settles the hold.
 */
export function admissionGate(call: GenAiCall, adapter: CallAdapter, billed?: Span): Promise<void> | undefined {
  const s = enforcementSettings();
  const mode = call.enforce ?? s.enforce;
  if (mode === 'off') return undefined;
  const user = call.userId;
  if (user === undefined) {
    warnOnce('enforce-no-user', `usage limits are enforced (${mode}) but an LLM call has no user: wrap it in withUser({ id, plan }) to check it; it went through unchecked.`);
    return undefined;
  }
  return checkCall(call, adapter, s, mode, user, billed ?? call.span);
}

async function checkCall(call: GenAiCall, adapter: CallAdapter, s: Settings, mode: 'block' | 'warn', user: string, span: Span): Promise<void> {
  let answer: ReservationAnswer;
  try {
    const input = await inputTokens(call, adapter);
    const ctx = span.spanContext();
    const body: Record<string, unknown> = {
      user,
      provider: call.server.provider,
      model: call.requestModel,
      input_tokens: input.tokens,
      enforce: mode,
    };
    if (call.plan !== undefined) body.plan = call.plan;
    const max = maxOutputTokens(call, adapter);
    if (max !== undefined) body.max_output_tokens = max;
    // The span's identity: the exporter settles the hold when the ledger commits this span.
    if (/^[0-9a-f]{32}$/.test(ctx.traceId) && /^[0-9a-f]{16}$/.test(ctx.spanId) && !/^0+$/.test(ctx.traceId)) {
      body.trace_id = ctx.traceId;
      body.span_id = ctx.spanId;
    }
    const res = await requestReservation(body, s);
    if (res.status !== 200 || typeof res.json !== 'object' || res.json === null || typeof (res.json as { granted?: unknown }).granted !== 'boolean') {
      const msg = (res.json as { error?: unknown } | null)?.error;
      throw new Error(`HTTP ${res.status}${typeof msg === 'string' ? `: ${msg.slice(0, 160)}` : ''}`);
    }
    answer = res.json as ReservationAnswer;
    if (!answer.granted && !isRefusal(answer as unknown as Record<string, unknown>)) throw new Error('the exporter answered a refusal without a known limit, plan and figures');
  } catch (err) {
    if (s.fail === 'closed') {
      span.setAttribute(ATTR_RESERVATION_REFUSED, 'unavailable');
      throw new UsageLimitError({ user, plan: call.plan ?? 'unknown', limit: 'unavailable', used: 0, limitValue: null, retryAfter: new Date(Date.now() + 5000) });
    }
    span.setAttribute(ATTR_RESERVATION_UNAVAILABLE, true);
    failOpenWarning(s, err);
    return;
  }
  if (answer.granted) {
    if (typeof answer.id === 'string') span.setAttribute(ATTR_RESERVATION_ID, answer.id.slice(0, 64));
    if (answer.warned !== undefined) span.setAttribute(ATTR_RESERVATION_WARNED, String(answer.warned.limit).slice(0, 16));
    return;
  }
  span.setAttribute(ATTR_RESERVATION_REFUSED, String(answer.limit).slice(0, 16));
  const retryAfter = new Date(answer.retry_after);
  throw new UsageLimitError({
    user,
    plan: answer.plan,
    limit: answer.limit,
    used: answer.used,
    limitValue: answer.limit_value,
    retryAfter: Number.isNaN(retryAfter.getTime()) ? new Date(Date.now() + 60_000) : retryAfter,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Holding the request back inside the SDK

/*
 * Stainless SDKs (OpenAI, Anthropic) build every call as `client.request(optionsPromise)` → `makeRequest`, whose
 * first step awaits the options. Passing `gate.then(() => options)` instead holds the HTTP request until the gate
 * opens, and a refusal rejects the SDK's own APIPromise with UsageLimitError before anything is sent (no retry: the
 * SDK's retry loop only wraps the fetch). The gate is handed over synchronously: `create()` calls `request` within
 * the same call stack (patch.ts sets `pending` around it).
 */
let pending: Promise<void> | undefined;
const hooked = new WeakSet<object>();
const ORIGINAL_REQUEST = Symbol('tokenmeter.originalRequest');

/** Arms the gate for the SDK call about to be made on `resource`. Returns false when the SDK shape is unknown. */
export function armGate(resource: any, gate: Promise<void>): boolean {
  const client = resource?._client;
  if (client === null || typeof client !== 'object') return false;
  let proto: any = client;
  while (proto !== null && !Object.prototype.hasOwnProperty.call(proto, 'request')) proto = Object.getPrototypeOf(proto);
  if (proto === null || typeof proto.request !== 'function') return false;
  if (!hooked.has(proto)) {
    const original = proto.request as (...args: unknown[]) => unknown;
    if ((original as any)[ORIGINAL_REQUEST] === undefined) {
      const wrapped = function tokenmeterGatedRequest(this: unknown, options: unknown, ...rest: unknown[]): unknown {
        const g = pending;
        if (g === undefined) return original.call(this, options, ...rest);
        pending = undefined;
        return original.call(this, g.then(() => options), ...rest);
      };
      (wrapped as any)[ORIGINAL_REQUEST] = original;
      proto.request = wrapped;
      restoreList.push(() => {
        if (proto.request === wrapped) proto.request = original;
        hooked.delete(proto);
      });
    }
    hooked.add(proto);
  }
  pending = gate;
  return true;
}

/** After the SDK call returned: true when the SDK took the gate (the request waits for it). */
export function gateTaken(): boolean {
  const taken = pending === undefined;
  pending = undefined;
  return taken;
}

const restoreList: (() => void)[] = [];

/** Removes the request hooks (instrumentation disabled). */
export function unhookGates(): void {
  closeReservationStream();
  for (const r of restoreList.splice(0)) r();
}
