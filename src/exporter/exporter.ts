import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { validateConfig, type TokenmeterConfig, type TokenmeterConfigInput } from '../config/index.js';
import { ExporterMetrics } from './metrics.js';
import { createOtlpHandler, type OtlpDecoders } from './otlp-handler.js';
import { OPS_MAX_CONNECTIONS, openFileLimit, otlpConnectionCap } from './connections.js';
import { LedgerHealth } from './ledger-health.js';
import { createOpsHandler, type RepriceEndpoint } from './ops-handler.js';
import { planReprice } from '../report/reprice.js';
import { periodPlanOf } from './period-plan.js';
import { IngestWorkerPool } from './ingest-workers.js';
import { Pipeline } from './pipeline.js';
import { PriceReloader, ReloadablePricing, type LoadedPricing, type PriceReloadResult, type PricingSource } from './price-reload.js';
import { openHoldFile } from './reservation-file.js';
import { MemoryReservationStore, ReservationMetrics, ReservationService } from './reservations.js';
import { ReservationStreams } from './reservation-stream.js';
import type { ExtractResult, LedgerPort, PlanPort, PricingPort } from './ports.js';
import { StaticFiles } from './static-files.js';
import { displayRate } from '../report/calendar.js';
import type { DisplayMoney } from './usage-api.js';

/** A clock the exporter reads for billing periods (tests inject a fake one to cross a month boundary). */
export interface ExporterClock {
  now(): Date;
}

/** Everything the exporter needs from the other stages (see adapters.ts for the real bindings). */
export interface ExporterPorts<S = unknown> {
  ledger: LedgerPort;
  plans: PlanPort;
  pricing: PricingPort;
  decoders: OtlpDecoders<S>;
  extract: (span: S) => ExtractResult;
  isUnavailable: (err: unknown) => boolean;
  display: DisplayMoney;
  /** The fingerprint of the prices `pricing` was built from (see price-reload.ts), when the real bindings built it. */
  pricingFingerprint?: string;
  /** What `pricing` was built from, so ingest worker threads can build the same price book (the real bindings). */
  pricingSource?: PricingSource;
}

export interface StartExporterOptions {
  /** Configuration as written in tokenmeter.yaml (validated here). Default: every default. */
  config?: TokenmeterConfigInput;
  /** An already validated configuration (from loadConfig); wins over `config`. */
  resolvedConfig?: TokenmeterConfig;
  /** Shortcuts over the configuration (handy in tests and benchmarks): */
  storage?: string;
  host?: string;
  otlpPort?: number;
  httpPort?: number;
  /** Default: the system clock. */
  clock?: ExporterClock;
  /** Replace the real ledger/plans/pricing/ingest bindings (hand-written fakes in tests). */
  ports?: ExporterPorts<unknown>;
  /** Folder of the status page served at GET / (default: src/exporter/status-page next to this module). */
  statusPageDir?: string;
  /** Log sink (default: stderr lines). */
  log?: (line: string) => void;
  /**
   * Re-reads the price sources (the configuration file's `pricing` section, the catalog file) and builds a
   * validated price book; throws when they are invalid. Enables `reloadPrices` and `pricing.reload_interval`.
   */
  loadPricing?: () => LoadedPricing;
  /** Tests: called with the ingest worker pool once it is ready (to end a worker mid-request). */
  onIngestWorkers?: (pool: IngestWorkerPool) => void;
}

