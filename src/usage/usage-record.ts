import type { FeeKind } from '../contract/names.js';
import type { Usage } from './usage.js';

/** Which instrumentation convention a usage record was extracted from. */
export type UsageSource = 'tokenmeter' | 'otel-genai' | 'openllmetry' | 'vercel-ai' | 'openinference';

/**
 * One LLM call, as extracted from one span: the record that flows from ingest through pricing and the ledger
 * to the metrics. Born in the instrumentation, it reaches the exporter as a span.
 */
export interface UsageRecord {
  /** Lower-case hex, 32 chars. Together with spanId the call's identity for exactly-once counting. */
  traceId: string;
  /** Lower-case hex, 16 chars. */
  spanId: string;
  /**
   * When the call ended (span end time), epoch milliseconds. Chooses the billing period and the price when it lies
   * in the exporter's accepted window around the call's arrival (see chargeInstant in src/exporter/pipeline.ts).
   */
  endTimeMillis: number;
  /** Normalised provider name: openai, anthropic, google, aws.bedrock, azure.ai.openai, mistral, deepseek, ... */
  provider: string;
  /** The model name as the span reported it (response model preferred over request model). */
  rawModel: string;
  /** gen_ai.operation.name: chat, text_completion, embeddings, generate_content, ... */
  operation: string;
  usage: Usage;
  /** True when the counts were estimated with a tokenizer rather than reported by the provider. */
  estimated: boolean;
  /** user.id, or ANONYMOUS_USER when the span has none. */
  userId: string;
  /** tokenmeter.plan from the span or baggage, if any (configuration may override it). */
  planFromSpan?: string;
  /** tokenmeter.feature, if any. */
  feature?: string;
  /** batch | flex | priority | default ... when the span says. */
  serviceTier?: string;
  /** standard | fast ... when the span says (tokenmeter.speed): fast mode is priced at a premium. */
  speed?: string;
  /** Facts that say where the call was served (regional / data-residency premiums): see processingScope. */
  serverAddress?: string;
  inferenceGeo?: string;
  /**
   * Per-call fee counts the provider reported (tokenmeter.usage.tool_calls.<kind>): web searches, grounding queries.
   * Not tokens; priced from the catalog entry's `fees`. Absent = none.
   */
  toolCalls?: Partial<Record<FeeKind, number>>;
  /** error when the span had an error status or error.type. */
  outcome: 'success' | 'error';
  source: UsageSource;
}
