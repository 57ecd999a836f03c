// CPU profile of the exporter's ingest path under the ingest bench's load (issue 15): the real exporter (dist/)
// with a journal ledger preloaded with `--users` users, driven by `--senders` senders for `--batches` batches, run
// under the inspector's CPU profiler (after 20 warm-up batches, until the last acknowledgement). Prints the functions with the most self time, and where the .cpuprofile is (open it in
// Chrome DevTools).
//   node bench/ingest/profile.mjs [--users=100000] [--senders=8] [--batches=300] [--workers=N] [--out=DIR]
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeBatches, withFreshTraceIds } from '../lib/payloads.mjs';
import { drive, startServer } from './drive.mjs';
import { preload } from './run.mjs';

const { values } = parseArgs({ options: { users: { type: 'string', default: '100000' }, senders: { type: 'string', default: '8' }, batches: { type: 'string', default: '300' }, out: { type: 'string' }, workers: { type: 'string' } } });
const users = Number(values.users);
const out = values.out ?? mkdtempSync(join(tmpdir(), 'tokenmeter-profile-'));
mkdirSync(out, { recursive: true });
const pool = makeBatches({ batches: 20, batchSize: 512, users, seed: 7 });
const bodies = Array.from({ length: Number(values.batches) }, (_, i) => withFreshTraceIds(pool.bodies[i % 20], pool.traceIdOffsets[i % 20], 1 + Math.floor(i / 20)));
const dir = mkdtempSync(join(tmpdir(), 'tokenmeter-bench-ledger-'));
try {
  await preload(dir, users, users);
  // --workers=N: the exporter's ingest.worker_threads (default: the configuration's); the profile is the main thread's.
  const server = await startServer('tokenmeter', dir, values.workers !== undefined ? { option: `workers=${values.workers}` } : {});
  await drive(server.url, bodies.splice(0, 20), { concurrency: Number(values.senders), warmup: 0, spansPerBody: 512 });
  const c0 = await server.profile();
  const r = await drive(server.url, bodies, { concurrency: Number(values.senders), warmup: 0, spansPerBody: 512 });
  const c1 = await server.profile(join(out, 'ingest.cpuprofile'));
  await server.stop();
  const spans = r.spans;
  const main = c0.main !== undefined && c1.main !== undefined ? `, of it the main thread ${((c1.main - c0.main) / spans).toFixed(2)} µs` : '';
  console.log(`${fmtN(r.spansPerSecond)} spans/s; receiver CPU ${((c1.user + c1.system - c0.user - c0.system) / spans).toFixed(2)} µs per span${main}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const file = 'ingest.cpuprofile';
const prof = JSON.parse(readFileSync(join(out, file), 'utf8'));
const self = new Map();
const dt = new Map();
prof.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
let total = 0;
for (const n of prof.nodes) {
  const t = dt.get(n.id) ?? 0;
  total += t;
  const f = n.callFrame;
  const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + t);
}
const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 45);
for (const [k, t] of top) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
console.log(`profile: ${join(out, file)}`);

function fmtN(x) {
  return Math.round(x).toLocaleString('en-US');
}
