// One OTLP/HTTP trace receiver in its own process. Args: <kind> [storage]
//   decode-protobufjs  bare node:http; protobufjs reflection decode of the OTLP definitions, nothing else
//   decode-walker      bare node:http; tokenmeter's decodeTraceRequest (hand-written protobuf walker), nothing else
//   tokenmeter         the real exporter (dist/): decode, extract, price, group commit to the ledger, then ack
//   tokenmeter-noledger  diagnostic: the real exporter with an in-memory ledger (what the rest of the pipeline costs)
// Protocol (IPC): sends { ready: { url, httpUrl? } }; on { cmd: 'cpu' } replies { cpu: process.cpuUsage() }; on
// { cmd: 'stop' } replies { stopped: stats } and exits.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';

const [kind, storage, option] = process.argv.slice(2);
// `workers=N`: the exporter's ingest.worker_threads (absent: the configuration's default).
const workerThreads = /^workers=\d+$/.test(option ?? '') ? Number(option.slice(8)) : undefined;
// An empty ExportTraceServiceResponse: zero bytes of protobuf.
const EMPTY = Buffer.alloc(0);

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function decodeOnly(decode) {
  let spans = 0;
  let requests = 0;
  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    try {
      spans += decode(body, req.headers['content-type'], req.headers['content-encoding']);
      requests++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 });
      res.end(EMPTY);
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(String(err));
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      return { spans, requests };
    },
  };
}

async function start() {
  if (kind === 'decode-protobufjs') {
    const { ExportTraceServiceRequest } = await import('../../dist/ingest/otlp-proto.js');
    return decodeOnly((body) => {
      const msg = ExportTraceServiceRequest.decode(body);
      let n = 0;
      for (const rs of msg.resourceSpans) for (const ss of rs.scopeSpans) n += ss.spans.length;
      return n;
    });
  }
  if (kind === 'decode-walker') {
    const { decodeTraceRequest } = await import('../../dist/ingest/index.js');
    const options = { maxDecompressedBytes: 64 * 1024 * 1024 };
    return decodeOnly((body, ct, ce) => decodeTraceRequest(body, ct, ce, options).spans.length);
  }
  if (kind === 'tokenmeter-noledger') {
    // Diagnostic only (labelled as such in the report): the real exporter with every real stage (decode, extract,
    // plans, pricing, metrics) except the ledger, replaced by an in-memory one that commits instantly. The gap to
    // `tokenmeter` is the ledger's cost; the gap to the decode-only server is the rest of the pipeline's.
    const { startExporter, ingestDecoders, displayMoney } = await import('../../dist/exporter/index.js');
    const { validateConfig } = await import('../../dist/config/index.js');
    const { extractUsage } = await import('../../dist/ingest/index.js');
    const { PlanResolver, BillingCalendar } = await import('../../dist/plans/index.js');
    const { PriceBook } = await import('../../dist/pricing/index.js');
    const config = validateConfig({ server: { host: '127.0.0.1', otlp_port: 0, http_port: 0 }, limits: { max_users: 1_000_000 } }, 'bench');
    const plans = new PlanResolver(config.plans, config.users);
    const calendar = new BillingCalendar(config.period);
    const seen = new Set();
    const rollups = new Map();
    const ledger = {
      async commit(records) {
        const committed = [];
        const duplicates = [];
        const touched = new Map();
        for (const r of records) {
          const id = `${r.traceId}/${r.spanId}`;
          if (seen.has(id)) {
            duplicates.push(r);
            continue;
          }
          seen.add(id);
          committed.push(r);
          const key = `${r.periodStart}|${r.userId}|${r.plan}`;
          let roll = rollups.get(key);
          if (!roll) {
            roll = { periodStart: r.periodStart, userId: r.userId, plan: r.plan, tokens: { input: 0, cache_read: 0, cache_write: 0, output: 0, reasoning: 0 }, requests: 0, costUsd: '0' };
            rollups.set(key, roll);
          }
          for (const t of Object.keys(roll.tokens)) roll.tokens[t] += r.usage[t];
          roll.requests += 1;
          touched.set(key, roll);
        }
        return { committed, duplicates, rollups: [...touched.values()].map((x) => ({ ...x, tokens: { ...x.tokens } })) };
      },
      async ping() {},
      async loadPeriodRollups(start) {
        return [...rollups.values()].filter((x) => Date.parse(x.periodStart) === start.getTime());
      },
      async userModelUsage() {
        return [];
      },
      async periodModelUsage() {
        return [];
      },
      async close() {},
    };
    const ports = {
      ledger,
      plans: {
        planFor: (u, p) => plans.planFor(u, p),
        limitsFor: (u, p) => plans.limitsFor(u, p),
        periodFor: (at) => calendar.periodFor(at),
        planNames: () => plans.planNames(),
      },
      pricing: PriceBook.load(),
      decoders: ingestDecoders(config.limits.max_decompressed_bytes),
      extract: (span) => extractUsage(span),
      isUnavailable: () => false,
      display: displayMoney(config),
    };
    const running = await startExporter({ resolvedConfig: config, ports, log: () => {} });
    return {
      url: running.otlpUrl,
      httpUrl: running.httpUrl,
      stop: async () => {
        await running.refresh();
        const text = await (await fetch(`${running.httpUrl}/metrics`)).text();
        await running.close();
        return { metricsText: text, logs: [] };
      },
    };
  }
  if (kind === 'tokenmeter') {
    const { startExporter } = await import('../../dist/exporter/index.js');
    const logs = [];
    const t0 = performance.now();
    const running = await startExporter({
      storage,
      host: '127.0.0.1',
      otlpPort: 0,
      httpPort: 0,
      config: { limits: { max_users: 1_000_000 }, ...(workerThreads !== undefined ? { ingest: { worker_threads: workerThreads } } : {}) },
      log: (line) => logs.push(line),
    });
    // startExporter returns once the ledger is open and the period state (every user's rollup) is loaded.
    const startMillis = performance.now() - t0;
    const initial = await (await fetch(`${running.httpUrl}/metrics`)).text();
    return {
      url: running.otlpUrl,
      httpUrl: running.httpUrl,
      startMillis,
      initialMetricsText: initial,
      stop: async () => {
        await running.refresh();
        const text = await (await fetch(`${running.httpUrl}/metrics`)).text();
        await running.close();
        return { metricsText: text, logs: logs.slice(0, 20) };
      },
    };
  }
  throw new Error(`unknown server kind ${kind}`);
}

