import { IngestError } from './errors.js';
import { ExportMetricsServiceRequest } from './otlp-proto.js';
import { arrayAt, elementObject, isObject, JsonPath, objectAt, stringAt } from './trace-json.js';
import type { DecodedMetrics } from './types.js';

/**
 * `POST /v1/metrics` is accepted, validated and counted, never priced: spans are the one source of truth
 * for usage. The same call usually arrives both as a span and as `gen_ai.client.token.usage` histogram
 * points; pricing both would count it twice, and metric points carry no span identity to deduplicate by.
 */

const DATA_KINDS = ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'] as const;

type Msg = Record<string, unknown>;

export function protobufMetricsRequest(buf: Buffer): DecodedMetrics {
  let req: Msg;
  try {
    req = ExportMetricsServiceRequest.decode(buf) as unknown as Msg;
  } catch (err) {
    throw new IngestError(400, `invalid protobuf ExportMetricsServiceRequest: ${err instanceof Error ? err.message : String(err)}`);
  }
  const rms = (req.resourceMetrics as Msg[] | undefined) ?? [];
  let metricCount = 0;
  let dataPointCount = 0;
  for (const rm of rms) {
    for (const sm of (rm.scopeMetrics as Msg[] | undefined) ?? []) {
      for (const m of (sm.metrics as Msg[] | undefined) ?? []) {
        metricCount++;
        const which = m.data as (typeof DATA_KINDS)[number] | undefined;
        if (which === undefined) continue;
        const points = (m[which] as Msg | undefined)?.dataPoints as unknown[] | undefined;
        dataPointCount += points?.length ?? 0;
      }
    }
  }
  return { resourceMetricsCount: rms.length, metricCount, dataPointCount };
}

export function jsonMetricsRequest(root: unknown): DecodedMetrics {
  const path = new JsonPath('ExportMetricsServiceRequest');
  if (!isObject(root)) return path.fail('expected an object');
  const rms = arrayAt(root, 'resourceMetrics', path);
  let metricCount = 0;
  let dataPointCount = 0;
  path.push('resourceMetrics');
  for (let i = 0; i < rms.length; i++) {
    const rm = elementObject(rms, i, path);
    path.push(i);
    objectAt(rm, 'resource', path);
    const sms = arrayAt(rm, 'scopeMetrics', path);
    path.push('scopeMetrics');
    for (let j = 0; j < sms.length; j++) {
      const sm = elementObject(sms, j, path);
      path.push(j);
      objectAt(sm, 'scope', path);
      const ms = arrayAt(sm, 'metrics', path);
      path.push('metrics');
      for (let k = 0; k < ms.length; k++) {
        const m = elementObject(ms, k, path);
        path.push(k);
        stringAt(m, 'name', path);
        metricCount++;
        for (const kind of DATA_KINDS) {
          const data = objectAt(m, kind, path);
          if (data === undefined) continue;
          path.push(kind);
          const points = arrayAt(data, 'dataPoints', path);
          path.push('dataPoints');
          for (let p = 0; p < points.length; p++) elementObject(points, p, path);
          path.pop();
          dataPointCount += points.length;
          path.pop();
        }
        path.pop();
      }
      path.pop();
      path.pop();
    }
    path.pop();
    path.pop();
  }
  return { resourceMetricsCount: rms.length, metricCount, dataPointCount };
}
