import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { validateConfig, type TokenmeterConfigInput } from '../../src/config/index.js';
import { displayMoney, ingestDecoders } from '../../src/exporter/adapters.js';
import { startExporter, type ExporterPorts, type RunningExporter } from '../../src/exporter/index.js';
import type { ExtractResult } from '../../src/exporter/ports.js';
import { extractUsage, type DecodedSpan } from '../../src/ingest/index.js';
import { PriceBook } from '../../src/pricing/index.js';
import { FakeClock, LedgerDownError, MemoryLedger, SimplePlans } from './fakes.js';

export interface TestExporterOptions {
  config?: TokenmeterConfigInput;
  ledger?: MemoryLedger;
  plans?: SimplePlans;
  clock?: FakeClock;
  extract?: (span: DecodedSpan) => ExtractResult;
  /** Default: the shipped catalog. */
  pricing?: PriceBook;
}

export interface TestExporter extends RunningExporter {
  ledger: MemoryLedger;
  plans: SimplePlans;
}

/** An in-process exporter on loopback, ports 0, real decoders and price book, in-memory ledger. */
export async function startTestExporter(o: TestExporterOptions = {}): Promise<TestExporter> {
  const config = validateConfig({ ...o.config, server: { host: '127.0.0.1', otlp_port: 0, http_port: 0, ...o.config?.server } }, 'test');
  const ledger = o.ledger ?? new MemoryLedger();
  const plans = o.plans ?? new SimplePlans();
  const book = o.pricing ?? PriceBook.load();
  const extract = o.extract ?? extractUsage;
  const ports: ExporterPorts<DecodedSpan> = {
    ledger,
    plans,
    pricing: book,
    decoders: ingestDecoders(config.limits.max_decompressed_bytes),
    extract,
    isUnavailable: (err) => err instanceof LedgerDownError,
    display: displayMoney(config),
  };
  const running = await startExporter({
    resolvedConfig: config,
    ports: ports as ExporterPorts<unknown>,
    ...(o.clock ? { clock: o.clock } : {}),
    log: () => {},
  });
  return { ...running, ledger, plans };
}


export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A raw HTTP request (node:http, so that odd headers and bodies go out exactly as given). */
export function httpRequest(url: string, init: { method?: string; headers?: Record<string, string | number>; body?: Buffer | string } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

export function postOtlp(otlpUrl: string, body: Buffer | string, contentType = 'application/json', extra: Record<string, string> = {}): Promise<HttpResult> {
  return httpRequest(`${otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': contentType, ...extra }, body });
}

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: HttpResult['headers'] }> {
  const r = await httpRequest(url, { headers });
  return { status: r.status, json: JSON.parse(r.body.toString('utf8')), headers: r.headers };
}

export async function scrape(httpUrl: string): Promise<string[]> {
  const r = await httpRequest(`${httpUrl}/metrics`);
  return r.body.toString('utf8').split('\n');
}

export interface GenAiSpanSpec {
  traceId?: string;
  spanId: string;
  user?: string;
  plan?: string;
  feature?: string;
  provider?: string;
  model: string;
  input: number;
  output: number;
  cacheRead?: number;
  endUnixNano?: bigint;
  extra?: Record<string, string | number | boolean>;
}

export const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';

function attr(key: string, v: string | number | boolean) {
  if (typeof v === 'string') return { key, value: { stringValue: v } };
  if (typeof v === 'boolean') return { key, value: { boolValue: v } };
  return Number.isInteger(v) ? { key, value: { intValue: String(v) } } : { key, value: { doubleValue: v } };
}

/** An OTLP/JSON ExportTraceServiceRequest with GenAI client spans (current semantic conventions). */
export function otlpJson(spans: GenAiSpanSpec[], endUnixNano = BigInt(Date.now()) * 1_000_000n): Buffer {
  return Buffer.from(
    JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [attr('service.name', 'test-app')] },
          scopeSpans: [
            {
              scope: { name: 'test' },
              spans: spans.map((s) => {
                const end = s.endUnixNano ?? endUnixNano;
                const attrs: ReturnType<typeof attr>[] = [
                  attr('gen_ai.operation.name', 'chat'),
                  attr('gen_ai.provider.name', s.provider ?? 'openai'),
                  attr('gen_ai.request.model', s.model),
                  attr('gen_ai.response.model', s.model),
                  attr('gen_ai.usage.input_tokens', s.input),
                  attr('gen_ai.usage.output_tokens', s.output),
                ];
                if (s.cacheRead !== undefined) attrs.push(attr('gen_ai.usage.cache_read.input_tokens', s.cacheRead));
                if (s.user !== undefined) attrs.push(attr('user.id', s.user));
                if (s.plan !== undefined) attrs.push(attr('tokenmeter.plan', s.plan));
                if (s.feature !== undefined) attrs.push(attr('tokenmeter.feature', s.feature));
                for (const [k, v] of Object.entries(s.extra ?? {})) attrs.push(attr(k, v));
                return {
                  traceId: s.traceId ?? TRACE_ID,
                  spanId: s.spanId,
                  name: `chat ${s.model}`,
                  kind: 3,
                  startTimeUnixNano: String(end - 1_000_000_000n),
                  endTimeUnixNano: String(end),
                  attributes: attrs,
                  status: {},
                };
              }),
            },
          ],
        },
      ],
    }),
  );
}

export function gzip(b: Buffer): Buffer {
  return gzipSync(b);
}

export { FakeClock, MemoryLedger, SimplePlans };
