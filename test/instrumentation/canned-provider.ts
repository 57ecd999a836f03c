/**
 * A local server answering each request with what a test set for its path (query left out): a JSON body, or SSE
 * events for a stream (with `event:` lines on Anthropic's /v1/messages). For tests that need one exact provider
 * reply rather than the mock providers' generated ones. Also: the one span a call recorded, through the exporter's
 * own OTLP decoding and extraction.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { decodeTraceRequest, extractUsage } from '../../src/ingest/index.js';
import { protobufBody } from '../ingest/otel-spans.js';
import type { Harness } from './harness.js';

export interface CannedProvider {
  baseUrl: string;
  /** What the server answers next, by path: a JSON body. */
  replies: Record<string, unknown>;
  /** ... or, by path, the events of a stream (checked first). */
  streams: Record<string, unknown[]>;
  close(): Promise<void>;
}

export async function startCannedProvider(): Promise<CannedProvider> {
  const replies: Record<string, unknown> = {};
  const streams: Record<string, unknown[]> = {};
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0]!;
      const events = streams[path];
      if (events !== undefined) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const e of events) {
          const type = (e as { type?: unknown }).type;
          res.write(`${typeof type === 'string' && path === '/v1/messages' ? `event: ${type}\n` : ''}data: ${JSON.stringify(e)}\n\n`);
        }
        res.end();
        return;
      }
      const body = replies[path];
      res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body ?? { error: { message: 'no reply set' } }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    replies,
    streams,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The one span the harness holds, as the exporter decodes and extracts it. */
export function extractedSpan(h: Harness) {
  const spans = h.finished();
  expect(spans).toHaveLength(1);
  const decoded = decodeTraceRequest(protobufBody(spans), 'application/x-protobuf', undefined, { maxDecompressedBytes: 1 << 20 });
  const r = extractUsage(decoded.spans[0]!);
  if (r.kind !== 'usage') throw new Error(`not usage: ${JSON.stringify(r)}`);
  return { attrs: spans[0]!.attributes, record: r.record };
}
