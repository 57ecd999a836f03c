import { IngestError } from './errors.js';
import { checkIds, jsonHexId } from './ids.js';
import type { AttributeMap, AttributeValue, DecodedScope, DecodedSpan, DecodedTraces } from './types.js';

/**
 * OTLP/JSON (the protobuf JSON mapping with OTLP's exceptions): lowerCamelCase keys, trace and span ids as
 * hex strings, enums as integers (names accepted too), 64-bit integers as decimal strings or numbers,
 * bytes as base64. Unknown keys are ignored and `null` means absent, as the mapping says. A value of the
 * wrong type is a 400 naming its path.
 */

/** Same nesting limit as the protobuf path (protobufjs' recursion limit). */
const MAX_DEPTH = 100;
const UINT64_MAX = 18446744073709551615n;
const DIGITS_RE = /^[0-9]+$/;
const INT_RE = /^-?[0-9]+$/;

const SPAN_KINDS: Record<string, number> = {
  SPAN_KIND_UNSPECIFIED: 0,
  SPAN_KIND_INTERNAL: 1,
  SPAN_KIND_SERVER: 2,
  SPAN_KIND_CLIENT: 3,
  SPAN_KIND_PRODUCER: 4,
  SPAN_KIND_CONSUMER: 5,
};
const STATUS_CODES: Record<string, number> = { STATUS_CODE_UNSET: 0, STATUS_CODE_OK: 1, STATUS_CODE_ERROR: 2 };

export class JsonPath {
  private readonly parts: (string | number)[] = [];
  constructor(private readonly what: string) {}
  push(p: string | number): void {
    this.parts.push(p);
  }
  pop(): void {
    this.parts.pop();
  }
  fail(message: string): never {
    let path = '';
    for (const p of this.parts) path += typeof p === 'number' ? `[${p}]` : path === '' ? p : `.${p}`;
    throw new IngestError(400, `invalid OTLP/JSON ${this.what}: ${path === '' ? '(root)' : path}: ${message}`);
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? 'a string' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The array at key, [] when absent or null; 400 for another type. */
export function arrayAt(obj: Record<string, unknown>, key: string, path: JsonPath): unknown[] {
  const v = obj[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    path.push(key);
    path.fail(`expected an array, got ${typeName(v)}`);
  }
  return v;
}

/** The object at key, undefined when absent or null; 400 for another type. */
export function objectAt(obj: Record<string, unknown>, key: string, path: JsonPath): Record<string, unknown> | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) {
    path.push(key);
    path.fail(`expected an object, got ${typeName(v)}`);
  }
  return v;
}

export function stringAt(obj: Record<string, unknown>, key: string, path: JsonPath): string {
  const v = obj[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') {
    path.push(key);
    path.fail(`expected a string, got ${typeName(v)}`);
  }
  return v;
}

export function elementObject(arr: unknown[], i: number, path: JsonPath): Record<string, unknown> {
  const v = arr[i];
  if (!isObject(v)) {
    path.push(i);
    path.fail(`expected an object, got ${typeName(v)}`);
  }
  return v;
}

function enumAt(obj: Record<string, unknown>, key: string, names: Record<string, number>, path: JsonPath): number {
  const v = obj[key];
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647) return v;
  if (typeof v === 'string' && Object.hasOwn(names, v)) return names[v];
  path.push(key);
  return path.fail(`expected an enum integer, got ${typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : typeName(v)}`);
}

function uint64At(obj: Record<string, unknown>, key: string, path: JsonPath): bigint {
  const v = obj[key];
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'string' && DIGITS_RE.test(v) && v.length <= 20) {
    const n = BigInt(v);
    if (n <= UINT64_MAX) return n;
  } else if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 64) {
    return BigInt(v);
  }
  path.push(key);
  return path.fail(`expected an unsigned 64-bit integer (decimal string), got ${typeName(v)}`);
}

function idAt(obj: Record<string, unknown>, key: string, path: JsonPath): { hex: string; bytes: number } {
  const v = obj[key];
  if (v === undefined || v === null) return { hex: '', bytes: 0 };
  if (typeof v !== 'string') {
    path.push(key);
    path.fail(`expected a hex string, got ${typeName(v)}`);
  }
  return jsonHexId(v);
}

