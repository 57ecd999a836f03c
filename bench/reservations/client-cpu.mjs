// Admission control (issue 16): the app's CPU per reservation for each way of asking the exporter, one reservation
// at a time (the common case: users making calls one after another rarely share a tick, so batches are rare).
//   npm run build && node bench/reservations/client-cpu.mjs [--n=2000] [--rounds=3]
// Variants, alternating round by round against one exporter process (embedded ledger, holds file on):
//   http-single  one HTTP request per reservation (keep-alive agent; exporterRequest)
//   http-client  tokenmeter's client with the stream off (the HTTP form, batched per tick)
//   stream       tokenmeter's client over the reservations stream (one upgraded connection)
// Prints CPU µs per reservation in this process (user + system) and the round trip; the exporter's CPU is not counted.
import { fork } from 'node:child_process';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const n = Number(args.n ?? 2000);
const rounds = Number(args.rounds ?? 3);
const dist = new URL('../../dist/', import.meta.url);

const exporter = fork(new URL('./run.mjs', import.meta.url), ['--role=exporter', '--opts={}'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const { httpUrl } = await new Promise((resolve) => exporter.once('message', resolve));
const enforce = await import(new URL('instrumentation/enforce.js', dist));
const body = (i) => ({ user: `cpu-${i % 1000}`, plan: 'bench', provider: 'openai', model: 'gpt-4o-mini', input_tokens: 120, max_output_tokens: 200, enforce: 'block', trace_id: '0123456789abcdef0123456789abcdef', span_id: (i + 1).toString(16).padStart(16, '0') });

const variants = {
  'http-single': () => {
    enforce.configureEnforcement({ url: httpUrl, timeoutMillis: 5000, stream: false });
    const s = enforce.enforcementSettings();
    return (i) => enforce.exporterRequest('POST', s.url, JSON.stringify(body(i)), s);
  },
  'http-client': () => {
    enforce.configureEnforcement({ url: httpUrl, timeoutMillis: 5000, stream: false });
    const s = enforce.enforcementSettings();
    return (i) => enforce.requestReservation(body(i), s);
  },
  stream: () => {
    enforce.configureEnforcement({ url: httpUrl, timeoutMillis: 5000, stream: true });
    const s = enforce.enforcementSettings();
    return (i) => enforce.requestReservation(body(i), s);
  },
};

const results = Object.fromEntries(Object.keys(variants).map((v) => [v, []]));
let i = 0;
console.log(`load average at start ${loadavg().map((x) => x.toFixed(1)).join(' / ')}`);
for (let r = 0; r < rounds; r++) {
  const names = Object.keys(variants);
  const order = names.map((_, k) => names[(k + r) % names.length]);
  for (const v of order) {
    const ask = variants[v]();
    for (let w = 0; w < 200; w++) await ask(i++); // warm: connection open, JIT
    if (v === 'stream' && !enforce.reservationStreamOpen()) throw new Error('the stream did not open');
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let k = 0; k < n; k++) {
      const res = await ask(i++);
      if (res.status !== 200) throw new Error(`${v}: HTTP ${res.status}`);
    }
    const c = process.cpuUsage(c0);
    results[v].push({ cpu: (c.user + c.system) / n, rtt: ((performance.now() - t0) * 1000) / n });
  }
}
enforce.configureEnforcement({});
exporter.kill('SIGTERM');
const med = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log('| variant | app CPU µs/reservation (median of rounds; all rounds) | round trip µs (median of rounds) |');
console.log('| --- | --- | ---: |');
for (const [v, rs] of Object.entries(results)) {
  console.log(`| ${v} | ${med(rs.map((x) => x.cpu)).toFixed(1)} (${rs.map((x) => x.cpu.toFixed(0)).join(', ')}) | ${med(rs.map((x) => x.rtt)).toFixed(0)} |`);
}
console.log(`load average at end ${loadavg().map((x) => x.toFixed(1)).join(' / ')}`);
