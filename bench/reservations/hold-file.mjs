// What the embedded ledger's holds file (reservations.log, issue 16: holds that survive a restart) costs a
// reservation: ReservationService.reserve in process on the journal ledger, memory-only holds vs the file (default:
// written before the answer, fdatasync in the background) vs `reservations.sync_each_grant: true` (fdatasync before
// the answer). Variants alternate round by round (the machine's load drifts); CPU time per reservation is the
// figure to compare, rates are wall-clock.
//   npm run build && node bench/reservations/hold-file.mjs [--quick] [--rounds=6] [--seconds=1] [--concurrency=100,16]
import { mkdtempSync, closeSync, fdatasyncSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')).map(([k, v]) => [k, v ?? 'true']));
const quick = args.quick === 'true';
const ROUNDS = Number(args.rounds ?? (quick ? 2 : 6));
const SECONDS = Number(args.seconds ?? (quick ? 0.3 : 1));
const CONCURRENCY = String(args.concurrency ?? '100,16').split(',').map(Number);
const dist = new URL('../../dist/', import.meta.url);

const { validateConfig } = await import(new URL('config/index.js', dist));
const { createPorts } = await import(new URL('exporter/adapters.js', dist));
const { ReservationService, MemoryReservationStore } = await import(new URL('exporter/reservations.js', dist));
const { openHoldFile } = await import(new URL('exporter/reservation-file.js', dist));

// The disk's own fdatasync latency: what sync_each_grant adds to every answer at least.
function fdatasyncMillis(dir) {
  const path = join(dir, 'sync-probe');
  const fd = openSync(path, 'a');
  const t = [];
  for (let i = 0; i < (quick ? 20 : 200); i++) {
    writeSync(fd, `${'x'.repeat(200)}\n`);
    const a = performance.now();
    fdatasyncSync(fd);
    t.push(performance.now() - a);
  }
  closeSync(fd);
  unlinkSync(path);
  t.sort((a, b) => a - b);
  return { median: t[Math.floor(t.length / 2)], p99: t[Math.min(t.length - 1, Math.floor(t.length * 0.99))] };
}

const base = mkdtempSync(join(tmpdir(), 'tm-bench-holds-'));
const config = validateConfig({ plans: { bench: { default: true } }, reservations: { ttl: '10m' }, ledger: { refresh_interval: '0s' }, storage: join(base, 'ledger') }, 'bench');
const ports = await createPorts(config, { now: () => new Date() }, {});
const service = (persisted) =>
  new ReservationService({ store: new MemoryReservationStore(ports.ledger, persisted), plans: ports.plans, pricing: ports.pricing, now: () => new Date(), ttlMillis: 600_000, defaultOutputTokens: 1024 });
const fileIn = (name, syncEachGrant) => openHoldFile(mkdtempSync(join(base, name)), new Date(), () => {}, { syncEachGrant });
const variants = {
  'memory only': service(undefined),
  'reservations.log (default)': service(fileIn('write-', false)),
  'reservations.log, sync_each_grant': service(fileIn('sync-', true)),
};
const req = (i) => ({ user: `load-${i % 1000}`, plan: 'bench', provider: 'openai', model: 'gpt-4o-mini', input_tokens: 120, max_output_tokens: 200, enforce: 'block' });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Warm-up: JIT, the ledger's per-user rows, the files' first writes.
for (const svc of Object.values(variants)) {
  for (let i = 0; i < 4000; i += 100) await Promise.all(Array.from({ length: 100 }, (_, k) => svc.reserve(req(i + k))));
}
const load0 = loadavg();
const sync = fdatasyncMillis(base);
console.log(`Holds file cost (${new Date().toISOString()}, Node ${process.versions.node}, load ${load0.map((l) => l.toFixed(1)).join(' / ')})${quick ? ' (--quick: figures meaningless)' : ''}`);
console.log(`fdatasync on this disk: median ${sync.median.toFixed(3)} ms, p99 ${sync.p99.toFixed(3)} ms`);
console.log('');
console.log('| variant | concurrency | reservations/s (median of rounds) | CPU µs/reservation (median) |');
console.log('| --- | ---: | ---: | ---: |');
for (const conc of CONCURRENCY) {
  const res = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  let n = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const names = round % 2 ? Object.keys(variants).reverse() : Object.keys(variants);
    for (const name of names) {
      const svc = variants[name];
      let done = 0;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      while (performance.now() - t0 < SECONDS * 1000) {
        const batch = [];
        for (let k = 0; k < conc; k++) batch.push(svc.reserve(req(n++)));
        await Promise.all(batch);
        done += conc;
      }
      const secs = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      res[name].push({ perSecond: done / secs, cpuMicros: (c.user + c.system) / done });
    }
  }
  for (const [name, rs] of Object.entries(res)) {
    console.log(`| ${name} | ${conc} | ${Math.round(median(rs.map((r) => r.perSecond))).toLocaleString('en-US')} | ${median(rs.map((r) => r.cpuMicros)).toFixed(1)} |`);
  }
}
console.log('');
console.log(`load at end ${loadavg().map((l) => l.toFixed(1)).join(' / ')}`);
await Promise.all(Object.values(variants).map((v) => v.close()));
await ports.ledger.close();
process.exit(0);
