/**
 * Worker threads for the per-request work that needs no ledger state (issue 15: the exporter's one event loop was
 * the limit, and these machines have a second core): gunzip, OTLP decode, extraction, plan, period and price run in
 * ingest-worker.ts; the main thread keeps HTTP, supersede, the commit and the metrics. The request body is
 * transferred (not copied); the prepared spans come back packed (prepared-codec.ts: a string table and two
 * transferred typed arrays), about a tenth of what a structured clone of the record objects costs this thread.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { TokenmeterConfig } from '../config/index.js';
import { IngestError } from '../ingest/index.js';
import type { ChargeWindow, PreparedSpan } from './pipeline.js';
import { unpackSpans, type PackedSpans } from './prepared-codec.js';
import type { PricingSource } from './price-reload.js';

/** What a worker is started with (structured-cloneable). */
export interface IngestWorkerData {
  maxDecompressedBytes: number;
  plans: TokenmeterConfig['plans'];
  users: TokenmeterConfig['users'];
  period: TokenmeterConfig['period'];
  chargeWindow: ChargeWindow;
  pricing: PricingSource;
}

export type ToIngestWorker =
  | { t: 'prepare'; id: number; body: Uint8Array; contentType: string | undefined; contentEncoding: string | undefined; arrivalMillis: number }
  | { t: 'pricing'; source: PricingSource };

export type FromIngestWorker =
  | { t: 'ready' }
  | { t: 'prepared'; id: number; packed: PackedSpans }
  | { t: 'refused'; id: number; status: IngestError['status']; message: string }
  | { t: 'failed'; id: number; message: string };

/** The worker holding a request failed (crashed, ran out of memory, or the pool is closing): answer 503, retryable. */
export class IngestWorkerUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IngestWorkerUnavailable';
  }
}

export interface IngestWorkerPoolOptions {
  size: number;
  data: IngestWorkerData;
  log: (line: string) => void;
  /** Heap limits of each worker (a hostile request that exhausts them ends that worker, not the exporter). */
  resourceLimits?: ResourceLimits;
}

interface Pending {
  resolve: (spans: PreparedSpan[]) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  ready: Promise<void>;
  /** Set once the worker ended (its requests were rejected); the slot is started again on the next request. */
  dead: boolean;
}

/**
 * Running from the TypeScript sources (the tests), the worker registers tsx before importing the .ts entry (Node 20
 * does not apply an `--import` loader to a worker's entry module); from dist/ it is the compiled .js next to this.
 */
function workerEntry(): { target: string | URL; evalCode: boolean } {
  const url = new URL(import.meta.url.endsWith('.ts') ? './ingest-worker.ts' : './ingest-worker.js', import.meta.url);
  if (!url.pathname.endsWith('.ts')) return { target: url, evalCode: false };
  return { target: `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`, evalCode: true };
}

export class IngestWorkerPool {
  readonly #o: IngestWorkerPoolOptions;
  readonly #slots: Slot[] = [];
  #nextId = 1;
  #closed = false;
  /** Workers that ended unexpectedly since the start. */
  crashes = 0;

  constructor(o: IngestWorkerPoolOptions) {
    if (!Number.isInteger(o.size) || o.size < 1) throw new RangeError(`ingest worker pool size must be a positive integer, got ${o.size}`);
    this.#o = { ...o, data: { ...o.data } };
    for (let i = 0; i < o.size; i++) this.#slots.push(this.#start(i));
  }

