import { bodyFormat, decodeBody } from './body.js';
import { IngestError } from './errors.js';
import { jsonMetricsRequest, protobufMetricsRequest } from './metrics.js';
import { jsonTraceRequest } from './trace-json.js';
import { walkTraceRequest } from './trace-proto-walker.js';
import type { DecodedMetrics, DecodedTraces, DecodeOptions } from './types.js';

function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new IngestError(400, `invalid JSON in ${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Wraps anything unexpected (a bug, a stack overflow on hostile input) so the caller always gets a 4xx. */
function guard<T>(fn: () => T, what: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof IngestError) throw err;
    throw new IngestError(400, `could not decode ${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Decodes the body of `POST /v1/traces` (OTLP/HTTP, protobuf or JSON, gzip or identity) into a flat list
 * of spans. Throws IngestError: 415 for an unsupported Content-Type or Content-Encoding, 413 when the
 * (decompressed) body exceeds `maxDecompressedBytes`, 400 for a malformed body. A span with an invalid id
 * is returned with `invalidId` set (rejected on its own), not a 400.
 */
export function decodeTraceRequest(
  body: Buffer,
  contentType: string | undefined,
  contentEncoding: string | undefined,
  options: DecodeOptions,
): DecodedTraces {
  const format = bodyFormat(contentType);
  const raw = decodeBody(body, contentEncoding, options.maxDecompressedBytes);
  if (format === 'protobuf') return guard(() => walkTraceRequest(raw), 'ExportTraceServiceRequest');
  return guard(() => jsonTraceRequest(parseJson(raw, 'ExportTraceServiceRequest')), 'ExportTraceServiceRequest');
}

/**
 * Decodes the body of `POST /v1/metrics`: validates it and counts metrics and data points. Metrics are not
 * priced (spans are the source of truth for usage; see metrics.ts). Same errors as decodeTraceRequest.
 */
export function decodeMetricsRequest(
  body: Buffer,
  contentType: string | undefined,
  contentEncoding: string | undefined,
  options: DecodeOptions,
): DecodedMetrics {
  const format = bodyFormat(contentType);
  const raw = decodeBody(body, contentEncoding, options.maxDecompressedBytes);
  if (format === 'protobuf') return guard(() => protobufMetricsRequest(raw), 'ExportMetricsServiceRequest');
  return guard(() => jsonMetricsRequest(parseJson(raw, 'ExportMetricsServiceRequest')), 'ExportMetricsServiceRequest');
}
