import { context, diag, SpanKind, SpanStatusCode, type Attributes, type Histogram, type Span, type Tracer } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_PLAN,
  ATTR_USER_ID,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_TIER,
  ATTR_STREAM_END,
  ATTR_TOOL_CALLS,
  FEE_KINDS,
  type FeeKind,
  ATTR_USAGE_ESTIMATED,
  ATTR_USAGE_INCOMPLETE,
  GENAI,
} from '../contract/names.js';
import { EstimateUnavailableError, estimatorReady, loadEstimator, usageToGenAiAttributes, type NormalizedUsage, type Usage } from '../usage/index.js';
import { countInstrumentedCall, watchSdkRequests } from './bundling.js';
import { activeMetricProducers, type CallMetrics } from './genai-metrics.js';
import type { ResolvedOptions } from './options.js';
import { GENERIC_OPENAI_COMPATIBLE, type ServerInfo } from './provider.js';
import { currentAttribution, currentScope, type Scope, type UsageCollector } from './scope.js';
import { addSpanAttributes } from './span-attributes.js';
import { warnOnce } from './warn.js';

/** The tracer, instruments and options the patched SDK methods report to (set by the active instrumentation). */
export interface Telemetry {
  tracer: Tracer;
  tokenUsage: Histogram;
  operationDuration: Histogram;
  timeToFirstChunk: Histogram;
  options: ResolvedOptions;
}

let active: Telemetry | undefined;

export function setActiveTelemetry(t: Telemetry | undefined): void {
  active = t;
  watchSdkRequests(t !== undefined);
}

export function activeTelemetry(): Telemetry | undefined {
  return active;
}

/**
 * How a stream ended when the caller did not read it to the end: `break` (the loop stopped reading), `abort`
 * (its controller or the caller's AbortSignal), `unread` (the stream object was garbage-collected before it
 * was read to its end).
 */
export type StreamEnd = 'break' | 'abort' | 'unread';

/*
 * Calls whose end needs a token estimate while the tokenizer is still being built (the first estimate of a
 * process): they end once it is built, a few hundred milliseconds later, with the time they really ended. The
 * build never holds the event loop for long (see usage/estimate.ts), so a stream the caller broke off is
 * closed at once and not kept generating by tokenmeter. `settleEstimatesNow()` ends them at once (exit flush).
 */
const deferred = new Set<GenAiCall>();
let settledWaiters: Array<() => void> = [];

function completeDeferred(call: GenAiCall): void {
  if (!deferred.delete(call)) return;
  call.complete();
  if (deferred.size === 0) {
    const waiters = settledWaiters;
    settledWaiters = [];
    for (const w of waiters) w();
  }
}

/** Resolves when no call is waiting for the tokenizer (at once when none is). */
export function whenEstimatesSettled(): Promise<void> {
  if (deferred.size === 0) return Promise.resolve();
  return new Promise((resolve) => settledWaiters.push(resolve));
}

/** Ends every call waiting for the tokenizer now, building it synchronously (for the final flush at exit). */
export function settleEstimatesNow(): void {
  for (const call of [...deferred]) completeDeferred(call);
}

/** Provider-specific knowledge a call needs: usage normalisation and the fallback token estimate. */
export interface CallAdapter {
  normalizeUsage(raw: unknown): NormalizedUsage;
  /** Estimated input tokens of the request (only called when the provider reported no usage). */
  estimateInput(call: GenAiCall): number;
  /** Estimated output tokens of the received text (only called when the provider reported no usage). */
  estimateOutput(call: GenAiCall): number;
  /**
   * The request's cap on output tokens, for a reservation's estimate (admission control). Undefined: the caller
   * set none (the exporter assumes its default). Without this method, the OpenAI/Anthropic parameter names are read.
   */
  maxOutputTokens?(call: GenAiCall): number | undefined;
  /**
   * Facts in the provider's own usage that change the price (speed, processing location, audio/image parts of
   * the token buckets), as tokenmeter.* attributes the exporter prices from. Only called with the provider's
   * usage, never with an estimate.
   */
  pricingAttributes?(rawUsage: unknown, usage: Usage, warnings: string[]): Attributes;
}

/** The SDKs' user-abort errors (APIUserAbortError) and DOM AbortErrors. */
function isAbort(err: unknown): boolean {
  const name = (err as { name?: unknown; constructor?: { name?: unknown } } | null)?.constructor?.name;
  return name === 'APIUserAbortError' || (err as { name?: unknown } | null)?.name === 'AbortError';
}

