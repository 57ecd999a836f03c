import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ExporterMetrics } from './metrics.js';
import { BodyReadError, BodyTooLargeError, bearerMatches, mediaType, readBody } from './http-util.js';
import { OTLP_CONTENT_TYPE, encodeExportResponse, encodeStatus, grpcCodeFor, type OtlpFormat, type OtlpSignal } from './otlp-response.js';
import { IngestWorkerUnavailable } from './ingest-workers.js';
import { LedgerUnavailable, type AckOutcome, type Pipeline, type PreparedSpan, type SpanOutcomes } from './pipeline.js';

/** What the OTLP receiver needs from the decoders (src/ingest). */
export interface OtlpDecoders<S> {
  decodeTraces(body: Buffer, contentType: string | undefined, contentEncoding: string | undefined): { spans: S[] };
  decodeMetrics(body: Buffer, contentType: string | undefined, contentEncoding: string | undefined): { dataPointCount: number };
  /** HTTP status carried by a decoder error (400, 413, 415), or undefined for an unexpected error. */
  statusOf(err: unknown): number | undefined;
}

/** Trace requests prepared off the main thread (ingest-workers.ts): decode, extraction and pricing. */
export interface TraceOffload {
  /** Rejects with a decoder error (its status via OtlpDecoders.statusOf), IngestWorkerUnavailable (503) or a bug (500). */
  prepareTraces(body: Buffer, contentType: string | undefined, contentEncoding: string | undefined, arrivalMillis: number): Promise<PreparedSpan[]>;
}

export interface OtlpHandlerOptions<S> {
  /** Where trace requests are prepared when not on this thread; undefined (or returning undefined): in-process. */
  offload?: () => TraceOffload | undefined;
  metrics: ExporterMetrics;
  pipeline: Pipeline<S>;
  decoders: OtlpDecoders<S>;
  maxRequestBytes: number;
  ingestToken?: string;
  retryAfterSeconds: number;
  log: (message: string) => void;
  /** Called around each request so shutdown can wait for commits in flight. */
  track: <T>(work: Promise<T>) => Promise<T>;
}

const PATHS: Record<string, OtlpSignal> = { '/v1/traces': 'traces', '/v1/metrics': 'metrics' };

function formatOf(contentType: string | undefined): OtlpFormat | undefined {
  const t = mediaType(contentType);
  if (t === 'application/x-protobuf') return 'protobuf';
  if (t === 'application/json') return 'json';
  return undefined;
}

