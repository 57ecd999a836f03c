export { decodeTraceRequest, decodeMetricsRequest } from './decode.js';
export { IngestError } from './errors.js';
export type {
  AttributeMap,
  AttributeValue,
  DecodedMetrics,
  DecodedScope,
  DecodedSpan,
  DecodedTraces,
  DecodeOptions,
} from './types.js';
export { extractUsage, MAX_LABEL_CHARS, MAX_PLAUSIBLE_TOOL_CALLS } from './extract.js';
export type { ExtractResult, RejectReason } from './extract.js';
export { normalizeProvider } from './providers.js';
