import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExportTraceServiceRequest } from '../../src/ingest/otlp-proto.js';
import { decodeTraceRequestReference } from '../../src/ingest/trace-proto-reference.js';
import { walkTraceRequest } from '../../src/ingest/trace-proto-walker.js';

/**
 * The walker remembers recently decoded short ASCII strings by a hash of a few of their bytes, and hands a
 * remembered string back when all the bytes match. These bodies are made to collide: strings of every length
 * around the cache's bounds that differ only in the bytes the hash does not read, non-ASCII strings with the
 * same length and hash, empty strings. Every body must decode exactly as protobufjs over the official
 * definitions decodes it, in any order of decoding.
 */

function body(keys: string[], values: string[]): Buffer {
  const attributes = keys.map((key, i) => ({ key, value: { stringValue: values[i % values.length] } }));
  const span = { traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2), name: values[0], attributes };
  const req = { resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ scope: { name: keys[0], version: '' }, spans: [span] }] }] };
  return Buffer.from(ExportTraceServiceRequest.encode(ExportTraceServiceRequest.fromObject(req)).finish());
}

/** A string of `len` chars where position `at` (not first, middle or last four) is `c`. */
function variant(len: number, at: number, c: string): string {
  const chars = Array.from({ length: len }, (_, i) => String.fromCharCode(97 + (i % 26)));
  if (at > 0 && at < len) chars[at] = c;
  return chars.join('');
}

const alphabet = ['a', 'b', 'é', '\u0000', '\u007f', '\u0080', '€', '😀', ' ', '"'];
const stringArb = fc.oneof(
  fc.array(fc.constantFrom(...alphabet), { maxLength: 70 }).map((a) => a.join('')),
  fc.tuple(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 1, max: 3 }), fc.constantFrom('x', 'y', 'é', '\u0080')).map(([len, at, c]) => variant(len, at, c)),
);

describe('the walker’s string cache', () => {
  it('never hands back a string for other bytes (colliding variants of every length)', () => {
    const strings: string[] = [''];
    for (let len = 1; len <= 70; len++) for (const c of ['x', 'y', 'z', 'é']) strings.push(variant(len, 1, c), variant(len, 2, c));
    // Decode in two orders so that each variant is both a hit and a miss against the others.
    for (const order of [strings, [...strings].reverse()]) {
      for (let i = 0; i < order.length; i++) {
        const b = body([order[i]!, order[(i + 1) % order.length]!], [order[(i + 2) % order.length]!, order[i]!]);
        expect(walkTraceRequest(b).spans).toEqual(decodeTraceRequestReference(b).spans);
      }
    }
  });

  it('decodes random keys and values exactly as protobufjs, whatever was decoded before', () => {
    fc.assert(
      fc.property(fc.array(stringArb, { minLength: 1, maxLength: 8 }), fc.array(stringArb, { minLength: 1, maxLength: 8 }), (keys, values) => {
        const b = body(keys, values);
        expect(walkTraceRequest(b).spans).toEqual(decodeTraceRequestReference(b).spans);
      }),
      { numRuns: 1500 },
    );
  });
});