/** Spec-recommended reasons are strings; keep the list short and cheap. */
function errorType(err: unknown): string {
  if (err && typeof err === 'object') {
    const name = (err as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof name === 'string' && name !== 'Object' && name.length > 0) return name;
  }
  return '_OTHER';
}

/** One value of a metric key: strings length-prefixed, anything else (hostile responses) by its JSON. */
function keyPart(v: unknown): string {
  if (typeof v === 'string') return `${v.length}:${v}`;
  if (v === undefined) return 'u';
  if (typeof v === 'number') return `n${v};`;
  const json = String(JSON.stringify(v));
  return `j${json.length}:${json}`;
}

/**
 * One LLM call: its span, its metrics and the state collected from its response or stream. Every path ends it
 * exactly once (`ended`); attributes are computed once, at the end.
 */
export class GenAiCall {
  readonly span: Span;
  readonly startMillis: number;
  /** The attributed plan (a metric attribute: low-cardinality, unlike the user id). */
  readonly plan: string | undefined;
  /** The attributed user id (admission control asks for this user's allowance). */
  readonly userId: string | undefined;
  /** `withUser({ enforce })` of the call's scope, if set. */
  readonly enforce: 'block' | 'warn' | 'off' | undefined;
  readonly collector: UsageCollector | undefined;
  ended = false;
  streaming = false;
  /** The request parameters, kept for estimation and content capture. */
  readonly params: Record<string, any>;
  responseModel: string | undefined;
  responseId: string | undefined;
  finishReasons: string[] | undefined;
  serviceTier: string | undefined;
  rawUsage: unknown;
  /** Per-call fee counts read from the provider's response (web searches, grounding queries), if any. */
  toolCalls: Partial<Record<FeeKind, number>> | undefined;
  /** Text received so far (streams and responses), for the fallback estimate and content capture. */
  outputText = '';
  firstChunkMillis = -1;
  /** The request asked for usage we injected; its usage-only chunk is hidden from the caller. */
  injectedUsage = false;
  /**
   * The usage so far is a stream's opening count whose output total never arrived (Anthropic's message_start
   * before message_delta): its input counts are real, its output is completed with a labelled estimate.
   */
  usagePartial = false;

  constructor(
    private readonly telemetry: Telemetry,
    readonly adapter: CallAdapter,
    readonly operation: string,
    readonly server: ServerInfo,
    readonly requestModel: string,
    params: Record<string, any>,
    spanAttrs: Attributes,
    // The caller's read of currentScope() (null: none), so that a call reads the async-local store once.
    knownScope?: Scope | null,
  ) {
    this.params = params;
    // The attributes the GenAI conventions ask for at span creation (samplers see them); the others are written
    // into the span right after it starts (span-attributes.ts), without the SDK checking them a second time.
    const creation: Attributes = {
      [GENAI.operationName]: operation,
      [GENAI.providerName]: server.provider,
      [GENAI.requestModel]: requestModel,
    };
    if (server.address !== undefined) {
      creation[ATTR_SERVER_ADDRESS] = server.address;
      creation[ATTR_SERVER_PORT] = server.port;
    }
    const scope = knownScope === undefined ? currentScope() : (knownScope ?? undefined);
    countInstrumentedCall(server.provider, scope?.user !== undefined);
    // One read of the active context for the baggage and the span's parent (startSpan would read it again).
    const activeContext = context.active();
    currentAttribution(spanAttrs as Record<string, string>, scope, activeContext);
    this.plan = spanAttrs[ATTR_PLAN] as string | undefined;
    this.userId = spanAttrs[ATTR_USER_ID] as string | undefined;
    this.enforce = scope?.user?.enforce;
    this.collector = scope?.collector;
    this.startMillis = performance.now();
    this.span = telemetry.tracer.startSpan(`${operation} ${requestModel}`, { kind: SpanKind.CLIENT, attributes: creation }, activeContext);
    try {
      addSpanAttributes(this.span, spanAttrs);
    } catch (err) {
      // The span has started: it must still end with the call, so this constructor does not throw from here.
      diag.error('tokenmeter: failed to set the request attributes of an LLM call', err);
    }
  }

  get options(): ResolvedOptions {
    return this.telemetry.options;
  }

  /** Marks the arrival of the first stream chunk (time to first chunk). */
  firstChunk(): void {
    if (this.firstChunkMillis < 0) this.firstChunkMillis = performance.now();
  }