export interface RunningExporter {
  /** e.g. http://127.0.0.1:4318 — POST `${otlpUrl}/v1/traces`. */
  otlpUrl: string;
  /** e.g. http://127.0.0.1:9464 — GET `${httpUrl}/metrics`, `/api/v1/usage/{user}`. */
  httpUrl: string;
  /** What each server is really bound to (e.g. 0.0.0.0:4318 while otlpUrl says 127.0.0.1): `tokenmeter serve` prints it. */
  otlpAddress: AddressInfo;
  httpAddress: AddressInfo;
  config: TokenmeterConfig;
  metrics: ExporterMetrics;
  /** Worker threads preparing trace requests (decode, extraction, pricing); 0: all on the main thread. */
  ingestWorkerThreads: number;
  /** Re-reads the period gauges from the ledger now (what the periodic refresh does). */
  refresh(): Promise<void>;
  /**
   * Reloads the prices through `loadPricing` (SIGHUP): swapped only when they load and validate completely,
   * else refused with the error and the prices in use stay. Counted in tokenmeter_price_reload_total{outcome}.
   */
  reloadPrices(trigger?: string): PriceReloadResult;
  /** Stops accepting, finishes requests and commits in flight, closes the ledger. Idempotent. */
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts the exporter in this process: the OTLP/HTTP receiver and the operations server. Used by
 * `tokenmeter serve`, the demo, the benchmarks and most tests.
 */
export async function startExporter(options: StartExporterOptions = {}): Promise<RunningExporter> {
  const base = options.resolvedConfig ?? validateConfig(options.config ?? {}, 'configuration');
  const config: TokenmeterConfig = {
    ...base,
    storage: options.storage ?? base.storage,
    server: {
      ...base.server,
      host: options.host ?? base.server.host,
      otlp_port: options.otlpPort ?? base.server.otlp_port,
      http_port: options.httpPort ?? base.server.http_port,
    },
  };
  const log = options.log ?? ((line: string) => process.stderr.write(`tokenmeter: ${line}\n`));
  const clock = options.clock ?? { now: () => new Date() };
  // Checked before anything is opened: a cap that leaves too few descriptors is a configuration error.
  const otlpMaxConnections = otlpConnectionCap(config.server.max_connections, openFileLimit());
  // Set once the metrics exist: a ledger that opens after the start (PostgreSQL was down) loads the period gauges.
  let onLedgerOpen = () => {};
  const ports = options.ports ?? (await (await import('./adapters.js')).createPorts(config, clock, { onLedgerOpen: () => onLedgerOpen(), log }));

  const metrics = new ExporterMetrics({
    maxUsers: config.limits.max_users,
    maxFeatures: config.limits.max_features,
    processMetrics: true,
    limitsFor: (u, p) => ports.plans.limitsFor(u, p),
    periodPlanFor: (u, billed) => periodPlanOf(u, billed, ports.plans),
  });
  const now = () => clock.now();
  const retryAfterMillis = Math.max(1000, config.ledger.retry_after);
  const health = new LedgerHealth({
    setUp: (up) => metrics.setLedgerUp(up),
    log,
    // Long enough for senders retrying after Retry-After to fail again and keep it, short enough to recover
    // without traffic (a replica taken out of a load balancer by its readiness gets none).
    failureHoldMillis: Math.max(30_000, 3 * retryAfterMillis),
  });
  const pricing = new ReloadablePricing(ports.pricing);
  // Ingest worker threads (config ingest.worker_threads): only with the real bindings, whose plans and prices a
  // worker can build from the configuration; injected ports (test fakes) are used on this thread.
  const workerCount = options.ports === undefined && ports.pricingSource !== undefined ? config.ingest.worker_threads : 0;
  let ingestWorkers: IngestWorkerPool | undefined;
  let offloading = workerCount > 0;
  if (workerCount > 0) {
    ingestWorkers = new IngestWorkerPool({
      size: workerCount,
      log,
      data: {
        maxDecompressedBytes: config.limits.max_decompressed_bytes,
        plans: config.plans,
        users: config.users,
        period: config.period,
        chargeWindow: { lateArrivalMillis: config.ingest.late_arrival_window, clockSkewMillis: config.ingest.clock_skew },
        pricing: ports.pricingSource!,
      },
    });
    try {
      await ingestWorkers.ready();
      options.onIngestWorkers?.(ingestWorkers);
    } catch (err) {
      await ingestWorkers.close();
      await ports.ledger.close();
      throw err;
    }
  }
  const reloader = options.loadPricing
    ? new PriceReloader({
        pricing,
        load: options.loadPricing,
        ...(ports.pricingFingerprint !== undefined ? { fingerprint: ports.pricingFingerprint } : {}),
        count: (outcome) => metrics.countPriceReload(outcome),
        log,
        onSwap: (loaded) => {
          if (!offloading) return;
          if (loaded.source !== undefined) ingestWorkers!.setPricing(loaded.source);
          else {
            // Prices a worker cannot rebuild: requests are prepared on this thread from now on, with them.
            offloading = false;
            log('the reloaded prices cannot be sent to the ingest worker threads: requests are decoded and priced on the main thread from now on');
          }
        },
      })
    : undefined;
  const reloadPrices = (trigger = 'reload'): PriceReloadResult => {
    if (!reloader) {
      metrics.countPriceReload('failure');
      const error = 'this exporter was started without a price source to reload from';
      log(`${trigger}: ${error}`);
      return { outcome: 'failure', error };
    }
    return reloader.reload(trigger);
  };
  // Admission control: holds in memory next to the embedded ledger, in a table on a shared PostgreSQL ledger.
  // (Loaded only then: pg is not needed otherwise.)
  const reservationStore = /^postgres(ql)?:\/\//i.test(config.storage)
    ? new (await import('./reservations-postgres.js')).PostgresReservationStore(config.storage)
    : new MemoryReservationStore(ports.ledger, options.ports === undefined ? openHoldFile(config.storage, clock.now(), log, { syncEachGrant: config.reservations.sync_each_grant }) : undefined);
  const reservations = new ReservationService({
    store: reservationStore,
    plans: ports.plans,
    // The reloadable view, so a SIGHUP's new prices also price reservation estimates.
    pricing,
    metrics: new ReservationMetrics(metrics.registry, config.limits.max_users, () => reservationStore.activeCount()),
    now,
    ttlMillis: config.reservations.ttl,
    defaultOutputTokens: config.reservations.default_output_tokens,
  });
  const pipeline = new Pipeline<unknown>({
    onCommitted: (records) => {
      reservations.settle(records).catch((err: unknown) => log(`could not clean up settled reservations: ${err instanceof Error ? err.message : String(err)}`));
    },
    health,
    metrics,
    ledger: ports.ledger,
    plans: ports.plans,
    pricing,
    extract: ports.extract,
    isUnavailable: ports.isUnavailable,
    now,
    log,
    chargeWindow: { lateArrivalMillis: config.ingest.late_arrival_window, clockSkewMillis: config.ingest.clock_skew },
    supersede: { mode: config.ingest.framework_spans, windowMillis: config.ingest.framework_spans_window },
  });
  const retryAfterSeconds = Math.max(1, Math.ceil(config.ledger.retry_after / 1000));

  // Requests in flight (each holds its commit); shutdown waits for them.
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(work: Promise<T>): Promise<T> => {
    inFlight.add(work);
    const done = () => inFlight.delete(work);
    work.then(done, done);
    return work;
  };
  let shuttingDown = false;

  let refreshing: Promise<void> | undefined;
  let primed = false;
  const refresh = (): Promise<void> => {
    refreshing ??= (async () => {
      try {
        pipeline.ensurePeriod();
        const period = metrics.currentPeriod!;
        const rollups = await ports.ledger.loadPeriodRollups(period.start);
        // A rollover while reading: the next refresh loads the new period.
        if (metrics.currentPeriod?.start.getTime() === period.start.getTime()) metrics.loadRollups(rollups);
        if (!primed) {
          // Once per process: the label sets of this period and the last one start at 0 (see primeSeries).
          const previous = ports.plans.periodFor(new Date(period.start.getTime() - 1)).start;
          const models = [...(await ports.ledger.periodModelUsage(period.start)), ...(await ports.ledger.periodModelUsage(previous))];
          metrics.primeSeries([...ports.plans.planNames(), ...rollups.map((r) => r.plan)], models);
          primed = true;
        }
        health.answered();
      } catch (err) {
        health.failed();
        log(`could not refresh the period totals from the ledger: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  };
  await refresh();
  onLedgerOpen = () => {
    // After a refresh in flight (which met the closed ledger), not instead of it.
    void (refreshing ?? Promise.resolve()).then(refresh);
  };

  // Connections: a cap below the open-file limit, and short header/idle timeouts, so that a flood of idle sockets
  // on the OTLP port can neither take every descriptor nor hold the slots long; the operations port has its own.
  const headersTimeout = config.server.headers_timeout;
  const timeouts = {
    headersTimeout,
    requestTimeout: Math.max(60_000, headersTimeout + 1000),
    keepAliveTimeout: config.server.keep_alive_timeout,
    // How often Node checks connections against the timeouts (default 30 s, which kept idle sockets ~59 s).
    connectionsCheckingInterval: Math.max(250, Math.min(5000, Math.floor(headersTimeout / 4))),
  };
  const otlpServer = createServer(
    timeouts,
    createOtlpHandler({
      metrics,
      pipeline,
      decoders: ports.decoders,
      maxRequestBytes: config.limits.max_request_bytes,
      ...(config.auth.ingest_token !== undefined ? { ingestToken: config.auth.ingest_token } : {}),
      retryAfterSeconds,
      log,
      track,
      offload: () => (offloading ? ingestWorkers : undefined),
    }),
  );
  // POST /api/v1/reprice: planned from the ledger's calls with the prices in force now (reloads included); once
  // applied, the period gauges are loaded again from the adjusted totals.
  const repriceLedger = ports.ledger;
  const repriceEndpoint: RepriceEndpoint | undefined =
    repriceLedger.applyReprice && repriceLedger.scanCallRange
      ? {
          run: async (q, apply) => {
            const plan = await planReprice({ scanCalls: (f) => repriceLedger.scanCallRange!(f) }, pricing, q, {
              lateArrivalMillis: config.ingest.late_arrival_window,
              clockSkewMillis: config.ingest.clock_skew,
            });
            if (apply === undefined || plan.adjustments.length === 0) return { plan };
            const audit = await repriceLedger.applyReprice!({ ...apply, adjustments: plan.adjustments });
            log(`re-priced ${audit.calls} call(s) by ${audit.deltaUsd} USD (audit id ${audit.id}, by ${audit.by})`);
            await refresh();
            return { plan, audit };
          },
        }
      : undefined;
  let reportDisplay: { currency: string; rate: string } | undefined;
  try {
    reportDisplay = displayRate(config.display);
  } catch {
    // No rate for the display currency: reports show USD only (the usage API does the same).
  }
  const opsServer = createServer(
    { ...timeouts, requestTimeout: Math.max(30_000, headersTimeout + 1000) },
    createOpsHandler({
      metrics,
      ledger: ports.ledger,
      plans: ports.plans,
      staticFiles: new StaticFiles(options.statusPageDir),
      ...(config.auth.api_token !== undefined ? { apiToken: config.auth.api_token } : {}),
      display: ports.display,
      retryAfterSeconds,
      now,
      beforeScrape: () => {
        pipeline.ensurePeriod();
      },
      log,
      isShuttingDown: () => shuttingDown,
      health,
      lateArrivalMillis: config.ingest.late_arrival_window,
      ...(reportDisplay ? { displayRate: reportDisplay } : {}),
      reservations,
      ...(repriceEndpoint ? { reprice: repriceEndpoint } : {}),
    }),
  );
  for (const s of [otlpServer, opsServer]) s.on('clientError', (_err, socket) => socket.destroy());
  // The reservations stream (an Upgrade on the operations port): one connection per app process.
  const reservationStreams = new ReservationStreams({
    service: reservations,
    ...(config.auth.api_token !== undefined ? { apiToken: config.auth.api_token } : {}),
    partialLineTimeoutMillis: headersTimeout,
    isShuttingDown: () => shuttingDown,
    log,
    ledgerFailed: () => metrics.setLedgerUp(false),
    registry: metrics.registry,
  });
  opsServer.on('upgrade', reservationStreams.handleUpgrade);
  otlpServer.maxConnections = otlpMaxConnections;
  opsServer.maxConnections = OPS_MAX_CONNECTIONS;
  // Node closes a connection past the cap on arrival: counted, so a flood is visible.
  otlpServer.on('drop', () => metrics.countRejectedRequest('too_many_connections'));

  let otlpAddress: AddressInfo;
  let httpAddress: AddressInfo;
  try {
    otlpAddress = await listen(otlpServer, config.server.otlp_port, config.server.host);
    httpAddress = await listen(opsServer, config.server.http_port, config.server.host);
  } catch (err) {
    otlpServer.close();
    opsServer.close();
    await ingestWorkers?.close();
    await ports.ledger.close();
    throw err;
  }

  const timer =
    config.ledger.refresh_interval > 0
      ? setInterval(() => {
          void refresh();
        }, config.ledger.refresh_interval)
      : undefined;
  timer?.unref();
  const reloadEvery = config.pricing.reload_interval;
  const priceTimer = reloader && reloadEvery > 0 ? setInterval(() => reloadPrices('interval'), reloadEvery) : undefined;
  priceTimer?.unref();
  const expiryTimer = setInterval(
    () => {
      reservations.expire().catch((err: unknown) => log(`could not expire reservations: ${err instanceof Error ? err.message : String(err)}`));
    },
    Math.max(250, Math.min(5000, Math.floor(config.reservations.ttl / 4))),
  );
  expiryTimer.unref();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      shuttingDown = true;
      if (timer) clearInterval(timer);
      if (priceTimer) clearInterval(priceTimer);
      clearInterval(expiryTimer);
      const closed = Promise.all([otlpServer, opsServer].map((s) => new Promise<void>((r) => s.close(() => r()))));
      otlpServer.closeIdleConnections();
      opsServer.closeIdleConnections();
      // Streams are not the server's connections any more (upgraded): ended here, their last answers sent first.
      const streamsClosed = reservationStreams.close(Math.min(1000, config.server.shutdown_timeout));
      // Let every request in flight finish its commit (bounded by shutdown_timeout).
      let timedOut = false;
      const deadline = new Promise<void>((r) => setTimeout(() => ((timedOut = true), r()), config.server.shutdown_timeout).unref());
      await Promise.race([Promise.allSettled([...inFlight]), deadline]);
      if (timedOut) log(`shutdown: ${inFlight.size} request(s) still in flight after ${config.server.shutdown_timeout} ms`);
      // Requests still in a worker are answered 503 (nothing of them was committed); a request already committing
      // holds no worker.
      await ingestWorkers?.close();
      otlpServer.closeAllConnections();
      opsServer.closeAllConnections();
      await streamsClosed;
      await closed;
      if (refreshing) await refreshing;
      // The holds file first: it lives in the ledger's directory, under the lock the ledger's close releases.
      await reservations.close().catch(() => {});
      await ports.ledger.close();
    })());

  const h = urlHost(config.server.host);
  return {
    otlpUrl: `http://${h}:${otlpAddress.port}`,
    httpUrl: `http://${h}:${httpAddress.port}`,
    otlpAddress,
    httpAddress,
    config,
    metrics,
    get ingestWorkerThreads() {
      return offloading ? workerCount : 0;
    },
    refresh,
    reloadPrices,
    close,
  };
}
