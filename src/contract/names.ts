/**
 * The names other code, dashboards, alerts and users rely on (DESIGN.md "Contract").
 * Everything that emits or queries one of these names imports it from here, so they cannot drift.
 */

/** The five non-overlapping token buckets. Their sum is a call's billable total. */
export const TOKEN_TYPES = ['input', 'cache_read', 'cache_write', 'output', 'reasoning'] as const;
export type TokenType = (typeof TOKEN_TYPES)[number];

/** Attribution attributes on spans, also read from OTel baggage. */
export const ATTR_USER_ID = 'user.id';
export const ATTR_PLAN = 'tokenmeter.plan';
export const ATTR_FEATURE = 'tokenmeter.feature';
/** Set to true on a span whose token counts were estimated with a tokenizer, not reported by the provider. */
export const ATTR_USAGE_ESTIMATED = 'tokenmeter.usage.estimated';
/**
 * Set to true on a span whose usage is known to be incomplete: a stream cut off (break, abort, never read) before
 * the provider's usage arrived, whose output was estimated from the text that reached the app. The provider may
 * have generated (and billed) more.
 */
export const ATTR_USAGE_INCOMPLETE = 'tokenmeter.usage.incomplete';
/** How a stream ended when the app did not read it to its end: `break`, `abort` or `unread`. */
export const ATTR_STREAM_END = 'tokenmeter.stream.end';
/** The 1-hour TTL part of the cache-write tokens (Anthropic), when the provider reports the split. */
export const ATTR_CACHE_CREATION_1H = 'tokenmeter.usage.cache_creation.1h.input_tokens';
/** Service tier of the request (batch, flex, priority), used for pricing. */
export const ATTR_SERVICE_TIER = 'tokenmeter.service_tier';
/** The speed the call ran at, as the provider's usage reports it (Anthropic `usage.speed`: standard | fast). */
export const ATTR_SPEED = 'tokenmeter.speed';
/** Where inference ran, as the provider's usage reports it (Anthropic `usage.inference_geo`: global | us | ...). */
export const ATTR_INFERENCE_GEO = 'tokenmeter.inference_geo';
/** Modality parts, for pricing: uncached audio input tokens (part of input), audio / image output (parts of output). */
/** Admission control (issue 16): the reservation the exporter granted for this call (src/exporter/reservations.ts). */
export const ATTR_RESERVATION_ID = 'tokenmeter.reservation.id';
/** Set on a call refused before it was sent (the limit's name); the exporter ignores such spans (nothing was used). */
export const ATTR_RESERVATION_REFUSED = 'tokenmeter.reservation.refused';
/** Set with `enforce: 'warn'` on a call that would have been refused (the limit's name); the call was sent. */
export const ATTR_RESERVATION_WARNED = 'tokenmeter.reservation.warned';
/** Set when the exporter did not answer the reservation in time and the call went through (`fail: 'open'`). */
export const ATTR_RESERVATION_UNAVAILABLE = 'tokenmeter.reservation.unavailable';
export const ATTR_INPUT_AUDIO_TOKENS = 'tokenmeter.usage.input_audio_tokens';
export const ATTR_OUTPUT_AUDIO_TOKENS = 'tokenmeter.usage.output_audio_tokens';
export const ATTR_OUTPUT_IMAGE_TOKENS = 'tokenmeter.usage.output_image_tokens';

/**
 * Per-call fees: a provider charges some server-side tool uses per call, not per token (web search, search
 * grounding). The count the provider reported travels as `tokenmeter.usage.tool_calls.<kind>` (a non-negative
 * integer); the catalog prices each kind per 1,000 calls (src/pricing/catalog-schema.ts `fees`).
 *   web_search          OpenAI Responses `web_search_call` items of the `web_search` tool; Anthropic
 *                       `usage.server_tool_use.web_search_requests`
 *   web_search_preview  OpenAI Responses `web_search_call` items of the older `web_search_preview` tool
 *   search_grounding    Gemini grounding with Google Search: the distinct non-empty `webSearchQueries`
 */
export const FEE_KINDS = ['web_search', 'web_search_preview', 'search_grounding'] as const;
export type FeeKind = (typeof FEE_KINDS)[number];
export const ATTR_TOOL_CALLS_PREFIX = 'tokenmeter.usage.tool_calls.';
export const ATTR_TOOL_CALLS: Readonly<Record<FeeKind, string>> = {
  web_search: `${ATTR_TOOL_CALLS_PREFIX}web_search`,
  web_search_preview: `${ATTR_TOOL_CALLS_PREFIX}web_search_preview`,
  search_grounding: `${ATTR_TOOL_CALLS_PREFIX}search_grounding`,
};
/**
 * The `type` label value of `tokenmeter_cost_usd_total` for per-call fees: not a token type (no tokens series
 * has it), so that the cost by type still adds up to the total cost.
 */