  private endMillis = 0;
  private endError: unknown;
  private streamEnd: StreamEnd | undefined;
  private deferredEnd = false;

  /** Ends the call: a response or a finished stream (`error` undefined), or a failure. Idempotent. */
  end(error?: unknown, streamEnd?: StreamEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.endMillis = performance.now();
    this.endError = error;
    this.streamEnd = streamEnd;
    try {
      if (this.needsEstimate(error)) {
        const request = this.requestModel;
        const response = this.responseModel;
        if (!estimatorReady(request) || !estimatorReady(response)) {
          this.deferredEnd = true;
          deferred.add(this);
          const done = (): void => completeDeferred(this);
          // Not even the read of the rank module (tens of milliseconds) before the caller's abort has gone out.
          setImmediate(() => {
            Promise.all([loadEstimator(request), loadEstimator(response)]).then(done, done);
          });
          return;
        }
      }
    } catch (err) {
      diag.error('tokenmeter: could not prepare a token estimate', err);
    }
    this.complete();
  }

  /** Whether ending this call computes a tokenizer estimate (the provider's usage is missing or partial). */
  private needsEstimate(error: unknown): boolean {
    if (!this.options.estimateMissingUsage) return false;
    if (this.rawUsage === undefined || this.rawUsage === null) return error === undefined || this.streaming;
    return this.usagePartial;
  }

  /** Computes and records everything known at the end (called once, by `end` or after a deferred estimate). */
  complete(): void {
    const error = this.endError;
    const streamEnd = this.streamEnd;
    try {
      this.finish(error, streamEnd);
    } catch (err) {
      diag.error('tokenmeter: failed to record an LLM call', err);
      try {
        this.span.end();
      } catch {
        // The span could not end either; nothing more to do without risking the app.
      }
    }
  }

