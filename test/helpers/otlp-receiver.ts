import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/*
 * A minimal OTLP/HTTP receiver for tests: records every request body, answers 200 with an empty JSON/protobuf
 * success. `spans()` and `metrics()` decode OTLP/JSON bodies (export with OTEL_EXPORTER_OTLP_PROTOCOL=http/json).
 */

export interface ReceivedRequest {
  path: string;
  contentType: string;
  body: Buffer;
}

export type PlainValue = string | number | boolean | PlainValue[] | undefined;

export interface ReceivedSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  attributes: Record<string, PlainValue>;
  resource: Record<string, PlainValue>;
  scope: string;
  status: { code?: number; message?: string };
}

export interface ReceivedHistogramPoint {
  metric: string;
  unit: string;
  attributes: Record<string, PlainValue>;
  count: number;
  sum: number;
  explicitBounds: number[];
}

export interface OtlpReceiver {
  url: string;
  requests: ReceivedRequest[];
  spans(): ReceivedSpan[];
  histograms(): ReceivedHistogramPoint[];
  close(): Promise<void>;
}

interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: AnyValue[] };
}

function plain(v: AnyValue | undefined): PlainValue {
  if (v === undefined) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(plain);
  return undefined;
}

function attrs(list: Array<{ key: string; value: AnyValue }> | undefined): Record<string, PlainValue> {
  const out: Record<string, PlainValue> = {};
  for (const kv of list ?? []) out[kv.key] = plain(kv.value);
  return out;
}

function jsonBodies(requests: ReceivedRequest[], path: string): any[] {
  return requests.filter((r) => r.path === path && r.contentType.includes('json')).map((r) => JSON.parse(r.body.toString('utf8')));
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const requests: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const contentType = String(req.headers['content-type'] ?? '');
      requests.push({ path: (req.url ?? '/').split('?')[0], contentType, body });
      if (contentType.includes('json')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{}');
      } else {
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    spans() {
      const out: ReceivedSpan[] = [];
      for (const body of jsonBodies(requests, '/v1/traces')) {
        for (const rs of body.resourceSpans ?? []) {
          const resource = attrs(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              out.push({
                name: s.name,
                kind: s.kind,
                traceId: s.traceId,
                spanId: s.spanId,
                attributes: attrs(s.attributes),
                resource,
                scope: ss.scope?.name ?? '',
                status: s.status ?? {},
              });
            }
          }
        }
      }
      return out;
    },
    histograms() {
      const out: ReceivedHistogramPoint[] = [];
      for (const body of jsonBodies(requests, '/v1/metrics')) {
        for (const rm of body.resourceMetrics ?? []) {
          for (const sm of rm.scopeMetrics ?? []) {
            for (const m of sm.metrics ?? []) {
              for (const p of m.histogram?.dataPoints ?? []) {
                out.push({
                  metric: m.name,
                  unit: m.unit ?? '',
                  attributes: attrs(p.attributes),
                  count: Number(p.count),
                  sum: Number(p.sum),
                  explicitBounds: p.explicitBounds ?? [],
                });
              }
            }
          }
        }
      }
      return out;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