export const COST_TYPE_FEE = 'fee';

/** OTel GenAI semantic-convention attributes tokenmeter writes and reads (current names). */
export const GENAI = {
  operationName: 'gen_ai.operation.name',
  providerName: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  responseModel: 'gen_ai.response.model',
  responseId: 'gen_ai.response.id',
  responseFinishReasons: 'gen_ai.response.finish_reasons',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
  cacheReadInputTokens: 'gen_ai.usage.cache_read.input_tokens',
  /** The name before 2026 (still written by most instrumentations and by tokenmeter's own, still read). */
  cacheCreationInputTokens: 'gen_ai.usage.cache_creation.input_tokens',
  /** The current name of the cache-write count (renamed from cache_creation in 2026). */
  cacheWriteInputTokens: 'gen_ai.usage.cache_write.input_tokens',
  /** Modality parts (GenAI conventions): each part of the count it names; audio and image output price differently. */
  audioInputTokens: 'gen_ai.usage.audio.input_tokens',
  audioCacheReadInputTokens: 'gen_ai.usage.audio.cache_read.input_tokens',
  audioOutputTokens: 'gen_ai.usage.audio.output_tokens',
  imageOutputTokens: 'gen_ai.usage.image.output_tokens',
  reasoningOutputTokens: 'gen_ai.usage.reasoning.output_tokens',
  tokenType: 'gen_ai.token.type',
  requestServiceTier: 'gen_ai.openai.request.service_tier',
  responseServiceTier: 'gen_ai.openai.response.service_tier',
  requestStream: 'gen_ai.request.stream',
  inputMessages: 'gen_ai.input.messages',
  outputMessages: 'gen_ai.output.messages',
  /** Deprecated names still emitted by older instrumentations. */
  deprecatedSystem: 'gen_ai.system',
  deprecatedPromptTokens: 'gen_ai.usage.prompt_tokens',
  deprecatedCompletionTokens: 'gen_ai.usage.completion_tokens',
} as const;

export const ATTR_ERROR_TYPE = 'error.type';
export const ATTR_SERVER_ADDRESS = 'server.address';
export const ATTR_SERVER_PORT = 'server.port';

/** OTel GenAI client metrics the instrumentation records. */
export const GENAI_METRIC_TOKEN_USAGE = 'gen_ai.client.token.usage';
export const GENAI_METRIC_OPERATION_DURATION = 'gen_ai.client.operation.duration';
export const GENAI_METRIC_TIME_TO_FIRST_CHUNK = 'gen_ai.client.operation.time_to_first_chunk';

