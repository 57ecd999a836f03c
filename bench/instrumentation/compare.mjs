// Quick comparison for instrumentation work: runs chosen variants of one or both providers, round-robin, in their
// own processes, and prints the per-call median and the added µs over bare. Not part of `npm run bench`.
// Usage: node bench/instrumentation/compare.mjs [--providers=openai,anthropic] [--variants=bare,tokenmeter,traceloop]
//        [--processes=2] [--warmup=2000] [--batches=10] [--batch-size=400] [--span-processor=simple|batch]
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runChild } from '../lib/child.mjs';
import { median } from '../lib/stats.mjs';
import { VARIANTS as BENCH_VARIANTS } from './run.mjs';

// The bench's variants plus two diagnostics: `tokenmeter-noop` (no tracer or meter provider: tokenmeter's own code
// around no-op spans and histograms) and `tokenmeter-other` (another build, see --other).
const VARIANTS = Object.fromEntries(
  Object.entries(BENCH_VARIANTS).map(([p, vs]) => [p, [...vs, { id: 'tokenmeter-noop', label: 'tokenmeter, no providers' }, { id: 'tokenmeter-other', label: 'tokenmeter, --other build' }]]),
);

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));
const { values } = parseArgs({
  options: {
    providers: { type: 'string', default: 'openai,anthropic' },
    variants: { type: 'string', default: 'bare,tokenmeter,traceloop' },
    processes: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '2000' },
    batches: { type: 'string', default: '10' },
    'batch-size': { type: 'string', default: '400' },
    // Another build's dist/ to measure as the variant `tokenmeter-other` (e.g. the commit before a change).
    other: { type: 'string' },
    // simple (what `npm run bench` uses) or batch (BatchSpanProcessor, as in production).
    'span-processor': { type: 'string', default: 'simple' },
  },
});
const providers = values.providers.split(',');
const wanted = values.variants.split(',');
const runs = {};
for (let p = 0; p < Number(values.processes); p++) {
  for (const provider of providers) {
    for (const v of VARIANTS[provider]) {
      if (v.id !== 'bare' && !wanted.includes(v.id)) continue;
      const other = v.id === 'tokenmeter-other';
      const args = [provider, other ? 'tokenmeter' : v.id, values.warmup, values.batches, values['batch-size']];
      const env = { BENCH_SPAN_PROCESSOR: values['span-processor'] };
      if (other) env.BENCH_TOKENMETER_DIST = values.other;
      const r = await runChild(CHILD, args, { env });
      (runs[`${provider}/${v.id}`] ??= []).push(r);
    }
  }
}
function row(rs, mode, key) {
  return median(rs.map((r) => r[mode][key]));
}
for (const provider of providers) {
  const bare = runs[`${provider}/bare`];
  for (const v of VARIANTS[provider]) {
    const rs = runs[`${provider}/${v.id}`];
    if (rs === undefined) continue;
    const cells = ['json', 'stream'].map((mode) => {
      const wall = row(rs, mode, 'perCallMicros');
      const cpu = row(rs, mode, 'cpuPerCallMicros');
      const c = rs[rs.length - 1][mode].check;
      const ok = v.id === 'bare' ? '  ' : c.spans === c.calls && c.spansWithUsage === c.calls ? 'ok' : 'NO';
      // The second estimate of the bench's goals: the fastest process against the bare SDK's fastest.
      const fastest = Math.min(...rs.map((r) => r[mode].perCallMicros));
      const bareFastest = Math.min(...bare.map((r) => r[mode].perCallMicros));
      return `${mode} wall ${wall.toFixed(1)} (+${(wall - row(bare, mode, 'perCallMicros')).toFixed(1)}; fastest +${(fastest - bareFastest).toFixed(1)}) cpu ${cpu.toFixed(1)} (+${(cpu - row(bare, mode, 'cpuPerCallMicros')).toFixed(1)}) ${ok}`;
    });
    console.log(`${provider.padEnd(9)} ${v.id.padEnd(20)} ${cells.join('   ')}   metrics: ${rs[0].metricNames.length}`);
  }
}
