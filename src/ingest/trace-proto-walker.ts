import { IngestError } from './errors.js';
import { checkIds, MAX_KEPT_ID_BYTES } from './ids.js';
import type { AttributeMap, AttributeValue, DecodedScope, DecodedSpan, DecodedTraces } from './types.js';

/**
 * A hand-written protobuf reader for ExportTraceServiceRequest that reads only the fields tokenmeter needs
 * (ids, name, kind, times, attributes, status, resource and scope) and skips the rest (events, links,
 * trace_state, flags) by length. About twice as fast as protobufjs reflection on GenAI spans.
 *
 * It follows protobufjs' decoding of the official definitions (otlp-proto.ts) exactly where it reads:
 * proto3 last-one-wins for scalars, merge for repeated sub-messages (a second `status` or `value` merges
 * into the first), a known field with the wrong wire type is skipped as unknown, groups are skipped,
 * the same recursion limit (100). test/ingest/fuzz.test.ts checks that on random and mutated
 * bodies: whatever protobufjs accepts, the walker accepts with identical output. It is more lenient only
 * inside fields it skips (a corrupt event is not looked at).
 */

/** protobufjs' Reader.recursionLimit (protoc's default). */
const MAX_DEPTH = 100;

const WT_VARINT = 0;
const WT_I64 = 1;
const WT_LEN = 2;
const WT_SGROUP = 3;
const WT_EGROUP = 4;
const WT_I32 = 5;

/**
 * Recently decoded short ASCII strings, by a hash of their bytes (direct-mapped: a collision replaces the
 * entry). Attribute keys and most values (models, providers, plans, user ids) repeat from span to span; a hit
 * costs a hash and a compare of the bytes in JS instead of a native decode and a new string, and hands every
 * later stage the same string object (its hash already computed for Map and property lookups). Only ASCII is
 * cached, where each byte is its char code, so a hit is byte-for-byte what `toString('utf8')` would return.
 */
const CACHE_SIZE = 1 << 13;
const MAX_CACHED_BYTES = 64;
const stringCache: string[] = new Array<string>(CACHE_SIZE).fill('');

function decodeString(buf: Buffer, start: number, end: number): string {
  const len = end - start;
  if (len === 0) return '';
  if (len > MAX_CACHED_BYTES) return buf.toString('utf8', start, end);
  // Hash of the length and a few bytes (first, middle, last four): cheap, and the compare below checks them all.
  const last = end - 1;
  let h = Math.imul(len, 0x9e3779b1) ^ buf[start]!;
  h = Math.imul(h ^ buf[start + (len >> 1)]!, 0x01000193);
  h = Math.imul(h ^ buf[last]!, 0x01000193);
  h = Math.imul(h ^ buf[last - (len > 1 ? 1 : 0)]!, 0x01000193);
  h = Math.imul(h ^ buf[last - (len > 2 ? 2 : 0)]!, 0x01000193);
  h = Math.imul(h ^ buf[last - (len > 3 ? 3 : 0)]!, 0x01000193);
  const slot = (h ^ (h >>> 15)) & (CACHE_SIZE - 1);
  const cached = stringCache[slot]!;
  if (cached.length === len) {
    let i = 0;
    while (i < len && cached.charCodeAt(i) === buf[start + i]) i++;
    // Every byte equals an ASCII char code: the bytes are that ASCII string.
    if (i === len) return cached;
  }
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return buf.toString('utf8', start, end);
  const s = buf.toString('latin1', start, end);
  stringCache[slot] = s;
  return s;
}

class Walker {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  fail(message: string): never {
    throw new IngestError(400, `invalid protobuf ExportTraceServiceRequest: ${message} (at byte ${this.pos})`);
  }

  /** Reads a varint of up to 10 bytes and returns its low 32 bits, unsigned (protobufjs uint32). */
  varint32(end: number): number {
    const buf = this.buf;
    let pos = this.pos;
    let value = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (pos >= end) this.fail('truncated varint');
      const byte = buf[pos++];
      if (shift < 32) value |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    this.pos = pos;
    return this.fail('varint longer than 10 bytes');
  }