/** The OTLP/HTTP receiver: POST /v1/traces and /v1/metrics. */
export function createOtlpHandler<S>(o: OtlpHandlerOptions<S>): (req: IncomingMessage, res: ServerResponse) => void {
  const fail = (res: ServerResponse, format: OtlpFormat, status: number, reason: string, message: string, headers: Record<string, string> = {}) => {
    o.metrics.countRejectedRequest(reason);
    const body = encodeStatus(format, grpcCodeFor(status), message);
    if (!res.headersSent) {
      res.writeHead(status, { 'content-type': OTLP_CONTENT_TYPE[format], 'content-length': body.length, ...headers });
      res.end(body);
    }
  };

  /** `requested`: the encoding the Content-Type names; errors about other requests are answered in JSON. */
  const handle = async (req: IncomingMessage, res: ServerResponse, requested: OtlpFormat | undefined): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    const signal = PATHS[path];
    const format = requested ?? 'json';
    if (!signal) {
      fail(res, format, 404, 'not_found', `no OTLP endpoint at ${path.slice(0, 100)}: use POST /v1/traces or /v1/metrics`);
      return;
    }
    if (req.method !== 'POST') {
      fail(res, format, 405, 'method_not_allowed', `${req.method} not allowed: use POST`, { allow: 'POST' });
      return;
    }
    if (o.ingestToken !== undefined && !bearerMatches(req.headers.authorization, o.ingestToken)) {
      fail(res, format, 401, 'unauthorized', 'missing or wrong bearer token', { 'www-authenticate': 'Bearer', connection: 'close' });
      return;
    }
    if (requested === undefined) {
      // Refused before reading the body.
      fail(res, 'json', 415, 'unsupported_media_type', 'unsupported Content-Type: use application/x-protobuf or application/json', { connection: 'close' });
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req, o.maxRequestBytes);
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        fail(res, format, 413, 'too_large', err.message, { connection: 'close' });
      } else if (err instanceof BodyReadError) {
        o.metrics.countRejectedRequest('read_error');
        res.destroy();
      } else throw err;
      return;
    }

    const contentType = req.headers['content-type'];
    const contentEncoding = req.headers['content-encoding'];
    if (signal === 'metrics') {
      try {
        o.decoders.decodeMetrics(body, contentType, contentEncoding);
      } catch (err) {
        const status = o.decoders.statusOf(err) ?? 400;
        fail(res, format, status, reasonFor(status), errorMessage(err));
        return;
      }
      // gen_ai metrics are accepted but not priced: spans are the one source of usage (no double counting).
      sendExport(res, 'metrics', format);
      return;
    }

    // Acknowledged as soon as the ledger has the records durably (the pipeline calls this once, before it moves
    // the metrics in the same turn), not after the ledger and the metrics have finished their bookkeeping.
    const ack = (outcome: AckOutcome) => {
      const partial =
        outcome.rejected > 0
          ? { rejected: outcome.rejected, errorMessage: `${outcome.rejected} span(s) rejected: ${outcome.messages.join('; ')}`.slice(0, 1000) }
          : undefined;
      sendExport(res, 'traces', format, partial);
    };
    let processing: Promise<SpanOutcomes>;
    const offload = o.offload?.();
    if (offload === undefined) {
      // Block-scoped and dead once handed over: not held while the commit is awaited, so the decoded spans can be
      // collected young (see Pipeline.process).
      let spans: S[];
      try {
        spans = o.decoders.decodeTraces(body, contentType, contentEncoding).spans;
      } catch (err) {
        const status = o.decoders.statusOf(err) ?? 400;
        fail(res, format, status, reasonFor(status), errorMessage(err));
        return;
      }
      processing = o.pipeline.process(spans, ack);
    } else {
      const arrival = o.pipeline.arrivalMillis();
      let prepared: PreparedSpan[];
      try {
        prepared = await offload.prepareTraces(body, contentType, contentEncoding, arrival);
      } catch (err) {
        if (err instanceof IngestWorkerUnavailable) {
          // Nothing of the request was committed or acknowledged: the sender retries it. (The pool logs the cause
          // once per worker, not once per request.)
          fail(res, format, 503, 'ingest_worker_unavailable', 'the request could not be decoded now; retry later', { 'retry-after': String(o.retryAfterSeconds) });
          return;
        }
        const status = o.decoders.statusOf(err);
        if (status === undefined) throw err;
        fail(res, format, status, reasonFor(status), errorMessage(err));
        return;
      }
      processing = o.pipeline.processPrepared(prepared, arrival, ack);
    }
    try {
      await processing;
    } catch (err) {
      if (err instanceof LedgerUnavailable) {
        fail(res, format, 503, 'ledger_unavailable', 'the ledger is unavailable; retry later', { 'retry-after': String(o.retryAfterSeconds) });
        return;
      }
      throw err;
    }
  };

  return (req, res) => {
    const started = process.hrtime.bigint();
    res.once('close', () => {
      const signal = PATHS[(req.url ?? '/').split('?')[0]!] ?? 'other';
      const code = res.writableFinished ? String(res.statusCode) : 'aborted';
      o.metrics.observeOtlpRequest(signal, code, Number(process.hrtime.bigint() - started) / 1e9);
    });
    const requested = formatOf(req.headers['content-type']);
    o.track(handle(req, res, requested)).catch((err: unknown) => {
      o.log(`OTLP request failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      fail(res, requested ?? 'json', 500, 'internal_error', 'internal error');
    });
  };
}

function sendExport(res: ServerResponse, signal: OtlpSignal, format: OtlpFormat, partial?: { rejected: number; errorMessage: string }): void {
  const body = encodeExportResponse(signal, format, partial);
  res.writeHead(200, { 'content-type': OTLP_CONTENT_TYPE[format], 'content-length': body.length });
  res.end(body);
}

function reasonFor(status: number): string {
  return status === 413 ? 'too_large' : status === 415 ? 'unsupported_media_type' : 'malformed';
}

function errorMessage(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.length > 500 ? `${m.slice(0, 497)}...` : m;
}
