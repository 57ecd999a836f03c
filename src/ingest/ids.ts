/** Helpers shared by the protobuf and JSON decoders so that both produce identical spans. */

const ZERO_TRACE_ID = '00000000000000000000000000000000';
const ZERO_SPAN_ID = '0000000000000000';
const HEX_RE = /^[0-9a-fA-F]*$/;

export interface IdCheck {
  traceId: string;
  spanId: string;
  invalidId?: string;
}

/** Validates already-hex ids (lower-case) by byte length (-1: not hex); describes the first problem found. */
export function checkIds(traceHex: string, traceBytes: number, spanHex: string, spanBytes: number): IdCheck {
  let invalidId: string | undefined;
  let traceId = traceHex;
  let spanId = spanHex;
  if (traceBytes !== 16) {
    invalidId = traceBytes < 0 ? 'trace_id is not a hex string of 32 characters' : `trace_id has ${traceBytes} bytes, expected 16`;
    traceId = '';
  } else if (traceHex === ZERO_TRACE_ID) {
    invalidId = 'trace_id is all zeroes';
  }
  if (spanBytes !== 8) {
    invalidId ??= spanBytes < 0 ? 'span_id is not a hex string of 16 characters' : `span_id has ${spanBytes} bytes, expected 8`;
    spanId = '';
  } else if (spanHex === ZERO_SPAN_ID) {
    invalidId ??= 'span_id is all zeroes';
  }
  return invalidId === undefined ? { traceId, spanId } : { traceId, spanId, invalidId };
}

/** Longest id we keep as hex even when invalid (a parent id is informational; a huge one is dropped). */
export const MAX_KEPT_ID_BYTES = 32;

/** OTLP/JSON ids are hex strings. Returns the lower-case hex and its byte length, or -1 when not hex. */
export function jsonHexId(value: string): { hex: string; bytes: number } {
  if (value.length % 2 !== 0 || value.length > 2 * MAX_KEPT_ID_BYTES || !HEX_RE.test(value)) {
    return { hex: '', bytes: -1 };
  }
  return { hex: value.toLowerCase(), bytes: value.length / 2 };
}