  /** Reads a varint int64 as a JS number, the way protobufjs' LongBits.toNumber(false) does. */
  int64(end: number): number {
    const buf = this.buf;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) this.fail('truncated varint');
      const byte = buf[pos++];
      const bits = byte & 0x7f;
      if (i < 4) lo |= bits << (i * 7);
      else if (i === 4) {
        lo |= bits << 28;
        hi |= bits >>> 4;
      } else hi |= bits << (i * 7 - 32);
      if (byte < 0x80) {
        this.pos = pos;
        lo >>>= 0;
        hi >>>= 0;
        if (hi >>> 31) {
          const nlo = (~lo + 1) >>> 0;
          let nhi = ~hi >>> 0;
          if (!nlo) nhi = (nhi + 1) >>> 0;
          return -(nlo + nhi * 4294967296);
        }
        return lo + hi * 4294967296;
      }
    }
    this.pos = pos;
    return this.fail('varint longer than 10 bytes');
  }

  /** Reads a length prefix and returns the end offset of the delimited field. */
  lenEnd(end: number): number {
    const len = this.varint32(end);
    const fieldEnd = this.pos + len;
    if (fieldEnd > end) this.fail(`length ${len} runs past the end of its message`);
    return fieldEnd;
  }

  string(end: number): string {
    const fieldEnd = this.lenEnd(end);
    const s = decodeString(this.buf, this.pos, fieldEnd);
    this.pos = fieldEnd;
    return s;
  }

  skip(wireType: number, end: number, depth: number, field: number): void {
    switch (wireType) {
      case WT_VARINT: {
        const buf = this.buf;
        let pos = this.pos;
        do {
          if (pos >= end) this.fail('truncated varint');
        } while (buf[pos++] & 0x80);
        this.pos = pos;
        return;
      }
      case WT_I64:
        if (this.pos + 8 > end) this.fail('truncated fixed64');
        this.pos += 8;
        return;
      case WT_LEN:
        this.pos = this.lenEnd(end);
        return;
      case WT_I32:
        if (this.pos + 4 > end) this.fail('truncated fixed32');
        this.pos += 4;
        return;
      case WT_SGROUP: {
        for (;;) {
          const tag = this.varint32(end);
          const nested = tag >>> 3;
          if (nested === 0) this.fail('field number 0');
          const wt = tag & 7;
          if (wt === WT_EGROUP) {
            if (nested !== field) this.fail('mismatched end-group tag');
            return;
          }
          if (depth + 1 > MAX_DEPTH) this.fail('nesting deeper than 100');
          this.skip(wt, end, depth + 1, nested);
        }
      }
      default:
        this.fail(`invalid wire type ${wireType} for field ${field}`);
    }
  }

  /** Reads a tag; rejects field number 0. */
  tag(end: number): number {
    const tag = this.varint32(end);
    if (tag >>> 3 === 0) this.fail('field number 0');
    return tag;
  }
}

function newMap(): AttributeMap {
  return Object.create(null) as AttributeMap;
}

function checkDepth(w: Walker, depth: number): void {
  if (depth > MAX_DEPTH) w.fail('nesting deeper than 100');
}

function anyValue(w: Walker, end: number, depth: number): AttributeValue {
  checkDepth(w, depth);
  // Fast paths for what serializers write: one string, int or bool member filling the value (one-byte length).
  const buf = w.buf;
  const start = w.pos;
  const first = buf[start];
  if (first === ((1 << 3) | WT_LEN)) {
    const len = buf[start + 1]!;
    if (len < 0x80 && start + 2 + len === end) {
      w.pos = end;
      return decodeString(buf, start + 2, end);
    }
  } else if (first === ((3 << 3) | WT_VARINT) || first === ((2 << 3) | WT_VARINT)) {
    w.pos = start + 1;
    const v = first === ((3 << 3) | WT_VARINT) ? w.int64(end) : w.varint32(end) !== 0;
    if (w.pos === end) return v;
    w.pos = start;
  }
  let kind = 0;
  let str = '';
  let bool = false;
  let int = 0;
  let dbl = 0;
  let arr: AttributeValue[] | undefined;
  let kv: AttributeMap | undefined;
  let bytes = '';
  // Setting a oneof member clears the others (protobufjs' oneof setter); a message member seen again
  // while still set merges (its repeated values append).
  while (w.pos < end) {
    const tag = w.tag(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === WT_LEN) {
      str = w.string(end);
      kind = 1;
      arr = kv = undefined;
    } else if (field === 2 && wt === WT_VARINT) {
      bool = w.varint32(end) !== 0;
      kind = 2;
      arr = kv = undefined;
    } else if (field === 3 && wt === WT_VARINT) {
      int = w.int64(end);
      kind = 3;
      arr = kv = undefined;
    } else if (field === 4 && wt === WT_I64) {
      if (w.pos + 8 > end) w.fail('truncated double');
      dbl = w.buf.readDoubleLE(w.pos);
      w.pos += 8;
      kind = 4;
      arr = kv = undefined;
    } else if (field === 5 && wt === WT_LEN) {
      const e = w.lenEnd(end);
      arr ??= [];
      arrayValue(w, e, depth + 1, arr);
      kind = 5;
      kv = undefined;
    } else if (field === 6 && wt === WT_LEN) {
      const e = w.lenEnd(end);
      kv ??= newMap();
      keyValueList(w, e, depth + 1, kv);
      kind = 6;
      arr = undefined;
    } else if (field === 7 && wt === WT_LEN) {
      const e = w.lenEnd(end);
      bytes = w.buf.toString('base64', w.pos, e);
      w.pos = e;
      kind = 7;
      arr = kv = undefined;
    } else w.skip(wt, end, depth, field);
  }
  switch (kind) {
    case 1:
      return str;
    case 2:
      return bool;
    case 3:
      return int;
    case 4:
      return dbl;
    case 5:
      return arr as AttributeValue[];
    case 6:
      return kv as AttributeMap;
    case 7:
      return bytes;
    default:
      return null;
  }
}

