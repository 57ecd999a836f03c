/** An OTLP attribute value after decoding. kvlists become null-prototype objects, arrays stay arrays. */
export type AttributeValue = string | number | boolean | null | AttributeValue[] | AttributeMap;

/**
 * Attributes by key. Always created with `Object.create(null)` so that hostile keys such as `__proto__`
 * are plain keys. On duplicate keys the last one wins.
 */
export interface AttributeMap {
  [key: string]: AttributeValue;
}

export interface DecodedScope {
  name: string;
  version: string;
  attributes: AttributeMap;
}

/** One span from an OTLP export request, flattened: resource and scope are shared by the spans under them. */
export interface DecodedSpan {
  /** Lower-case hex, 32 chars when valid; '' when the id was absent or not 16 bytes. */
  traceId: string;
  /** Lower-case hex, 16 chars when valid; '' when the id was absent or not 8 bytes. */
  spanId: string;
  /** Lower-case hex, '' for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind number (0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer). */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: AttributeMap;
  /** OTLP StatusCode number: 0 unset, 1 ok, 2 error. */
  statusCode: number;
  statusMessage: string;
  /** Resource attributes (shared object, do not mutate). */
  resource: AttributeMap;
  /** Instrumentation scope (shared object, do not mutate). */
  scope: DecodedScope;
  /**
   * Set when the trace or span id is invalid (wrong length, all zeroes, not hex). Such a span is rejected on
   * its own (OTLP partial success); the rest of the batch is kept.
   */
  invalidId?: string;
}

export interface DecodedTraces {
  spans: DecodedSpan[];
  /** Number of ResourceSpans entries in the request. */
  resourceSpansCount: number;
}

export interface DecodedMetrics {
  resourceMetricsCount: number;
  metricCount: number;
  /** Data points over every metric type (gauge, sum, histogram, exponential histogram, summary). */
  dataPointCount: number;
}

export interface DecodeOptions {
  /**
   * Largest body accepted after gunzip (and largest identity body). A larger one fails with 413 as soon as
   * decompression passes the limit, without allocating the whole output.
   */
  maxDecompressedBytes: number;
}

/** What extraction learnt about a priced span beyond its usage record (ingest outcomes, double instrumentation). */
export interface SpanFacts {
  /** `framework`: a LangChain / LlamaIndex / agent-framework LLM span that may wrap a provider SDK span (supersede.ts). */
  layer: 'provider' | 'framework';
  /** The sending process (resource attributes), for learning which instrumentations it runs. */
  resourceKey: string;
  /** Set when the span had no token counts: estimated from its content, or counted with zero tokens (no content; content too large or no tokenizer). */
  missingUsage?: 'estimated' | 'no_content' | 'not_estimated';
  /** The cost the span itself reports (USD), for comparison only. */
  reportedCostUsd?: number;
}
