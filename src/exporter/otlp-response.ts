import protobuf from 'protobufjs';

export type OtlpSignal = 'traces' | 'metrics';
export type OtlpFormat = 'protobuf' | 'json';

export const OTLP_CONTENT_TYPE: Record<OtlpFormat, string> = {
  protobuf: 'application/x-protobuf',
  json: 'application/json',
};

export interface PartialSuccess {
  /** Rejected spans (traces) or data points (metrics). */
  rejected: number;
  errorMessage: string;
}

/**
 * ExportTraceServiceResponse / ExportMetricsServiceResponse in the request's encoding. Both messages have the same
 * shape: field 1 `partial_success` { field 1 int64 rejected_spans | rejected_data_points, field 2 string error_message }.
 * An empty message means full success.
 */
export function encodeExportResponse(signal: OtlpSignal, format: OtlpFormat, partial?: PartialSuccess): Buffer {
  if (format === 'json') {
    if (!partial) return Buffer.from('{}');
    const countKey = signal === 'traces' ? 'rejectedSpans' : 'rejectedDataPoints';
    // proto3 JSON mapping: int64 as a decimal string.
    return Buffer.from(JSON.stringify({ partialSuccess: { [countKey]: String(partial.rejected), errorMessage: partial.errorMessage } }));
  }
  if (!partial) return Buffer.alloc(0);
  const w = protobuf.Writer.create();
  w.uint32((1 << 3) | 2).fork();
  if (partial.rejected > 0) w.uint32((1 << 3) | 0).int64(partial.rejected);
  if (partial.errorMessage) w.uint32((2 << 3) | 2).string(partial.errorMessage);
  w.ldelim();
  return Buffer.from(w.finish());
}

/** google.rpc.Status { int32 code = 1; string message = 2; } — the OTLP error body. */
export function encodeStatus(format: OtlpFormat, code: number, message: string): Buffer {
  if (format === 'json') return Buffer.from(JSON.stringify({ code, message }));
  const w = protobuf.Writer.create();
  if (code !== 0) w.uint32((1 << 3) | 0).int32(code);
  if (message) w.uint32((2 << 3) | 2).string(message);
  return Buffer.from(w.finish());
}

/** gRPC status codes OTLP/HTTP bodies carry for each HTTP status. */
export function grpcCodeFor(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
    case 413:
    case 415:
      return 3; // INVALID_ARGUMENT
    case 401:
      return 16; // UNAUTHENTICATED
    case 429:
      return 8; // RESOURCE_EXHAUSTED
    case 503:
      return 14; // UNAVAILABLE
    default:
      return 13; // INTERNAL
  }
}