function arrayValue(w: Walker, end: number, depth: number, out: AttributeValue[]): void {
  checkDepth(w, depth);
  while (w.pos < end) {
    const tag = w.tag(end);
    if (tag === ((1 << 3) | WT_LEN)) {
      const e = w.lenEnd(end);
      out.push(anyValue(w, e, depth + 1));
      w.pos = e;
    } else w.skip(tag & 7, end, depth, tag >>> 3);
  }
}

function keyValueList(w: Walker, end: number, depth: number, out: AttributeMap): void {
  checkDepth(w, depth);
  while (w.pos < end) {
    const tag = w.tag(end);
    if (tag === ((1 << 3) | WT_LEN)) {
      const e = w.lenEnd(end);
      keyValue(w, e, depth + 1, out);
      w.pos = e;
    } else w.skip(tag & 7, end, depth, tag >>> 3);
  }
}

/** Decodes one KeyValue into `out`. */
function keyValue(w: Walker, end: number, depth: number, out: AttributeMap): void {
  checkDepth(w, depth);
  // Fast path for what serializers write: the key, then one value, both with one-byte lengths.
  const buf = w.buf;
  const start = w.pos;
  if (buf[start] === ((1 << 3) | WT_LEN)) {
    const keyEnd = start + 2 + buf[start + 1]!;
    if (buf[start + 1]! < 0x80 && keyEnd + 2 <= end && buf[keyEnd] === ((2 << 3) | WT_LEN) && buf[keyEnd + 1]! < 0x80 && keyEnd + 2 + buf[keyEnd + 1]! === end) {
      const key = decodeString(buf, start + 2, keyEnd);
      w.pos = keyEnd + 2;
      out[key] = anyValue(w, end, depth + 1);
      w.pos = end;
      return;
    }
  }
  let key = '';
  let valueStart = -1;
  let valueEnd = -1;
  let extraRanges: number[] | undefined;
  while (w.pos < end) {
    const tag = w.tag(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === WT_LEN) key = w.string(end);
    else if (field === 2 && wt === WT_LEN) {
      const e = w.lenEnd(end);
      if (valueStart === -1) {
        valueStart = w.pos;
        valueEnd = e;
      } else (extraRanges ??= []).push(w.pos, e);
      w.pos = e;
    } else w.skip(wt, end, depth, field);
  }
  let value: AttributeValue = null;
  if (valueStart !== -1) {
    if (extraRanges === undefined) {
      w.pos = valueStart;
      value = anyValue(w, valueEnd, depth + 1);
    } else {
      // A repeated singular message merges; merging equals decoding the concatenation (rare, hostile input).
      const parts = [w.buf.subarray(valueStart, valueEnd)];
      for (let i = 0; i < extraRanges.length; i += 2) parts.push(w.buf.subarray(extraRanges[i], extraRanges[i + 1]));
      const merged = new Walker(Buffer.concat(parts));
      try {
        value = anyValue(merged, merged.buf.length, depth + 1);
      } catch (err) {
        if (err instanceof IngestError) w.fail(`in a merged attribute value: ${err.message}`);
        throw err;
      }
    }
    w.pos = end;
  }
  out[key] = value;
}

function scope(w: Walker, end: number, depth: number, out: DecodedScope): void {
  checkDepth(w, depth);
  while (w.pos < end) {
    const tag = w.tag(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === WT_LEN) out.name = w.string(end);
    else if (field === 2 && wt === WT_LEN) out.version = w.string(end);
    else if (field === 3 && wt === WT_LEN) {
      const e = w.lenEnd(end);
      keyValue(w, e, depth + 1, out.attributes);
      w.pos = e;
    } else w.skip(wt, end, depth, field);
  }
}

function status(w: Walker, end: number, depth: number, span: DecodedSpan): void {
  checkDepth(w, depth);
  while (w.pos < end) {
    const tag = w.tag(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 2 && wt === WT_LEN) span.statusMessage = w.string(end);
    else if (field === 3 && wt === WT_VARINT) span.statusCode = w.varint32(end) | 0;
    else w.skip(wt, end, depth, field);
  }
}

function fixed64(w: Walker, end: number): bigint {
  if (w.pos + 8 > end) w.fail('truncated fixed64');
  const v = w.buf.readBigUInt64LE(w.pos);
  w.pos += 8;
  return v;
}

