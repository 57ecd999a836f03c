import { IngestError } from './errors.js';
import { checkIds, MAX_KEPT_ID_BYTES } from './ids.js';
import { ExportTraceServiceRequest } from './otlp-proto.js';
import type { AttributeMap, AttributeValue, DecodedScope, DecodedSpan, DecodedTraces } from './types.js';

/**
 * Decodes a protobuf ExportTraceServiceRequest with protobufjs reflection over the official definitions
 * (otlp-proto.ts). This is the reference the hand-written walker is tested against, and the baseline
 * for bench/.
 */

type Msg = Record<string, unknown>;
interface LongLike {
  low: number;
  high: number;
  toNumber(): number;
}

/** protobufjs gives 64-bit integers as Long objects when the `long` package is present, else as numbers. */
function int64Number(v: unknown): number {
  if (v === undefined || v === null) return 0;
  return typeof v === 'number' ? v : (v as LongLike).toNumber();
}

function uint64BigInt(v: unknown): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'number') return BigInt(v);
  const l = v as LongLike;
  return (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
}

function anyValue(m: Msg | undefined | null): AttributeValue {
  if (m === undefined || m === null) return null;
  const which = m.value as string | undefined;
  switch (which) {
    case 'stringValue':
      return (m.stringValue as string | undefined) ?? '';
    case 'boolValue':
      return (m.boolValue as boolean | undefined) ?? false;
    case 'intValue':
      return int64Number(m.intValue);
    case 'doubleValue':
      return (m.doubleValue as number | undefined) ?? 0;
    case 'arrayValue': {
      const values = ((m.arrayValue as Msg | undefined)?.values as Msg[] | undefined) ?? [];
      return values.map((v) => anyValue(v));
    }
    case 'kvlistValue': {
      const out = Object.create(null) as AttributeMap;
      keyValues(((m.kvlistValue as Msg | undefined)?.values as Msg[] | undefined) ?? [], out);
      return out;
    }
    case 'bytesValue': {
      const b = m.bytesValue as Uint8Array | undefined;
      return b === undefined ? '' : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
    }
    default:
      return null;
  }
}

function keyValues(list: Msg[] | undefined, out: AttributeMap): void {
  if (list === undefined) return;
  for (const kv of list) out[(kv.key as string | undefined) ?? ''] = anyValue(kv.value as Msg | undefined);
}

function hex(b: Uint8Array | undefined): string {
  return b === undefined ? '' : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function decodeTraceRequestReference(buf: Buffer): DecodedTraces {
  let req: Msg;
  try {
    req = ExportTraceServiceRequest.decode(buf) as unknown as Msg;
  } catch (err) {
    throw new IngestError(400, `invalid protobuf ExportTraceServiceRequest: ${err instanceof Error ? err.message : String(err)}`);
  }
  const spans: DecodedSpan[] = [];
  const rss = (req.resourceSpans as Msg[] | undefined) ?? [];
  for (const rs of rss) {
    const res = Object.create(null) as AttributeMap;
    keyValues((rs.resource as Msg | undefined)?.attributes as Msg[] | undefined, res);
    for (const ss of (rs.scopeSpans as Msg[] | undefined) ?? []) {
      const scope = ss.scope as Msg | undefined;
      const sc: DecodedScope = {
        name: (scope?.name as string | undefined) ?? '',
        version: (scope?.version as string | undefined) ?? '',
        attributes: Object.create(null) as AttributeMap,
      };
      keyValues(scope?.attributes as Msg[] | undefined, sc.attributes);
      for (const s of (ss.spans as Msg[] | undefined) ?? []) {
        const traceId = s.traceId as Uint8Array | undefined;
        const spanId = s.spanId as Uint8Array | undefined;
        const parent = s.parentSpanId as Uint8Array | undefined;
        const traceBytes = traceId?.length ?? 0;
        const spanBytes = spanId?.length ?? 0;
        const ids = checkIds(traceBytes === 16 ? hex(traceId) : '', traceBytes, spanBytes === 8 ? hex(spanId) : '', spanBytes);
        const attributes = Object.create(null) as AttributeMap;
        keyValues(s.attributes as Msg[] | undefined, attributes);
        const status = s.status as Msg | undefined;
        const parentBytes = parent?.length ?? 0;
        const out: DecodedSpan = {
          traceId: ids.traceId,
          spanId: ids.spanId,
          parentSpanId: parentBytes > 0 && parentBytes <= MAX_KEPT_ID_BYTES ? hex(parent) : '',
          name: (s.name as string | undefined) ?? '',
          kind: (s.kind as number | undefined) ?? 0,
          startTimeUnixNano: uint64BigInt(s.startTimeUnixNano),
          endTimeUnixNano: uint64BigInt(s.endTimeUnixNano),
          attributes,
          statusCode: (status?.code as number | undefined) ?? 0,
          statusMessage: (status?.message as string | undefined) ?? '',
          resource: res,
          scope: sc,
        };
        if (ids.invalidId !== undefined) out.invalidId = ids.invalidId;
        spans.push(out);
      }
    }
  }
  return { spans, resourceSpansCount: rss.length };
}
