import type { DecodedSpan } from '../../src/ingest/index.js';
import type { AttributeMap, AttributeValue } from '../../src/ingest/types.js';

const map = (values: Record<string, AttributeValue>): AttributeMap => Object.assign(Object.create(null) as AttributeMap, values);

/**
 * A span as the decoder hands it to extraction: a client `chat` span of 0.5 s from tokenmeter's scope, with
 * `attributes` (and `resource`) as null-prototype maps like the decoder's; `extra` replaces any field.
 */
export function decodedSpan(attributes: Record<string, AttributeValue>, extra: Partial<DecodedSpan> = {}, resource: Record<string, AttributeValue> = {}): DecodedSpan {
  return {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    parentSpanId: '',
    name: 'chat',
    kind: 3,
    startTimeUnixNano: 1_700_000_000_000_000_000n,
    endTimeUnixNano: 1_700_000_000_500_000_000n,
    attributes: map(attributes),
    statusCode: 0,
    statusMessage: '',
    resource: map(resource),
    scope: { name: 'tokenmeter', version: '0.1.0', attributes: map({}) },
    ...extra,
  };
}