/**
 * CPU time of this process's main thread alone (µs; Linux: /proc/self/task/<pid>/stat utime + stime, in clock
 * ticks of 10 ms), or undefined elsewhere. With ingest worker threads the event loop's share is what bounds the
 * exporter, not the process total.
 */
function mainThreadCpuMicros() {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5), counted from the state field (3) after the command name.
    return (Number(f[11]) + Number(f[12])) * 10_000;
  } catch {
    return undefined;
  }
}

let profiler;
try {
  const server = await start();
  process.on('message', async (m) => {
    // CPU time of this receiver (every thread of the process), read between rounds by the driver.
    if (m?.cmd === 'cpu') {
      process.send({ cpu: { ...process.cpuUsage(), main: mainThreadCpuMicros() } });
      return;
    }
    // bench/ingest/profile.mjs: a CPU profile of the driven window only (not start-up, not the final scrape).
    if (m?.cmd === 'profile-start' || m?.cmd === 'profile-stop') {
      const { Session } = await import('node:inspector/promises');
      if (m.cmd === 'profile-start') {
        profiler = new Session();
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.setSamplingInterval', { interval: 100 });
        await profiler.post('Profiler.start');
        process.send({ cpu: { ...process.cpuUsage(), main: mainThreadCpuMicros() } });
      } else {
        const { profile } = await profiler.post('Profiler.stop');
        const { writeFileSync } = await import('node:fs');
        writeFileSync(m.file, JSON.stringify(profile));
        process.send({ cpu: { ...process.cpuUsage(), main: mainThreadCpuMicros() } });
      }
      return;
    }
    if (m?.cmd !== 'stop') return;
    try {
      const stats = await server.stop();
      process.send({ stopped: stats }, () => process.exit(0));
    } catch (err) {
      process.send({ error: String(err?.stack ?? err) }, () => process.exit(1));
    }
  });
  process.send({ ready: { url: server.url, httpUrl: server.httpUrl, startMillis: server.startMillis, initialMetricsText: server.initialMetricsText } });
} catch (err) {
  process.send({ error: String(err?.stack ?? err) }, () => process.exit(1));
}
