import type { Attributes, AttributeValue, Span } from '@opentelemetry/api';

/*
 * The OpenTelemetry SDK checks every attribute set on a span: `startSpan` cleans its attributes and each
 * `setAttribute` checks its value again (OpenTelemetry JS 3.x builds a WeakSet and an options object per
 * attribute to do so). That was over a microsecond per LLM call for the ~15 attributes tokenmeter sets, about as
 * much as the span itself costs on Node 24. The values tokenmeter builds itself are plain strings, numbers,
 * booleans and string arrays: they are written straight into the SDK span's attribute object here, with exactly
 * the limits `setAttribute` applies (OTEL_ATTRIBUTE_COUNT_LIMIT / OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: a new key
 * past the limit is dropped and counted; OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT / OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT:
 * strings, and the strings of an array, are cut to the limit). Anything else (a value of another type, a span
 * that is not the SDK's, an ended span, a limit the SDK itself would warn about, a key past the count limit) goes
 * through the span's own `setAttribute`, so the SDK decides and warns as it always does.
 */

/** The fields `setAttribute` reads and writes on the SDK's span (OpenTelemetry JS 2.x and 3.x). */
interface SdkSpanFields {
  attributes: Record<string, AttributeValue>;
  _attributesCount: number;
  _ended: boolean;
  _spanLimits: { attributeCountLimit?: number; attributeValueLengthLimit?: number };
}

/** The SDK span's fields when `span` has exactly the shape this module writes, else undefined. */
function sdkFields(span: Span): SdkSpanFields | undefined {
  const s = span as unknown as Partial<SdkSpanFields>;
  const attributes = s.attributes;
  const limits = s._spanLimits;
  if (
    s._ended !== false ||
    typeof s._attributesCount !== 'number' ||
    attributes === null ||
    typeof attributes !== 'object' ||
    limits === null ||
    typeof limits !== 'object'
  ) {
    return undefined;
  }
  return s as SdkSpanFields;
}

function cut(value: string, limit: number): string {
  return value.length <= limit ? value : value.substring(0, limit);
}

/** A copy of an all-strings array cut to `limit`, or undefined for any other array (the SDK checks those). */
function stringArray(value: readonly unknown[], limit: number): string[] | undefined {
  const out = new Array<string>(value.length);
  for (let i = 0; i < value.length; i++) {
    const v = value[i];
    if (typeof v !== 'string') return undefined;
    out[i] = cut(v, limit);
  }
  return out;
}

/**
 * Sets `attrs` on `span` as `span.setAttributes(attrs)` would, without the SDK re-checking values tokenmeter
 * built. Undefined values are skipped, as the SDK skips them.
 */
export function addSpanAttributes(span: Span, attrs: Attributes): void {
  const fields = sdkFields(span);
  if (fields === undefined) {
    span.setAttributes(attrs);
    return;
  }
  const target = fields.attributes;
  const countLimit = fields._spanLimits.attributeCountLimit;
  const lengthLimit = fields._spanLimits.attributeValueLengthLimit;
  // A missing or non-positive length limit makes the SDK warn and not cut: its own path says so.
  const fast = typeof lengthLimit === 'number' && lengthLimit > 0;
  for (const key in attrs) {
    const value = attrs[key];
    if (value === undefined) continue;
    if (!fast || key.length === 0) {
      span.setAttribute(key, value);
      continue;
    }
    const isNew = !Object.prototype.hasOwnProperty.call(target, key);
    if (isNew && countLimit !== undefined && fields._attributesCount >= countLimit) {
      // Past the count limit: the SDK drops it and counts (and, in 3.x, warns once).
      span.setAttribute(key, value);
      continue;
    }
    let stored: AttributeValue | undefined;
    switch (typeof value) {
      case 'string':
        stored = cut(value, lengthLimit);
        break;
      case 'number':
      case 'boolean':
        stored = value;
        break;
      default:
        stored = Array.isArray(value) ? stringArray(value, lengthLimit) : undefined;
    }
    if (stored === undefined) {
      span.setAttribute(key, value);
      continue;
    }
    target[key] = stored;
    if (isNew) fields._attributesCount++;
  }
}