function anyValue(v: unknown, depth: number, path: JsonPath): AttributeValue {
  if (v === undefined || v === null) return null;
  if (!isObject(v)) path.fail(`expected an AnyValue object, got ${typeName(v)}`);
  if (depth > MAX_DEPTH) path.fail('attribute value nested deeper than 100 levels');
  // The oneof: the first member present wins (a well-formed AnyValue has at most one).
  let x = v.stringValue;
  if (x !== undefined && x !== null) {
    if (typeof x !== 'string') {
      path.push('stringValue');
      path.fail(`expected a string, got ${typeName(x)}`);
    }
    return x;
  }
  x = v.boolValue;
  if (x !== undefined && x !== null) {
    if (typeof x !== 'boolean') {
      path.push('boolValue');
      path.fail(`expected a boolean, got ${typeName(x)}`);
    }
    return x;
  }
  x = v.intValue;
  if (x !== undefined && x !== null) {
    if (typeof x === 'number' && Number.isInteger(x)) return x;
    if (typeof x === 'string' && INT_RE.test(x) && x.length <= 20) return Number(x);
    path.push('intValue');
    return path.fail(`expected a 64-bit integer (decimal string or number), got ${typeName(x)}`);
  }
  x = v.doubleValue;
  if (x !== undefined && x !== null) {
    if (typeof x === 'number') return x;
    if (x === 'NaN') return NaN;
    if (x === 'Infinity') return Infinity;
    if (x === '-Infinity') return -Infinity;
    path.push('doubleValue');
    return path.fail(`expected a number, got ${typeName(x)}`);
  }
  x = v.arrayValue;
  if (x !== undefined && x !== null) {
    path.push('arrayValue');
    if (!isObject(x)) path.fail(`expected an object, got ${typeName(x)}`);
    const values = arrayAt(x, 'values', path);
    const out: AttributeValue[] = new Array<AttributeValue>(values.length);
    path.push('values');
    for (let i = 0; i < values.length; i++) {
      path.push(i);
      out[i] = anyValue(values[i], depth + 2, path);
      path.pop();
    }
    path.pop();
    path.pop();
    return out;
  }
  x = v.kvlistValue;
  if (x !== undefined && x !== null) {
    path.push('kvlistValue');
    if (!isObject(x)) path.fail(`expected an object, got ${typeName(x)}`);
    const out = Object.create(null) as AttributeMap;
    keyValues(arrayAt(x, 'values', path), 'values', out, depth + 2, path);
    path.pop();
    return out;
  }
  x = v.bytesValue;
  if (x !== undefined && x !== null) {
    if (typeof x !== 'string') {
      path.push('bytesValue');
      path.fail(`expected a base64 string, got ${typeName(x)}`);
    }
    return x;
  }
  return null;
}

/** Decodes a KeyValue array into `out` (last duplicate key wins). */
export function keyValues(list: unknown[], key: string, out: AttributeMap, depth: number, path: JsonPath): void {
  path.push(key);
  for (let i = 0; i < list.length; i++) {
    const kv = elementObject(list, i, path);
    path.push(i);
    const k = stringAt(kv, 'key', path);
    path.push('value');
    out[k] = anyValue(kv.value, depth + 1, path);
    path.pop();
    path.pop();
  }
  path.pop();
}

function jsonSpan(s: Record<string, unknown>, res: AttributeMap, sc: DecodedScope, path: JsonPath): DecodedSpan {
  const trace = idAt(s, 'traceId', path);
  const spanId = idAt(s, 'spanId', path);
  const parent = idAt(s, 'parentSpanId', path);
  const ids = checkIds(trace.bytes === 16 ? trace.hex : '', trace.bytes, spanId.bytes === 8 ? spanId.hex : '', spanId.bytes);
  const attributes = Object.create(null) as AttributeMap;
  keyValues(arrayAt(s, 'attributes', path), 'attributes', attributes, 4, path);
  const status = objectAt(s, 'status', path);
  let statusCode = 0;
  let statusMessage = '';
  if (status !== undefined) {
    path.push('status');
    statusCode = enumAt(status, 'code', STATUS_CODES, path);
    statusMessage = stringAt(status, 'message', path);
    path.pop();
  }
  const out: DecodedSpan = {
    traceId: ids.traceId,
    spanId: ids.spanId,
    parentSpanId: parent.bytes > 0 ? parent.hex : '',
    name: stringAt(s, 'name', path),
    kind: enumAt(s, 'kind', SPAN_KINDS, path),
    startTimeUnixNano: uint64At(s, 'startTimeUnixNano', path),
    endTimeUnixNano: uint64At(s, 'endTimeUnixNano', path),
    attributes,
    statusCode,
    statusMessage,
    resource: res,
    scope: sc,
  };
  if (ids.invalidId !== undefined) out.invalidId = ids.invalidId;
  return out;
}

/** Decodes a parsed OTLP/JSON ExportTraceServiceRequest. */
export function jsonTraceRequest(root: unknown): DecodedTraces {
  const path = new JsonPath('ExportTraceServiceRequest');
  if (!isObject(root)) return path.fail(`expected an object, got ${typeName(root)}`);
  const spans: DecodedSpan[] = [];
  const rss = arrayAt(root, 'resourceSpans', path);
  path.push('resourceSpans');
  for (let i = 0; i < rss.length; i++) {
    const rs = elementObject(rss, i, path);
    path.push(i);
    const res = Object.create(null) as AttributeMap;
    const resource = objectAt(rs, 'resource', path);
    if (resource !== undefined) {
      path.push('resource');
      keyValues(arrayAt(resource, 'attributes', path), 'attributes', res, 3, path);
      path.pop();
    }
    const sss = arrayAt(rs, 'scopeSpans', path);
    path.push('scopeSpans');
    for (let j = 0; j < sss.length; j++) {
      const ss = elementObject(sss, j, path);
      path.push(j);
      const sc: DecodedScope = { name: '', version: '', attributes: Object.create(null) as AttributeMap };
      const scope = objectAt(ss, 'scope', path);
      if (scope !== undefined) {
        path.push('scope');
        sc.name = stringAt(scope, 'name', path);
        sc.version = stringAt(scope, 'version', path);
        keyValues(arrayAt(scope, 'attributes', path), 'attributes', sc.attributes, 4, path);
        path.pop();
      }
      const list = arrayAt(ss, 'spans', path);
      path.push('spans');
      for (let k = 0; k < list.length; k++) {
        const s = elementObject(list, k, path);
        path.push(k);
        spans.push(jsonSpan(s, res, sc, path));
        path.pop();
      }
      path.pop();
      path.pop();
    }
    path.pop();
    path.pop();
  }
  return { spans, resourceSpansCount: rss.length };
}