/** Prometheus metrics the exporter emits (DESIGN.md table). */
export const METRIC = {
  tokensTotal: 'tokenmeter_tokens_total',
  costUsdTotal: 'tokenmeter_cost_usd_total',
  requestsTotal: 'tokenmeter_requests_total',
  userTokensTotal: 'tokenmeter_user_tokens_total',
  userCostUsdTotal: 'tokenmeter_user_cost_usd_total',
  featureCostUsdTotal: 'tokenmeter_feature_cost_usd_total',
  estimatedTokensTotal: 'tokenmeter_estimated_tokens_total',
  unpricedTokensTotal: 'tokenmeter_unpriced_tokens_total',
  periodTokens: 'tokenmeter_period_tokens',
  periodRequests: 'tokenmeter_period_requests',
  periodCostUsd: 'tokenmeter_period_cost_usd',
  limitTokens: 'tokenmeter_limit_tokens',
  limitRequests: 'tokenmeter_limit_requests',
  limitCostUsd: 'tokenmeter_limit_cost_usd',
  periodEndTimestampSeconds: 'tokenmeter_period_end_timestamp_seconds',
  ingestedSpansTotal: 'tokenmeter_ingested_spans_total',
  /** GenAI call spans with no token counts, billed anyway (issue 13), by source and reason (estimated, no_content). */
  missingUsageSpansTotal: 'tokenmeter_missing_usage_spans_total',
  /** The cost spans reported themselves (gen_ai.usage.cost, gen_ai.cost.*), for comparison with tokenmeter_cost_usd_total; never billed. */
  reportedCostUsdTotal: 'tokenmeter_reported_cost_usd_total',
  /** Operational metrics beyond the DESIGN.md table (exporter health). */
  rejectedSpansTotal: 'tokenmeter_rejected_spans_total',
  /** Spans whose end time was outside the accepted window: charged to the period and price of their arrival, by reason (late, future). */
  redatedSpansTotal: 'tokenmeter_redated_spans_total',
  /** OTLP requests refused as a whole before their spans could be read (400, 401, 413, 415, 503), by reason. */
  rejectedRequestsTotal: 'tokenmeter_rejected_requests_total',
  ledgerCommitSeconds: 'tokenmeter_ledger_commit_seconds',
  ledgerUp: 'tokenmeter_ledger_up',
  userSeries: 'tokenmeter_user_series',
  userOverflowTotal: 'tokenmeter_user_overflow_total',
  /** Always 1; the labels say which build runs (version, node_version). */
  buildInfo: 'tokenmeter_build_info',
  /** Every OTLP/HTTP request answered, by signal (traces, metrics, other) and HTTP status code ("aborted": no answer). */
  otlpRequestsTotal: 'tokenmeter_otlp_requests_total',
  /** Time from an OTLP request's arrival to its answer (for traces: including the ledger commit), by signal. */
  otlpRequestDurationSeconds: 'tokenmeter_otlp_request_duration_seconds',
  /** Price reloads (SIGHUP, pricing.reload_interval) by outcome: success, unchanged, failure (refused; old prices stay). */
  priceReloadTotal: 'tokenmeter_price_reload_total',
  /** Admission control: reservation requests answered, by plan, outcome (granted, refused, warned) and limit (none when granted). */
  reservationsTotal: 'tokenmeter_reservations_total',
  /** Calls refused before they were sent, per user (bounded like the other per-user series) and plan. */
  userRefusedCallsTotal: 'tokenmeter_user_refused_calls_total',
  /** Reservations that were never settled by a committed call and expired after their TTL. */
  reservationsExpiredTotal: 'tokenmeter_reservations_expired_total',
  /** Reservations held now (granted, not yet settled or expired). */
  reservationsActive: 'tokenmeter_reservations_active',
  /** Reservation streams open now (one long-lived connection per app process, `GET /api/v1/reservations/stream`). */
  reservationStreams: 'tokenmeter_reservation_streams',
  /** Settled reservations: the call's actual tokens divided by the reservation's estimate (how good estimates are). */
  reservationActualToEstimateRatio: 'tokenmeter_reservation_actual_to_estimate_ratio',
} as const;
export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/**
 * Process and Node.js runtime metrics of the exporter (prom-client's default metrics, standard names, so the usual
 * Node.js dashboards work too). The ones tokenmeter's dashboards read.
 */
export const PROCESS_METRIC = {
  cpuSecondsTotal: 'process_cpu_seconds_total',
  residentMemoryBytes: 'process_resident_memory_bytes',
  startTimeSeconds: 'process_start_time_seconds',
  openFds: 'process_open_fds',
  heapUsedBytes: 'nodejs_heap_size_used_bytes',
  eventLoopLagP99Seconds: 'nodejs_eventloop_lag_p99_seconds',
  gcDurationSeconds: 'nodejs_gc_duration_seconds',
} as const;
export type ProcessMetricName = (typeof PROCESS_METRIC)[keyof typeof PROCESS_METRIC];

/** Prometheus label names. */
export const LABEL = {
  plan: 'plan',
  provider: 'provider',
  model: 'model',
  type: 'type',
  operation: 'operation',
  outcome: 'outcome',
  user: 'user',
  feature: 'feature',
  reason: 'reason',
  source: 'source',
  signal: 'signal',
  code: 'code',
  version: 'version',
  nodeVersion: 'node_version',
  limit: 'limit',
} as const;

/** `tokenmeter_ingested_spans_total{outcome}` values. */
export const INGEST_OUTCOMES = ['priced', 'ignored', 'duplicate', 'rejected', 'superseded'] as const;
/** `tokenmeter_missing_usage_spans_total{reason}` values. */
export const MISSING_USAGE_REASONS = ['estimated', 'no_content', 'not_estimated'] as const;
export type IngestOutcome = (typeof INGEST_OUTCOMES)[number];

/** `tokenmeter_requests_total{outcome}` values. */
export const REQUEST_OUTCOMES = ['success', 'error'] as const;

/** The user label past `max_users`; totals stay exact. */
export const OVERFLOW_USER = '__overflow__';
/** The feature label when a span carries no `tokenmeter.feature`. */
export const NO_FEATURE = 'none';
/** The user id when a span carries no `user.id`. */
export const ANONYMOUS_USER = 'anonymous';

/** Default ports (DESIGN.md). */
export const DEFAULT_OTLP_PORT = 4318;
export const DEFAULT_HTTP_PORT = 9464;