function span(w: Walker, end: number, depth: number, res: AttributeMap, sc: DecodedScope): DecodedSpan {
  checkDepth(w, depth);
  const out: DecodedSpan = {
    traceId: '',
    spanId: '',
    parentSpanId: '',
    name: '',
    kind: 0,
    startTimeUnixNano: 0n,
    endTimeUnixNano: 0n,
    attributes: newMap(),
    statusCode: 0,
    statusMessage: '',
    resource: res,
    scope: sc,
  };
  let traceStart = 0;
  let traceEnd = 0;
  let spanStart = 0;
  let spanEnd = 0;
  let parentStart = 0;
  let parentEnd = 0;
  while (w.pos < end) {
    const tag = w.tag(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 9 && wt === WT_LEN) {
      const e = w.lenEnd(end);
      keyValue(w, e, depth + 1, out.attributes);
      w.pos = e;
    } else if (field === 1 && wt === WT_LEN) {
      traceEnd = w.lenEnd(end);
      traceStart = w.pos;
      w.pos = traceEnd;
    } else if (field === 2 && wt === WT_LEN) {
      spanEnd = w.lenEnd(end);
      spanStart = w.pos;
      w.pos = spanEnd;
    } else if (field === 4 && wt === WT_LEN) {
      parentEnd = w.lenEnd(end);
      parentStart = w.pos;
      w.pos = parentEnd;
    } else if (field === 5 && wt === WT_LEN) out.name = w.string(end);
    else if (field === 6 && wt === WT_VARINT) out.kind = w.varint32(end) | 0;
    else if (field === 7 && wt === WT_I64) out.startTimeUnixNano = fixed64(w, end);
    else if (field === 8 && wt === WT_I64) out.endTimeUnixNano = fixed64(w, end);
    else if (field === 15 && wt === WT_LEN) {
      const e = w.lenEnd(end);
      status(w, e, depth + 1, out);
      w.pos = e;
    } else w.skip(wt, end, depth, field);
  }
  const buf = w.buf;
  const traceBytes = traceEnd - traceStart;
  const spanBytes = spanEnd - spanStart;
  const ids = checkIds(
    traceBytes === 16 ? buf.toString('hex', traceStart, traceEnd) : '',
    traceBytes,
    spanBytes === 8 ? buf.toString('hex', spanStart, spanEnd) : '',
    spanBytes,
  );
  out.traceId = ids.traceId;
  out.spanId = ids.spanId;
  if (ids.invalidId !== undefined) out.invalidId = ids.invalidId;
  const parentBytes = parentEnd - parentStart;
  if (parentBytes > 0 && parentBytes <= MAX_KEPT_ID_BYTES) out.parentSpanId = buf.toString('hex', parentStart, parentEnd);
  return out;
}

function scopeSpans(w: Walker, end: number, depth: number, res: AttributeMap, out: DecodedSpan[]): void {
  checkDepth(w, depth);
  const sc: DecodedScope = { name: '', version: '', attributes: newMap() };
  while (w.pos < end) {
    const tag = w.tag(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 2 && wt === WT_LEN) {
      const e = w.lenEnd(end);
      out.push(span(w, e, depth + 1, res, sc));
      w.pos = e;
    } else if (field === 1 && wt === WT_LEN) {
      const e = w.lenEnd(end);
      scope(w, e, depth + 1, sc);
      w.pos = e;
    } else w.skip(wt, end, depth, field);
  }
}

function resourceSpans(w: Walker, end: number, depth: number, out: DecodedSpan[]): void {
  checkDepth(w, depth);
  const res = newMap();
  while (w.pos < end) {
    const tag = w.tag(end);
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 2 && wt === WT_LEN) {
      const e = w.lenEnd(end);
      scopeSpans(w, e, depth + 1, res, out);
      w.pos = e;
    } else if (field === 1 && wt === WT_LEN) {
      const e = w.lenEnd(end);
      // Resource { repeated KeyValue attributes = 1 }: the same wire shape as KeyValueList.
      keyValueList(w, e, depth + 1, res);
      w.pos = e;
    } else w.skip(wt, end, depth, field);
  }
}

/** Decodes a protobuf ExportTraceServiceRequest. Throws IngestError(400) on malformed input. */
export function walkTraceRequest(buf: Buffer): DecodedTraces {
  const w = new Walker(buf);
  const spans: DecodedSpan[] = [];
  let resourceSpansCount = 0;
  const end = buf.length;
  while (w.pos < end) {
    const tag = w.tag(end);
    if (tag === ((1 << 3) | WT_LEN)) {
      const e = w.lenEnd(end);
      resourceSpans(w, e, 1, spans);
      w.pos = e;
      resourceSpansCount++;
    } else w.skip(tag & 7, end, 0, tag >>> 3);
  }
  return { spans, resourceSpansCount };
}