  private finish(error: unknown, streamEnd: StreamEnd | undefined): void {
    const t = this.telemetry;
    const span = this.span;
    const endMillis = this.endMillis;
    // Everything known at the end, written into the span at once (span-attributes.ts).
    const attrs: Attributes = {};
    if (this.responseModel !== undefined) attrs[GENAI.responseModel] = this.responseModel;
    if (this.responseId !== undefined) attrs[GENAI.responseId] = this.responseId;
    if (this.finishReasons !== undefined && this.finishReasons.length > 0) attrs[GENAI.responseFinishReasons] = this.finishReasons;
    if (this.serviceTier !== undefined) {
      attrs[ATTR_SERVICE_TIER] = this.serviceTier;
      attrs[GENAI.responseServiceTier] = this.serviceTier;
    }
    if (streamEnd !== undefined) attrs[ATTR_STREAM_END] = streamEnd;
    // Fee counts are the provider's own (response items or usage), never estimated: set whatever usage became.
    const calls = this.toolCalls;
    if (calls !== undefined) {
      for (const k of FEE_KINDS) {
        const n = calls[k];
        if (n !== undefined && n > 0) attrs[ATTR_TOOL_CALLS[k]] = n;
      }
    }

    let usage: Usage | undefined;
    let estimated = false;
    if (this.rawUsage !== undefined && this.rawUsage !== null) {
      try {
        const normalized = this.adapter.normalizeUsage(this.rawUsage);
        usage = normalized.usage;
        const warnings = normalized.warnings;
        if (this.adapter.pricingAttributes !== undefined) Object.assign(attrs, this.adapter.pricingAttributes(this.rawUsage, usage, warnings));
        if (warnings.length > 0) attrs['tokenmeter.usage.warnings'] = warnings;
      } catch (err) {
        // Implausible provider usage is reported, not priced: the exporter would reject it anyway.
        diag.warn('tokenmeter: the provider reported unusable usage', err);
        attrs['tokenmeter.usage.invalid'] = String((err as Error)?.message ?? err);
      }
    } else if (this.options.estimateMissingUsage && (error === undefined || this.streaming)) {
      // A stream exists only once the provider answered, so its prompt was processed even if it broke off.
      const input = this.estimate(() => this.adapter.estimateInput(this));
      const output = this.estimate(() => this.adapter.estimateOutput(this));
      if (input !== undefined && output !== undefined) {
        usage = { input, cache_read: 0, cache_write: 0, output, reasoning: 0 };
        estimated = true;
      }
    }

    if (usage !== undefined && this.usagePartial && this.options.estimateMissingUsage) {
      const output = this.estimate(() => this.adapter.estimateOutput(this));
      if (output !== undefined && output > usage.output) usage = { ...usage, output };
      if (output !== undefined) estimated = true;
    }
    if (usage !== undefined) {
      usageToGenAiAttributes(usage, attrs);
      if (estimated) attrs[ATTR_USAGE_ESTIMATED] = true;
    }
    // A stream cut off before the provider's usage arrived: the output is what reached us, and the provider may
    // have generated more (up to the moment the connection closed). Also a stream request aborted before the
    // stream existed: the provider may have started generating, and nothing says how much.
    if (
      (this.streaming && estimated && (streamEnd !== undefined || error !== undefined)) ||
      (!this.streaming && usage === undefined && error !== undefined && this.params.stream === true && isAbort(error))
    ) {
      attrs[ATTR_USAGE_INCOMPLETE] = true;
    }
    if (this.options.captureMessageContent && this.outputText.length > 0) {
      attrs[GENAI.outputMessages] = JSON.stringify([
        { role: 'assistant', parts: [{ type: 'text', content: this.outputText }], finish_reason: this.finishReasons?.[0] },
      ]);
    }
    let errType: string | undefined;
    if (error !== undefined) {
      errType = errorType(error);
      attrs[ATTR_ERROR_TYPE] = errType;
    }
    addSpanAttributes(span, attrs);
    if (error !== undefined) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: String((error as Error)?.message ?? error) });
    }
    // A deferred end keeps the time the call really ended.
    if (this.deferredEnd) span.end(endMillis);
    else span.end();

    const durationSeconds = (endMillis - this.startMillis) / 1000;
    const ttfcSeconds = this.firstChunkMillis >= 0 ? (this.firstChunkMillis - this.startMillis) / 1000 : undefined;
    const producers = activeMetricProducers();
    if (producers.length > 0) {
      // tokenmeter's own aggregation (genai-metrics.ts): the series is found by a key, its attribute set built once.
      const m = new FinishedCallMetrics(
        this,
        errType,
        durationSeconds,
        ttfcSeconds,
        usage === undefined ? undefined : usage.input + usage.cache_read + usage.cache_write,
        usage === undefined ? undefined : usage.output + usage.reasoning,
        estimated,
      );
      for (let i = 0; i < producers.length; i++) producers[i].record(m);
    } else {
      // Every record hashes its attribute set (sorted keys, JSON) in the metrics SDK: each set is built once, as a
      // plain literal, and only with the low-cardinality attributes.
      const m = this.metricAttributes(errType);
      t.operationDuration.record(durationSeconds, m);
      if (ttfcSeconds !== undefined) t.timeToFirstChunk.record(ttfcSeconds, m);
      if (usage !== undefined) {
        const tm = this.metricAttributes(errType);
        if (estimated) tm[ATTR_USAGE_ESTIMATED] = true;
        tm[GENAI.tokenType] = 'input';
        t.tokenUsage.record(usage.input + usage.cache_read + usage.cache_write, tm);
        const to = this.metricAttributes(errType);
        if (estimated) to[ATTR_USAGE_ESTIMATED] = true;
        to[GENAI.tokenType] = 'output';
        t.tokenUsage.record(usage.output + usage.reasoning, to);
      }
    }
    if (this.collector !== undefined) {
      const endTimeMillis = Date.now();
      // The fee counts as the span carries them (response items, or the provider's usage via pricingAttributes).
      let toolCalls: Partial<Record<FeeKind, number>> | undefined;
      for (const k of FEE_KINDS) {
        const n = attrs[ATTR_TOOL_CALLS[k]];
        if (typeof n === 'number' && n > 0) (toolCalls ??= {})[k] = n;
      }
      for (let c: UsageCollector | undefined = this.collector; c !== undefined; c = c.parent) {
        c.calls.push({
          endTimeMillis,
          provider: this.server.provider,
          model: this.responseModel ?? this.requestModel,
          operation: this.operation,
          usage: usage ?? { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 },
          estimated,
          serviceTier: this.serviceTier,
          outcome: error === undefined ? 'success' : 'error',
          ...(toolCalls !== undefined ? { toolCalls } : {}),
        });
      }
    }
  }

  /** A fallback estimate, or undefined (said once) when js-tiktoken, an optional peer dependency, is not installed. */
  private estimate(count: () => number): number | undefined {
    try {
      return count();
    } catch (err) {
      if (!(err instanceof EstimateUnavailableError)) throw err;
      warnOnce(
        'estimate-unavailable',
        `a ${this.server.provider} call (${String(this.requestModel).slice(0, 60)}) ended without the provider's token usage, and the labelled ` +
          `estimate tokenmeter then records needs the js-tiktoken package, which is not installed: the tokens of such ` +
          `calls are not metered. Install it in the app (npm install js-tiktoken@1) to meter them as estimates.`,
      );
      return undefined;
    }
  }

  /**
   * Identifies the attribute set `metricAttributes(errType)` builds: each value that decides it, in a fixed
   * order, length-prefixed so that no two different sets share a key.
   */
  metricKey(errType: string | undefined): string {
    const server = this.server;
    const generic = server.address !== undefined && server.provider === GENERIC_OPENAI_COMPATIBLE;
    const address = generic ? server.address : undefined;
    const port = generic ? server.port : undefined;
    const responseModel = this.responseModel;
    // Most calls repeat one of a few sets: their key comes from a small memo, compared value by value, rather than
    // built (eight concatenations) and flattened and hashed by the series map on every call. Only plain values are
    // memoised (a hostile response's object model is keyed by its JSON each time).
    const memoable = typeof responseModel === 'string' || responseModel === undefined;
    if (memoable) {
      for (let i = 0; i < keyMemo.length; i++) {
        const e = keyMemo[i];
        if (
          e.requestModel === this.requestModel &&
          e.responseModel === responseModel &&
          e.operation === this.operation &&
          e.provider === server.provider &&
          e.plan === this.plan &&
          e.errType === errType &&
          e.address === address &&
          e.port === port
        ) {
          return e.key;
        }
      }
    }
    const key =
      keyPart(this.operation) +
      keyPart(server.provider) +
      keyPart(this.requestModel) +
      keyPart(responseModel) +
      keyPart(address) +
      keyPart(port) +
      keyPart(this.plan) +
      keyPart(errType);
    if (memoable) {
      // The map flattens this string in place on its first lookup; the memo keeps that one string.
      const entry: KeyMemo = { operation: this.operation, provider: server.provider, requestModel: this.requestModel, responseModel, address, port, plan: this.plan, errType, key };
      if (keyMemo.length < KEY_MEMO_SIZE) keyMemo.push(entry);
      else keyMemo[keyMemoNext++ % KEY_MEMO_SIZE] = entry;
      return entry.key;
    }
    return key;
  }

  /** A fresh metric attribute set (the SDK keeps the first object it sees per set, so none is shared or reused). */
  metricAttributes(errType: string | undefined): Attributes {
    const server = this.server;
    const m: Attributes = {
      [GENAI.operationName]: this.operation,
      [GENAI.providerName]: server.provider,
      [GENAI.requestModel]: this.requestModel,
    };
    if (this.responseModel !== undefined) m[GENAI.responseModel] = this.responseModel;
    // server.* are only recommended for these metrics; every attribute costs on each record (the SDK hashes the
    // set), so they are kept where they say something the provider name does not: which OpenAI-compatible server.
    if (server.address !== undefined && server.provider === GENERIC_OPENAI_COMPATIBLE) {
      m[ATTR_SERVER_ADDRESS] = server.address;
      m[ATTR_SERVER_PORT] = server.port;
    }
    if (this.plan !== undefined) m[ATTR_PLAN] = this.plan;
    if (errType !== undefined) m[ATTR_ERROR_TYPE] = errType;
    return m;
  }
}

/** One finished call's metric values; its attribute set is built only when its series is new. */
class FinishedCallMetrics implements CallMetrics {
  readonly key: string;

  constructor(
    private readonly call: GenAiCall,
    private readonly errType: string | undefined,
    readonly durationSeconds: number,
    readonly timeToFirstChunkSeconds: number | undefined,
    readonly inputTokens: number | undefined,
    readonly outputTokens: number | undefined,
    readonly estimated: boolean,
  ) {
    this.key = call.metricKey(errType);
  }

  attributes(): Attributes {
    return this.call.metricAttributes(this.errType);
  }
}

/** A metric key and the values it was built from (see GenAiCall.metricKey). */
interface KeyMemo {
  operation: string;
  provider: string;
  requestModel: string;
  responseModel: string | undefined;
  address: string | undefined;
  port: number | undefined;
  plan: string | undefined;
  errType: string | undefined;
  key: string;
}

const KEY_MEMO_SIZE = 8;
const keyMemo: KeyMemo[] = [];
let keyMemoNext = 0;