  /** Resolves once every worker built its price book and plans; rejects with the first worker's start error. */
  async ready(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.ready));
  }

  #start(index: number): Slot {
    const entry = workerEntry();
    const worker = new Worker(entry.target, {
      workerData: this.#o.data,
      eval: entry.evalCode,
      ...(this.#o.resourceLimits ? { resourceLimits: this.#o.resourceLimits } : {}),
    });
    // Never what keeps a process alive: the servers and requests in flight do that.
    worker.unref();
    let markReady!: () => void;
    let failStart!: (err: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failStart = reject;
    });
    // A rejection nobody awaits (a restart) must not become an unhandled rejection.
    ready.catch(() => {});
    const slot: Slot = { worker, pending: new Map(), ready, dead: false };
    const end = (reason: string) => {
      if (slot.dead) return;
      slot.dead = true;
      failStart(new Error(`ingest worker thread ${index} could not start: ${reason}`));
      if (!this.#closed) {
        this.crashes++;
        this.#o.log(`ingest worker thread ${index} ended (${reason}); ${slot.pending.size} request(s) in flight answered 503 with Retry-After; it is started again`);
      }
      const err = new IngestWorkerUnavailable(`the ingest worker thread ended: ${reason}`);
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    worker.on('message', (m: FromIngestWorker) => {
      if (m.t === 'ready') {
        markReady();
        return;
      }
      const p = slot.pending.get(m.id);
      if (p === undefined) return;
      slot.pending.delete(m.id);
      if (m.t === 'prepared') {
        let spans: PreparedSpan[];
        try {
          spans = unpackSpans(m.packed);
        } catch (err) {
          p.reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        p.resolve(spans);
      }
      else if (m.t === 'refused') p.reject(new IngestError(m.status, m.message));
      else p.reject(new Error(m.message));
    });
    worker.on('error', (err) => end(err.message));
    worker.on('exit', (code) => end(`exit code ${code}`));
    return slot;
  }

  /**
   * Decodes, extracts and prices one trace request in a worker. Rejects with IngestError (the status to answer),
   * IngestWorkerUnavailable (503, retryable) or another Error (a bug: 500). `body` is transferred: unusable after.
   */
  prepareTraces(body: Buffer, contentType: string | undefined, contentEncoding: string | undefined, arrivalMillis: number): Promise<PreparedSpan[]> {
    if (this.#closed) return Promise.reject(new IngestWorkerUnavailable('the exporter is shutting down'));
    // The least busy worker; one that ended is started again here (not in a loop: a worker that cannot start is
    // retried once per request, never spinning).
    let best = 0;
    for (let i = 0; i < this.#slots.length; i++) {
      if (this.#slots[i]!.dead) this.#slots[i] = this.#start(i);
      if (this.#slots[i]!.pending.size < this.#slots[best]!.pending.size) best = i;
    }
    const slot = this.#slots[best]!;
    // Transfer needs a buffer of its own: a body that is a slice of a larger (pooled or socket) buffer is copied once.
    const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : new Uint8Array(body);
    const id = this.#nextId++;
    return new Promise<PreparedSpan[]>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      const m: ToIngestWorker = { t: 'prepare', id, body: owned, contentType, contentEncoding, arrivalMillis };
      try {
        slot.worker.postMessage(m, [owned.buffer as ArrayBuffer]);
      } catch (err) {
        slot.pending.delete(id);
        reject(new IngestWorkerUnavailable(`could not hand the request to the ingest worker thread: ${err instanceof Error ? err.message : String(err)}`));
      }
    });
  }

  /** New prices (a reload): every request handed to a worker after this call is priced with them. */
  setPricing(source: PricingSource): void {
    this.#o.data.pricing = source;
    for (const s of this.#slots) if (!s.dead) s.worker.postMessage({ t: 'pricing', source } satisfies ToIngestWorker);
  }

  /** Ends worker `index` as a crash would (its requests answered unavailable; started again on the next request). */
  async endWorker(index: number): Promise<void> {
    const slot = this.#slots[index];
    if (slot !== undefined && !slot.dead) await slot.worker.terminate();
  }

  /** Requests in flight (every worker). */
  get inFlight(): number {
    let n = 0;
    for (const s of this.#slots) n += s.pending.size;
    return n;
  }

  /** Ends every worker; requests still in flight are rejected as unavailable (503). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#slots.map((s) => s.worker.terminate().catch(() => 0)));
  }
}
