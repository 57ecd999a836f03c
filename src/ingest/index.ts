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
