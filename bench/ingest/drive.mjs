// Starts a receiver child (bench/ingest/server.mjs) and drives it with OTLP/HTTP senders from this process.
import { fork } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const SERVER = fileURLToPath(new URL('./server.mjs', import.meta.url));

export function startServer(kind, storage, { execArgv = [], option } = {}) {
  return new Promise((resolve, reject) => {
    const child = fork(SERVER, [kind, ...(storage ? [storage] : []), ...(option ? [option] : [])], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let stopResolve;
    let stopReject;
    const cpuWaiters = [];
    child.on('message', (m) => {
      if (m.cpu) cpuWaiters.shift()?.(m.cpu);
      else if (m.ready) {
        resolve({
          ...m.ready,
          pid: child.pid,
          /** The receiver process's CPU time so far ({ user, system } µs). */
          cpu: () =>
            new Promise((res) => {
              cpuWaiters.push(res);
              child.send({ cmd: 'cpu' });
            }),
          /** Starts (`file` undefined) or stops a CPU profile in the receiver, written to `file`; resolves with its CPU time. */
          profile: (file) =>
            new Promise((res) => {
              cpuWaiters.push(res);
              child.send(file === undefined ? { cmd: 'profile-start' } : { cmd: 'profile-stop', file });
            }),
          stop: () =>
            new Promise((res, rej) => {
              stopResolve = res;
              stopReject = rej;
              child.send({ cmd: 'stop' });
            }),
        });
      } else if (m.stopped) stopResolve?.(m.stopped);
      else if (m.error) {
        const err = new Error(`${kind} server: ${m.error}`);
        if (stopReject) stopReject(err);
        else reject(err);
      }
    });
    child.on('exit', (code) => {
      if (code !== 0) {
        const err = new Error(`${kind} server exited with ${code}`);
        reject(err);
        stopReject?.(err);
      }
    });
  });
}

function post(agent, url, body) {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/v1/traces`,
      { method: 'POST', agent, headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * `concurrency` senders share `bodies` (each sent once): a sender posts its next batch only after the previous
 * one was acknowledged. The first `warmup` bodies are sent before the clock starts.
 * Returns { batches, spans, seconds, spansPerSecond, statuses, partialResponses }.
 */
export async function drive(url, bodies, { concurrency, warmup, spansPerBody }) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const statuses = {};
  let partialResponses = 0;
  let next = 0;
  const acks = [];
  const sender = async (limit) => {
    while (next < limit) {
      const i = next++;
      const res = await post(agent, url, bodies[i]);
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      // A non-empty ExportTraceServiceResponse carries partial_success (some spans rejected).
      if (res.body.length > 0) partialResponses++;
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
      acks.push(performance.now());
    }
  };
  const run = async (limit) => {
    await Promise.all(Array.from({ length: concurrency }, () => sender(limit)));
  };
  await run(Math.min(warmup, bodies.length));
  const first = next;
  acks.length = 0;
  const t0 = performance.now();
  await run(bodies.length);
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  const batches = bodies.length - first;
  const spans = batches * spansPerBody;
  // Rates of 5 consecutive segments of the timed run: the spread within one run.
  // With N senders a segment must span several rounds of N acks, or near-simultaneous acks make absurd rates.
  const segmentRates = [];
  const per = Math.floor(acks.length / 5);
  if (per >= 2 * concurrency) {
    let start = t0;
    for (let i = per - 1; i < acks.length; i += per) {
      segmentRates.push((per * spansPerBody) / ((acks[i] - start) / 1000));
      start = acks[i];
    }
  } else segmentRates.push(spans / seconds);
  return { batches, spans, warmupSpans: first * spansPerBody, seconds, spansPerSecond: spans / seconds, segmentRates, statuses, partialResponses };
}

/** Sums a Prometheus text-format metric's samples whose labels include every `match` pair. */
export function sumMetric(text, name, match = {}) {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const labels = {};
    let valuePart = rest;
    if (rest[0] === '{') {
      const end = rest.lastIndexOf('}');
      for (const m of rest.slice(1, end).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
      valuePart = rest.slice(end + 1);
    }
    if (Object.entries(match).some(([k, v]) => labels[k] !== v)) continue;
    const value = Number(valuePart.trim().split(' ')[0]);
    if (Number.isFinite(value)) {
      sum += value;
      found = true;
    }
  }
  return found ? sum : undefined;
}
