/**
 * An ingest worker thread (started by ingest-workers.ts): decompresses and decodes OTLP trace requests, extracts
 * the usage records and prices them into ledger records, with the same modules and the same configuration as the
 * main thread. It holds no state across requests that billing depends on (supersede, dedup and the commit stay on
 * the main thread), so a crash loses nothing: the main thread answers the requests it held 503 + Retry-After.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { IngestError, decodeTraceRequest, extractUsage, type DecodedSpan } from '../ingest/index.js';
import { BillingCalendar, PlanResolver } from '../plans/index.js';
import { PeriodStarts, prepareSpans, type PrepareContext } from './pipeline.js';
import { packSpans } from './prepared-codec.js';
import { priceBookOf } from './price-reload.js';
import type { PlanPort } from './ports.js';
import type { IngestWorkerData, ToIngestWorker, FromIngestWorker } from './ingest-workers.js';

const port = parentPort;
if (port === null) throw new Error('ingest-worker.ts runs as a worker thread (ingest-workers.ts starts it)');

const data = workerData as IngestWorkerData;
const resolver = new PlanResolver(data.plans, data.users);
const calendar = new BillingCalendar(data.period);
// Only what prepareSpans reads (planFor, periodFor); limits and plan names are the main thread's business.
const plans: PlanPort = {
  planFor: (user, spanPlan) => resolver.planFor(user, spanPlan),
  limitsFor: (user, plan) => resolver.limitsFor(user, plan),
  periodFor: (at) => calendar.periodFor(at),
  planNames: () => resolver.planNames(),
};
const context: PrepareContext<DecodedSpan> = {
  extract: extractUsage,
  plans,
  // A source the main thread validated builds here too; if it did not, the throw ends this thread and the pool
  // answers 503 rather than price with stale prices.
  pricing: priceBookOf(data.pricing),
  periods: new PeriodStarts(plans),
  chargeWindow: data.chargeWindow,
};
const decodeOptions = { maxDecompressedBytes: data.maxDecompressedBytes };

const post = (m: FromIngestWorker) => port.postMessage(m);

port.on('message', (m: ToIngestWorker) => {
  if (m.t === 'pricing') {
    // Messages are handled in order: every request posted after this one is priced with the new book.
    context.pricing = priceBookOf(m.source);
    return;
  }
  let spans: DecodedSpan[];
  try {
    const body = Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength);
    spans = decodeTraceRequest(body, m.contentType, m.contentEncoding, decodeOptions).spans;
  } catch (err) {
    if (err instanceof IngestError) post({ t: 'refused', id: m.id, status: err.status, message: err.message });
    else post({ t: 'failed', id: m.id, message: err instanceof Error ? err.message : String(err) });
    return;
  }
  try {
    const packed = packSpans(prepareSpans(spans, context, m.arrivalMillis));
    port.postMessage({ t: 'prepared', id: m.id, packed } satisfies FromIngestWorker, [packed.slots.buffer as ArrayBuffer, packed.nums.buffer as ArrayBuffer]);
  } catch (err) {
    post({ t: 'failed', id: m.id, message: err instanceof Error ? err.message : String(err) });
  }
});
post({ t: 'ready' });
